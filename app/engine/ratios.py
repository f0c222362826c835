"""Ratios to the baseline with their 95 % interval, verdicts, and the sentences that say them.

- R ≥ 2 on both sides: r = X̂_B / X̂_A with interval exp(log r ± t_ν·√(s²_A/R_A + s²_B/R_B)),
  s² the variance of the log per-run figures, ν Welch's degrees of freedom. Otherwise the
  relative half-widths of the two sides combine: √(h_A² + h_B²), labelled "within-run only",
  and the verdict is labelled indicative (one run each): a run's own interval says nothing of
  what changes between runs.
- Verdict: faster/slower (better/worse for energy and cost) only when the whole interval lies
  outside [1 − δ, 1 + δ] (δ the noise threshold, 1 % by default); equivalent when it lies
  inside; otherwise inconclusive, with ⌈4z²σ²/δ²⌉ runs per side that would settle it, σ the
  spread between runs (the runs' own intervals give only a lower bound). More than
  MAX_SETTLE_RUNS is no plan: the machine is then too noisy for a ±δ answer.
- A ratio that involves a run of doubtful quality (the causes are found by ``compare``) reads
  "unreliable: <why>" whatever its interval says.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from wattbench.domain.result import RunResult
from wattbench.engine.metrics import (
    ENERGY_BASED,
    METHOD_BETWEEN_RUNS,
    METHOD_WITHIN_RUN,
    METRICS,
    MetricEstimate,
    MetricInfo,
)
from wattbench.engine.stats import Z_975, t_975

log = logging.getLogger(__name__)

MAX_SETTLE_RUNS = 20  # runs per side beyond which "would settle it" is no longer offered
UNRELIABLE = "unreliable"

# -- ratios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """B / A for one metric with its 95 % interval and verdict (see the module docstring).

    value None = n/a (na_reason says why); lo/hi None = no interval (verdict None then).
    verdict is what every front end shows: "faster", "faster, indicative (one run each)" or
    "unreliable: <why>"; interval_verdict is what the interval alone says and ``kind`` the one
    word (colours, counts). reps_needed, settle and too_noisy are set for an inconclusive
    verdict only. comparable is False when the two workloads differ.
    """

    metric: str
    value: float | None
    lo: float | None
    hi: float | None
    verdict: str | None
    method: str
    reps_needed: int | None
    comparable: bool
    na_reason: str | None
    interval_verdict: str | None = None  # faster/slower/better/worse/equivalent/inconclusive
    unreliable: tuple[str, ...] = ()  # why the verdict cannot be trusted
    indicative: str | None = None  # "one run each": no spread between runs on a side
    settle: str | None = None  # "about 6 runs per side would settle it", or too noisy
    too_noisy: bool = False  # more than MAX_SETTLE_RUNS runs per side would be needed

    @property
    def kind(self) -> str | None:
        """One word: the interval's verdict, or "unreliable"; None without a verdict."""
        if self.verdict is None:
            return None
        return UNRELIABLE if self.unreliable else self.interval_verdict or self.verdict


def _verdict(lo: float, hi: float, noise: float, info: MetricInfo) -> str:
    if lo > 1 + noise or hi < 1 - noise:
        up = lo > 1 + noise
        good = up if info.higher_is_better else not up
        if info.time_metric:
            return "faster" if good else "slower"
        return "better" if good else "worse"
    if lo >= 1 - noise and hi <= 1 + noise:
        return "equivalent"
    return "inconclusive"


def _reps_needed(sigma: float, noise: float) -> int | None:
    """⌈4 z² σ² / δ²⌉ replicates per side (at least 2: the between-run method needs 2); None
    when no number of runs would do (δ = 0)."""
    if noise <= 0:
        return None if sigma > 0 else 2
    return max(2, math.ceil(4 * Z_975**2 * sigma**2 / noise**2))


@dataclass(frozen=True)
class _Settle:
    reps: int | None
    text: str
    too_noisy: bool


