"""What is compared: the metrics, their per-run values, and replicates pooled per configuration.

Runs of one configuration (same ``spec.config_key()`` and model hash) are replicates, pooled by
the geometric mean; a figure that cannot be had is None with the reason, never 0; estimated
energy is never ranked against measured energy.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import Interval, RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.engine.cost import cost_figures, energy_per_item
from wattbench.engine.stats import t_975

log = logging.getLogger(__name__)

METHOD_BETWEEN_RUNS = "between runs (Welch)"
METHOD_WITHIN_RUN = "within-run only"
DEFAULT_NOISE = 0.01  # the noise threshold: ratios within [0.99, 1.01] are no difference
ENERGY_BASED = ("energy", "perf-per-watt", "cost", "co2")
COST_METRICS = ("cost", "co2")  # the metrics that need a cost profile


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    unit: str
    higher_is_better: bool
    time_metric: bool  # verdict words: faster/slower instead of better/worse
    phrase: str  # "{a} <phrase> {b}" with {r} for the ratio


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("throughput", "throughput", "items/s", True, True,
                   "delivers {r}× the throughput of"),
        MetricInfo("latency-p50", "median latency per call", "ns", False, True,
                   "has {r}× the median latency per call of"),
        MetricInfo("latency-p99", "p99 latency per call", "ns", False, True,
                   "has {r}× the p99 latency per call of"),
        MetricInfo("latency-mean", "mean latency per call", "ns", False, True,
                   "has {r}× the mean latency per call of"),
        MetricInfo("energy", "energy per inference", "J/item", False, False,
                   "uses {r}× the energy per inference of"),
        MetricInfo("perf-per-watt", "inferences per joule", "items/J", True, False,
                   "gets {r}× the inferences per joule of"),
        MetricInfo("cost", "cost per million inferences", "USD/1M items", False, False,
                   "costs {r}× as much per million inferences as"),
        MetricInfo("co2", "CO2 per million inferences", "gCO2/1M items", False, False,
                   "emits {r}× the CO2 per million inferences of"),
    )
}  # fmt: skip
DEFAULT_METRICS: tuple[str, ...] = tuple(METRICS)

WORKLOAD_FIELDS = (
    "model",
    "scenario",
    "precision",
    "batch size",
    "dynamic dims",
    "input shapes",
    "prompt tokens",
    "new tokens",
)


# -- per-run metric values -----------------------------------------------------------------


def metric_value(
    run: RunResult,
    metric: str,
    *,
    energy_view: str = "device",
    cost_profiles: Mapping[str, CostProfile] | None = None,
) -> tuple[Interval | None, str | None]:
    """One run's figure for a metric (units in METRICS[metric].unit), or None + the reason."""
    if metric not in METRICS:
        raise BadInputError(f"Unknown metric {metric!r}: choose from {', '.join(METRICS)}.")
    if run.status is not RunStatus.DONE:
        return None, f"run {run.id[:8]} is {run.status.value}"
    iv, reason = _raw_metric(run, metric, energy_view, cost_profiles)
    if iv is not None and not (math.isfinite(iv.value) and iv.value > 0):
        return None, f"{METRICS[metric].label} is not a positive number ({iv.value!r})"
    return iv, reason


def _raw_metric(
    run: RunResult,
    metric: str,
    energy_view: str,
    cost_profiles: Mapping[str, CostProfile] | None,
) -> tuple[Interval | None, str | None]:
    lat = run.latency
    if metric == "throughput":
        if run.throughput_items_per_s is None:
            return None, run.reason or "no throughput was recorded"
        return run.throughput_items_per_s, None
    if metric in ("latency-p50", "latency-p99"):
        if lat is None:
            return None, run.reason or "no latency was recorded"
        p = 0.5 if metric == "latency-p50" else 0.99
        pe = lat.percentile(p)
        if pe is None:
            return None, f"p{p * 100:g} was not computed for this run"
        return Interval(pe.value_ns, pe.lo_ns, pe.hi_ns), None
    if metric == "latency-mean":
        if lat is None:
            return None, run.reason or "no latency was recorded"
        return Interval(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns), None
    energy, energy_reason = energy_per_item(run, energy_view)
    if metric == "energy":
        return energy, energy_reason
    if metric == "perf-per-watt":
        if energy is None:
            return None, energy_reason
        return Interval(
            1 / energy.value,
            None if energy.hi is None else 1 / energy.hi,
            None if energy.lo is None or energy.lo <= 0 else 1 / energy.lo,
        ), None
    # cost, co2: measured energy only (an estimate is never ranked against a measurement)
    profile = (cost_profiles or {}).get(run.spec.device)
    if profile is None:
        return None, f"no cost profile for device {run.spec.device}"
    figures = cost_figures(run, profile, energy_view=energy_view, allow_estimate=False)
    if metric == "cost":
        return figures.usd_per_million, figures.usd_na_reason
    return figures.co2_g_per_million, figures.co2_na_reason


