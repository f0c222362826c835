"""A training run's figures as compared: its items are trained tokens, so its throughput is
tokens/s, its latency per call the step time, its energy per item J per trained token and its
cost per million items $ per million tokens trained; achieved TFLOP/s is tokens/s × the model
FLOPs per token (domain/training.py), and MFU is that over the device's documented peak
(domain/peaks.py). Other runs have none of these figures: n/a with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.domain.peaks import device_model, mfu, peak_for
from wattbench.domain.result import Interval, RunResult
from wattbench.engine.cost import cost_figures, energy_per_item
from wattbench.engine.generation import inverse

TRAINING_METRICS: tuple[str, ...] = (
    "train-tokens-per-s",
    "step-time",
    "train-energy-per-token",
    "train-tokens-per-j",
    "cost-per-m-train-tokens",
    "train-tflops",
    "train-tokens-per-s-per-device",
    "train-tokens-per-s-per-card",
)
NOT_TRAINING = "not a training run"


def training_metric(
    run: RunResult,
    metric: str,
    energy_view: str,
    cost_profiles: Mapping[str, CostProfile] | None,
) -> tuple[Interval | None, str | None]:
    """A training run's figure for one of TRAINING_METRICS, or None + the reason.

    Energy-based ones rest on measured energy only (an estimate is never ranked)."""
    t = run.training
    if t is None:
        return None, NOT_TRAINING
    thr = run.throughput_items_per_s
    if metric in ("train-tokens-per-s-per-device", "train-tokens-per-s-per-card"):
        if thr is None:
            return None, run.reason or "no throughput was recorded"
        per = 1.0 / max(t.data_parallel, 1)  # each rank trains its share in the common step
        if metric.endswith("card"):
            model = device_model(t.device_name)
            per *= model.dies_per_card if model is not None else 1
        return _scaled(thr, per), None
    if metric in ("train-tokens-per-s", "train-tflops"):
        if thr is None:
            return None, run.reason or "no throughput was recorded"
        return (thr, None) if metric == "train-tokens-per-s" else (achieved_tflops(run, thr), None)
    if metric == "step-time":
        lat = run.latency
        if lat is None:
            return None, run.reason or "no step time was recorded"
        return Interval(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns), None
    if metric == "cost-per-m-train-tokens":
        profile = (cost_profiles or {}).get(run.spec.device)
        if profile is None:
            return None, f"no cost profile for device {run.spec.device}"
        figures = cost_figures(run, profile, energy_view=energy_view, allow_estimate=False)
        return figures.usd_per_million, figures.usd_na_reason
    energy, reason = energy_per_item(run, energy_view)  # measured J per trained token
    if energy is None:
        return None, reason
    if metric == "train-energy-per-token":
        return energy, None
    return inverse(energy, 1.0), None


def _scaled(iv: Interval, k: float) -> Interval:
    return Interval(
        iv.value * k, None if iv.lo is None else iv.lo * k, None if iv.hi is None else iv.hi * k
    )


def achieved_tflops(run: RunResult, tokens_per_s: Interval) -> Interval:
    """Model TFLOP/s: tokens/s × FLOPs per token (1 for a run that is not training)."""
    tera = (run.training.flops_per_token if run.training is not None else 1.0) / 1e12
    return Interval(
        tokens_per_s.value * tera,
        None if tokens_per_s.lo is None else tokens_per_s.lo * tera,
        None if tokens_per_s.hi is None else tokens_per_s.hi * tera,
    )


def run_mfu(run: RunResult, tflops: float) -> tuple[float | None, str]:
    """MFU of the run's ``tflops`` (all its data-parallel ranks together) per device, as its
    runtime names it, at the run's precision: the fraction and its words (peak and source), or
    None and why it is n/a. Each rank trains its share of the tokens in the common step time."""
    t = run.training
    name = (t.device_name if t is not None else "") or run.spec.device
    ranks = t.data_parallel if t is not None else 1
    peak = peak_for(name, run.spec.precision)
    return mfu(tflops / max(ranks, 1), peak, device_name=name, precision=run.spec.precision)


def mfu_text(run: RunResult, tflops: float) -> str:
    """'MFU 41.2 %' ('… per device' with several ranks), or 'MFU n/a: <why>'."""
    fraction, words = run_mfu(run, tflops)
    if fraction is None:
        return f"MFU {words}"
    t = run.training
    per = " per device" if t is not None and t.data_parallel > 1 else ""
    return f"MFU {units.percent(fraction, 3)}{per}"
