"""Energy per token of a generation run: its energy split between prefill and decode.

Where the split comes from (``split_view``): each energy domain's samples are cut at the
phase edges of every call (prefill [start, start + TTFT], decode [start + TTFT, start +
latency], from the per-call and per-step timestamps the worker recorded), as counter deltas
for a counter and integrated power for a gauge; the domain's energy over the measurement
window is split by the share the prefill intervals hold, so the time between calls (the
untimed KV-cache reset) goes to the phases pro rata and prefill + decode = the run's energy
exactly. A sensor too coarse to see a prefill (fewer than RESOLUTION_FACTOR = 10 samples in
one) is split by time instead, and that split is labelled an estimate, as is any split of
estimated (TDP model) energy. Per token: J per prompt token (prefill), per decoded token
(decode), each also above idle (E − P_idle × the phase's time), and output tokens per joule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from wattbench.domain.energy import AGGREGATE_DOMAINS, ENERGY_VIEWS, view_figure
from wattbench.domain.result import (
    EnergyFigure,
    GenerationSummary,
    PhaseEnergy,
    RunResult,
)
from wattbench.energy.figures import RESOLUTION_FACTOR, DomainSeries

METHOD_TIME_SHARE = "time-share"


def cumulative_j(s: DomainSeries, t_ns: np.ndarray) -> np.ndarray:
    """A domain's energy from its first sample up to each time in ``t_ns`` (J).

    A counter is interpolated linearly between its readings (counter deltas); a power gauge is
    integrated as the piecewise-linear curve through its samples (the trapezoid rule, and the
    part of a trapezoid up to a time inside it), held at its end values outside the samples.
    """
    t = s.t_ns.astype(np.float64)
    v = s.values.astype(np.float64)
    q = np.asarray(t_ns, dtype=np.float64)
    if s.domain.kind == "energy":
        return np.interp(q, t, v) - v[0]
    dt = np.diff(t) / 1e9
    cum = np.concatenate(([0.0], np.cumsum((v[1:] + v[:-1]) * dt / 2)))
    k = np.clip(np.searchsorted(t, q, side="right") - 1, 0, t.size - 1)
    before = q < t[0]
    k_t = t[k]
    p_q = np.interp(q, t, v)
    part = (v[k] + p_q) * (q - k_t) / 2e9
    out = cum[k] + part
    return np.where(before, (q - t[0]) / 1e9 * v[0], out)


def phase_bounds(
    starts: np.ndarray, ttfts: np.ndarray, lats: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(call starts, prefill ends, call ends) in ns: prefill is [start, start + TTFT], decode
    [start + TTFT, start + latency] — the per-step timestamps folded to the phase edges."""
    a = np.asarray(starts, dtype=np.int64)
    return a, a + np.asarray(ttfts, dtype=np.int64), a + np.asarray(lats, dtype=np.int64)


@dataclass(frozen=True)
class _Split:
    prefill_fraction: float  # of the domain's energy
    method: str
    note: str = ""


def _split_domain(
    s: DomainSeries | None,
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray],
    time_fraction: float,
    sample_period_s: float,
) -> _Split:
    a, f, b = bounds
    if s is None or s.t_ns.size < 2:
        return _Split(time_fraction, METHOD_TIME_SHARE, "no samples of the domain to split")
    resolution_s = max(s.domain.update_period_s, sample_period_s)
    prefill_s = float(np.median(f - a)) / 1e9
    if prefill_s < RESOLUTION_FACTOR * resolution_s:
        return _Split(
            time_fraction,
            METHOD_TIME_SHARE,
            f"a prefill ({prefill_s * 1e3:.3g} ms) is shorter than {RESOLUTION_FACTOR:g} samples "
            f"of {s.domain.name} ({resolution_s * 1e3:.3g} ms each): split by time",
        )
    ea, ef, eb = cumulative_j(s, a), cumulative_j(s, f), cumulative_j(s, b)
    pre, dec = float(np.sum(ef - ea)), float(np.sum(eb - ef))
    if not pre >= 0 or not dec >= 0 or not pre + dec > 0:
        return _Split(time_fraction, METHOD_TIME_SHARE, "the samples give no energy per phase")
    return _Split(pre / (pre + dec), s.method)