def _settle(a: MetricEstimate, b: MetricEstimate, noise: float) -> _Settle:
    """How many runs per side would settle an inconclusive ratio, from the spread between runs
    (pooled over the sides that have one); from the runs' own intervals only a lower bound."""
    spread = [(e.replicates, e.log_sd) for e in (a, b) if e.replicates >= 2 and e.log_sd]
    if spread:
        dof = sum(r - 1 for r, _ in spread)
        sigma = math.sqrt(sum((r - 1) * (sd or 0.0) ** 2 for r, sd in spread) / dof)
    else:
        sigma = math.sqrt((_side_sigma(a) ** 2 + _side_sigma(b) ** 2) / 2)
    reps = _reps_needed(sigma, noise)
    if reps is None or reps > MAX_SETTLE_RUNS:
        return _Settle(
            None,
            f"this machine is too noisy for a ±{noise * 100:g} % answer (more than "
            f"{MAX_SETTLE_RUNS} runs per side would be needed)",
            True,
        )
    if spread:
        return _Settle(reps, f"about {reps} runs per side would settle it", False)
    return _Settle(
        reps, f"at least {reps} runs per side, interleaved, would be needed to settle it", False
    )


def _indicative(a: MetricEstimate, b: MetricEstimate) -> str:
    """Why a within-run interval stood in for the spread between runs."""
    if a.replicates < 2 and b.replicates < 2:
        return "one run each"
    if a.replicates < 2:
        return "one run of the baseline"
    if b.replicates < 2:
        return "one run of this configuration"
    return "identical runs: no spread between them"


def _judged(
    ratio: Ratio, a: MetricEstimate, b: MetricEstimate, noise: float, unreliable: Sequence[str]
) -> Ratio:
    """The ratio with its shown verdict: unreliable, indicative, or the interval's word."""
    word = ratio.interval_verdict
    if word is None:
        return dataclasses.replace(ratio, unreliable=tuple(unreliable))
    if unreliable:
        shown = f"{UNRELIABLE}: {'; '.join(unreliable)}"
        return dataclasses.replace(ratio, verdict=shown, unreliable=tuple(unreliable))
    settle = _settle(a, b, noise) if word == "inconclusive" else None
    indicative = _indicative(a, b) if ratio.method == METHOD_WITHIN_RUN else None
    return dataclasses.replace(
        ratio,
        verdict=word + (f", indicative ({indicative})" if indicative else ""),
        indicative=indicative,
        reps_needed=settle.reps if settle else None,
        settle=settle.text if settle else None,
        too_noisy=settle.too_noisy if settle else False,
    )


def ratio_of(
    a: MetricEstimate,
    b: MetricEstimate,
    metric: str,
    *,
    noise: float,
    comparable: bool = True,
    unreliable: Sequence[str] = (),
) -> Ratio:
    """Ratio of configuration b to baseline a for one metric; ``unreliable`` lists why the
    runs' quality forbids a verdict (see ``compare.quality_causes``)."""
    return _judged(_interval_ratio(a, b, metric, noise, comparable), a, b, noise, unreliable)


def _interval_ratio(
    a: MetricEstimate, b: MetricEstimate, metric: str, noise: float, comparable: bool
) -> Ratio:
    info = METRICS[metric]
    if a.value is None or b.value is None:
        reason = (
            f"baseline: {a.na_reason}" if a.value is None else f"this configuration: {b.na_reason}"
        )
        return Ratio(metric, None, None, None, None, "", None, comparable, reason)
    r = b.value.value / a.value.value
    sd_a, sd_b = a.log_sd, b.log_sd
    # between runs (Welch); identical replicates on both sides (se = 0) would claim certainty,
    # so they fall back to the runs' own intervals
    if (
        a.replicates >= 2
        and b.replicates >= 2
        and sd_a is not None
        and sd_b is not None
        and (sd_a > 0 or sd_b > 0)
    ):
        va, vb = sd_a**2 / a.replicates, sd_b**2 / b.replicates
        se = math.sqrt(va + vb)
        den = (va**2 / (a.replicates - 1) if va else 0.0) + (
            vb**2 / (b.replicates - 1) if vb else 0.0
        )
        nu = (va + vb) ** 2 / den
        h = t_975(nu) * se
        lo, hi = r * math.exp(-h), r * math.exp(h)
        verdict = _verdict(lo, hi, noise, info)
        return Ratio(
            metric, r, lo, hi, verdict, METHOD_BETWEEN_RUNS, None, comparable, None, verdict
        )
    ha, hb = _side_rel(a), _side_rel(b)
    if ha is None or hb is None:
        which = "baseline" if ha is None else "this configuration"
        return Ratio(
            metric,
            r,
            None,
            None,
            None,
            METHOD_WITHIN_RUN,
            None,
            comparable,
            f"{which} has no confidence interval for {info.label}",
        )
    h = math.hypot(ha, hb)
    lo, hi = r * math.exp(-h), r * math.exp(h)
    verdict = _verdict(lo, hi, noise, info)
    return Ratio(metric, r, lo, hi, verdict, METHOD_WITHIN_RUN, None, comparable, None, verdict)


