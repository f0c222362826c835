"""Ratios to the baseline with their 95 % interval, verdicts, and the sentences that say them.

- R ≥ 2 on both sides: r = X̂_B / X̂_A with interval exp(log r ± t_ν·√(s²_A/R_A + s²_B/R_B)),
  s² the variance of the log per-run figures, ν Welch's degrees of freedom. Otherwise the
  relative half-widths of the two sides combine: √(h_A² + h_B²), labelled "within-run only".
- Verdict: faster/slower (better/worse for energy and cost) only when the whole interval lies
  outside [1 − δ, 1 + δ] (δ the noise threshold, 1 % by default); equivalent when it lies
  inside; otherwise inconclusive, with ⌈4z²σ²/δ²⌉ runs per side that would settle it.
"""

from __future__ import annotations

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

# -- ratios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """B / A for one metric with its 95 % interval and verdict (see the module docstring).

    value None = n/a (na_reason says why); lo/hi None = no interval (verdict None then).
    reps_needed is set for an inconclusive verdict only. comparable is False when the two
    workloads differ.
    """

    metric: str
    value: float | None
    lo: float | None
    hi: float | None
    verdict: str | None  # faster/slower/better/worse/equivalent/inconclusive
    method: str
    reps_needed: int | None
    comparable: bool
    na_reason: str | None


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


def _reps_needed(sigma: float, noise: float) -> int:
    """⌈4 z² σ² / δ²⌉ replicates per side (at least 2: the between-run method needs 2)."""
    if noise <= 0:
        return 2
    return max(2, math.ceil(4 * Z_975**2 * sigma**2 / noise**2))


def ratio_of(
    a: MetricEstimate, b: MetricEstimate, metric: str, *, noise: float, comparable: bool = True
) -> Ratio:
    """Ratio of configuration b to baseline a for one metric."""
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
        pooled = math.sqrt(
            ((a.replicates - 1) * sd_a**2 + (b.replicates - 1) * sd_b**2)
            / (a.replicates + b.replicates - 2)
        )
        reps = _reps_needed(pooled, noise) if verdict == "inconclusive" else None
        return Ratio(metric, r, lo, hi, verdict, METHOD_BETWEEN_RUNS, reps, comparable, None)
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
    reps = None
    if verdict == "inconclusive":
        sigma = math.sqrt((_side_sigma(a) ** 2 + _side_sigma(b) ** 2) / 2)
        reps = _reps_needed(sigma, noise)
    return Ratio(metric, r, lo, hi, verdict, METHOD_WITHIN_RUN, reps, comparable, None)


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
    verdict says how many runs per side would settle it.
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
            if ratio.verdict == "inconclusive" and ratio.reps_needed:
                text += f"; about {ratio.reps_needed} runs per side would settle it"
            text += "."
    if energy_based:
        text += f" Energy view: {energy_view}."
    if not ratio.comparable:
        if differences:
            text += f" Not like-for-like: the workloads differ in {', '.join(differences)}."
        else:
            text += " The workloads differ: not a like-for-like comparison."
    return text