def split_view(
    fig: EnergyFigure,
    parts: Sequence[EnergyFigure],
    series: Mapping[str, DomainSeries],
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray],
    tokens: tuple[int, int, int],
    *,
    view: str,
    sample_period_s: float,
) -> PhaseEnergy:
    """One energy view's figure split between prefill and decode.

    Each domain under the view (``parts``; the view figure itself when it has none) is split
    by the energy its samples show inside the prefill and the decode intervals of every call
    (``cumulative_j`` at the phase edges: counter deltas for a counter, integrated power for a
    gauge), as a fraction of the two; the domain's window energy is split by that fraction, so
    the energy between calls (the untimed KV-cache reset) goes to the phases pro rata and
    prefill + decode = the view's energy exactly. A domain whose samples are too coarse for a
    prefill (shorter than 10 samples: RESOLUTION_FACTOR) is split by the phases' shares of
    time instead and the split is an estimate, as is every split of estimated energy.
    ``tokens``: (prefill, decode, output) token counts of the window.
    """
    a, f, b = bounds
    t_pre, t_dec = float(np.sum(f - a)), float(np.sum(b - f))
    time_fraction = t_pre / (t_pre + t_dec) if t_pre + t_dec > 0 else 0.0
    pieces = list(parts) or [fig]
    splits = [
        _split_domain(series.get(p.domain), bounds, time_fraction, sample_period_s) for p in pieces
    ]
    total = sum(p.energy_j for p in pieces)
    prefill_j = (
        fig.energy_j
        * sum(sp.prefill_fraction * p.energy_j for sp, p in zip(splits, pieces, strict=True))
        / total
        if total > 0
        else fig.energy_j * time_fraction
    )
    methods = {sp.method for sp in splits}
    coarse = METHOD_TIME_SHARE in methods
    notes = [sp.note for sp in splits if sp.note]
    if fig.is_estimate:
        notes.insert(0, "the energy itself is an estimate")
    return PhaseEnergy(
        view=view,
        estimate=coarse or fig.is_estimate,
        method=METHOD_TIME_SHARE if coarse else (methods.pop() if len(methods) == 1 else "mixed"),
        energy_j=fig.energy_j,
        prefill_j=prefill_j,
        decode_j=fig.energy_j - prefill_j,
        prefill_s=fig.duration_s * time_fraction,
        decode_s=fig.duration_s * (1 - time_fraction),
        prefill_tokens=tokens[0],
        decode_tokens=tokens[1],
        output_tokens=tokens[2],
        idle_w=fig.idle_power_w,
        source=fig.source,
        note="; ".join(dict.fromkeys(notes)),
    )


def _view_parts(run: RunResult, fig: EnergyFigure) -> list[EnergyFigure]:
    """The per-domain figures a view figure adds up (matched by their sources)."""
    sources = set(fig.source.split("+"))
    return [
        e
        for e in run.energy
        if e.domain not in AGGREGATE_DOMAINS
        and e.source in sources
        and e.is_estimate == fig.is_estimate
    ]


def with_phase_energy(
    run: RunResult, series: Sequence[DomainSeries], sample_period_s: float
) -> RunResult:
    """The run with its generation energy split per view (no generation: unchanged)."""
    g = run.generation
    if g is None:
        return run
    needed = ("starts_ns", "ttft_ns", "latencies_ns")
    if any(k not in run.arrays for k in needed):
        return run.with_(generation=dataclasses.replace(
            g, phase_energy_na_reason="the run has no per-call timings to split its energy by"
        ))  # fmt: skip
    bounds = phase_bounds(*(run.arrays[k] for k in needed))
    calls = int(bounds[0].size)
    tokens = (
        g.prompt_tokens * g.sequences * calls,
        (g.new_tokens - 1) * g.sequences * calls,
        g.new_tokens * g.sequences * calls,
    )
    by_name = {s.domain.name: s for s in series}
    out: list[PhaseEnergy] = []
    for view in ENERGY_VIEWS:
        fig = view_figure(run, view)
        if fig is None or not fig.energy_j > 0:
            continue
        parts = _view_parts(run, fig)
        out.append(
            split_view(fig, parts, by_name, bounds, tokens, view=view,
                       sample_period_s=sample_period_s)
        )  # fmt: skip
    na = None if out else (run.energy_na_reason or "no energy figure for this run")
    return run.with_(
        generation=dataclasses.replace(g, phase_energy=tuple(out), phase_energy_na_reason=na)
    )


# -- per-token figures for display -----------------------------------------------------------


@dataclass(frozen=True)
class TokenEnergy:
    """J per token of each phase, gross and above idle, and output tokens per joule."""

    view: str
    estimate: bool
    method: str
    prefill_j_per_token: float
    decode_j_per_token: float
    prefill_above_idle_j_per_token: float | None
    decode_above_idle_j_per_token: float | None
    tokens_per_j: float
    note: str


def token_energy(
    g: GenerationSummary | None, view: str = "device"
) -> tuple[TokenEnergy | None, str]:
    """A view's energy per token, or None and why."""
    if g is None:
        return None, "not a generation run"
    pe = next((p for p in g.phase_energy if p.view == view), None)
    if pe is None:
        return None, g.phase_energy_na_reason or f"no {view} energy split for this run"
    if pe.prefill_tokens <= 0 or pe.decode_tokens <= 0 or not pe.energy_j > 0:
        return None, "the energy window covers no tokens"

    def above(j: float, s: float, tokens: int) -> float | None:
        return None if pe.idle_w is None else (j - pe.idle_w * s) / tokens

    return TokenEnergy(
        view=pe.view,
        estimate=pe.estimate,
        method=pe.method,
        prefill_j_per_token=pe.prefill_j / pe.prefill_tokens,
        decode_j_per_token=pe.decode_j / pe.decode_tokens,
        prefill_above_idle_j_per_token=above(pe.prefill_j, pe.prefill_s, pe.prefill_tokens),
        decode_above_idle_j_per_token=above(pe.decode_j, pe.decode_s, pe.decode_tokens),
        tokens_per_j=pe.output_tokens / pe.energy_j,
        note=pe.note,
    ), ""