def _side_rel(e: MetricEstimate) -> float | None:
    """Relative half-width of one side's figure: its pooled interval or its run's own."""
    assert e.value is not None
    return e.value.rel_half_width


def _side_sigma(e: MetricEstimate) -> float:
    """Per-run relative sd of one side: log sd between runs, else the run's own h / 1.96."""
    sd = e.log_sd
    if sd is not None:
        return sd
    rel = _side_rel(e)
    return (rel or 0.0) / Z_975


def _fmt_ratio(x: float) -> str:
    return f"{x:.3f}" if abs(x - 1) < 0.05 else f"{x:.2f}"


def workload_phrase(run: RunResult) -> str:
    """What was run, for the start of a sentence: "mlp-small at batch 32"."""
    spec = run.spec
    name = run.model.name if run.model is not None and run.model.name else spec.model
    if spec.scenario.value == "generation":
        return (
            f"{name} generating {spec.new_tokens} tokens after a {spec.prompt_tokens}-token "
            f"prompt at batch {spec.batch_size}"
        )
    return f"{name} at batch {spec.batch_size}"


def verdict_sentence(
    ratio: Ratio,
    group_label: str,
    baseline_label: str,
    *,
    energy_view: str | None = None,
    workload: str | None = None,
    differences: Sequence[str] = (),
) -> str:
    """One plain sentence for one ratio, e.g. "On ResNet-50 at batch 32, cuda:0 · torch
    delivers 0.80× the throughput of cpu · torch (95 % CI 0.78–0.82): slower."

    workload (see workload_phrase) opens the sentence when the runs are like-for-like; an n/a
    ratio says why; "within-run only" marks intervals from single runs; an inconclusive
    verdict says how many runs per side would settle it (or that the machine is too noisy).
    """
    info = METRICS[ratio.metric]
    energy_based = energy_view is not None and ratio.metric in ENERGY_BASED
    opening = f"On {workload}, " if workload else ""
    if ratio.value is None:
        text = f"{opening}{group_label} vs {baseline_label}: {info.label} n/a ({ratio.na_reason})."
    else:
        phrase = info.phrase.format(r=_fmt_ratio(ratio.value))
        text = f"{opening}{group_label} {phrase} {baseline_label}"
        if ratio.lo is None or ratio.hi is None:
            text += f" (no interval: {ratio.na_reason})." if ratio.na_reason else " (no interval)."
        else:
            text += f" (95 % CI {_fmt_ratio(ratio.lo)}–{_fmt_ratio(ratio.hi)}"
            if ratio.method == METHOD_WITHIN_RUN:
                text += ", within-run only"
            text += f"): {ratio.verdict}"
            if ratio.settle and not ratio.unreliable:
                text += f"; {ratio.settle}"
            text += "."
    if energy_based:
        text += f" Energy view: {energy_view}."
    if not ratio.comparable:
        if differences:
            text += f" Not like-for-like: the workloads differ in {', '.join(differences)}."
        else:
            text += " The workloads differ: not a like-for-like comparison."
    return text