# -- groups of replicates ------------------------------------------------------------------


@dataclass(frozen=True)
class MetricEstimate:
    """A configuration's pooled figure for one metric."""

    value: Interval | None  # geometric mean of the runs (R ≥ 2) or the single run's figure
    na_reason: str | None
    replicates: int  # runs that provide this metric
    log_values: tuple[float, ...] = ()
    run_rel_half_widths: tuple[float | None, ...] = ()  # each run's own interval
    method: str = ""

    @property
    def log_sd(self) -> float | None:
        """Standard deviation of the per-run log estimates (None with < 2 runs)."""
        r = len(self.log_values)
        if r < 2:
            return None
        m = sum(self.log_values) / r
        return math.sqrt(sum((v - m) ** 2 for v in self.log_values) / (r - 1))


@dataclass(frozen=True)
class ConfigGroup:
    key: tuple[Any, ...]  # (spec.config_key(), model sha256)
    label: str
    run_ids: tuple[str, ...]
    runs: tuple[RunResult, ...]
    estimates: Mapping[str, MetricEstimate]

    @property
    def replicates(self) -> int:
        return len(self.runs)

    @property
    def spec(self) -> RunSpec:
        return self.runs[0].spec

    @property
    def model_sha256(self) -> str | None:
        return model_hash(self.runs[0])

    def estimate(self, metric: str) -> MetricEstimate:
        return self.estimates[metric]


def model_hash(run: RunResult) -> str | None:
    return run.model.sha256 if run.model is not None and run.model.sha256 else None


def pool(
    runs: Sequence[RunResult],
    metric: str,
    energy_view: str,
    cost_profiles: Mapping[str, CostProfile] | None,
) -> MetricEstimate:
    values: list[Interval] = []
    reasons: list[str] = []
    for run in runs:
        iv, reason = metric_value(run, metric, energy_view=energy_view, cost_profiles=cost_profiles)
        if iv is None:
            reasons.append(reason or "not available")
        else:
            values.append(iv)
    if not values:
        return MetricEstimate(None, "; ".join(dict.fromkeys(reasons)), 0)
    logs = tuple(math.log(v.value) for v in values)
    rels = tuple(v.rel_half_width for v in values)
    r = len(values)
    partial = f" ({r} of {len(runs)} runs)" if r < len(runs) else ""
    if r == 1:
        return MetricEstimate(values[0], None, 1, logs, rels, "single run" + partial)
    m = sum(logs) / r
    est = MetricEstimate(Interval(math.exp(m)), None, r, logs, rels)
    sd = est.log_sd or 0.0
    method = f"geometric mean of {r} runs" + partial
    if sd > 0:
        h: float | None = t_975(r - 1) * sd / math.sqrt(r)
    elif all(x is not None for x in rels):
        # identical figures: the spread between runs says nothing, the runs' own intervals do
        h = math.sqrt(sum((x or 0.0) ** 2 for x in rels)) / r
        method += ", identical: interval from the runs' own"
    else:
        h = None
    value = (
        Interval(math.exp(m))
        if h is None
        else Interval(math.exp(m), math.exp(m - h), math.exp(m + h))
    )
    return MetricEstimate(
        value,
        None,
        r,
        logs,
        rels,
        method,
    )


def _spec_parts(spec: RunSpec, sha: str | None) -> dict[str, str]:
    gen = spec.scenario.value == "generation"
    return {
        "device": spec.device,
        "runtime": spec.runtime,
        "precision": spec.precision,
        "batch": f"b{spec.batch_size}",
        "threads": f"t{spec.threads}" if spec.threads else "t-default",
        "model": spec.model,
        "scenario": spec.scenario.value,
        "provider": spec.ort_provider or "default provider",
        "graph": f"graph-opt {spec.ort_graph_optimization}",
        "dims": ",".join(f"{k}={v}" for k, v in spec.dims.items()) or "default dims",
        "shapes": ",".join(f"{k}={v}" for k, v in spec.input_shapes.items()) or "declared shapes",
        "gen": f"p{spec.prompt_tokens}/gen{spec.new_tokens}" if gen else "",
        "sha": (sha or "unknown")[:8],
    }


def config_labels(first_runs: Sequence[RunResult]) -> list[str]:
    """Short labels: device · runtime, plus whatever else differs between the configurations."""
    parts = [_spec_parts(r.spec, model_hash(r)) for r in first_runs]
    if len(parts) <= 1:
        return [r.spec.label() for r in first_runs]
    varying = [k for k in parts[0] if k in ("device", "runtime") or len({p[k] for p in parts}) > 1]
    labels = [
        " · ".join(p[k] for k in varying) or r.spec.label()
        for p, r in zip(parts, first_runs, strict=True)
    ]
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} #{seen[lab]}")
    return out
