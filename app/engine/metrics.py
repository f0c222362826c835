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
from wattbench.domain.spec import RunSpec, join_label
from wattbench.engine.cost import (
    cost_figures,
    energy_per_item,
    usd_per_million_output_tokens,
)
from wattbench.engine.generation import inverse
from wattbench.engine.stats import t_975
from wattbench.engine.training_metrics import TRAINING_METRICS, training_metric

log = logging.getLogger(__name__)

METHOD_BETWEEN_RUNS = "between runs (Welch)"
METHOD_WITHIN_RUN = "within-run only"
DEFAULT_NOISE = 0.01  # the noise threshold: ratios within [0.99, 1.01] are no difference
ENERGY_BASED = (
    "energy", "perf-per-watt", "cost", "co2",
    "tokens-per-j", "prefill-energy-per-token", "decode-energy-per-token", "cost-per-m-tokens",
    "train-energy-per-token", "train-tokens-per-j", "cost-per-m-train-tokens",
)  # fmt: skip
# the metrics that need a cost profile
COST_METRICS = ("cost", "co2", "cost-per-m-tokens", "cost-per-m-train-tokens")


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
        # generation runs (engine/generation.py); n/a with the reason for other runs
        MetricInfo("ttft", "time to first token", "ns", False, True,
                   "has {r}× the time to first token of"),
        MetricInfo("tpot", "time per output token", "ns", False, True,
                   "has {r}× the time per output token of"),
        MetricInfo("itl-p50", "median inter-token latency", "ns", False, True,
                   "has {r}× the median inter-token latency of"),
        MetricInfo("itl-p99", "p99 inter-token latency", "ns", False, True,
                   "has {r}× the p99 inter-token latency of"),
        MetricInfo("e2e-latency", "end-to-end latency per sequence", "ns", False, True,
                   "has {r}× the end-to-end latency per sequence of"),
        MetricInfo("decode-tokens-per-s", "decode tokens per second", "tokens/s", True, True,
                   "decodes {r}× the tokens per second of"),
        MetricInfo("prefill-tokens-per-s", "prefill tokens per second", "tokens/s", True, True,
                   "prefills {r}× the tokens per second of"),
        MetricInfo("tokens-per-j", "output tokens per joule", "tokens/J", True, False,
                   "gets {r}× the output tokens per joule of"),
        MetricInfo("prefill-energy-per-token", "energy per prompt token", "J/token", False,
                   False, "uses {r}× the energy per prompt token of"),
        MetricInfo("decode-energy-per-token", "energy per decoded token", "J/token", False,
                   False, "uses {r}× the energy per decoded token of"),
        MetricInfo("cost-per-m-tokens", "cost per million output tokens", "USD/1M tokens",
                   False, False, "costs {r}× as much per million output tokens as"),
        # server runs with an SLO search (engine/slo.py); n/a with the reason for other runs
        MetricInfo("goodput", "goodput at the latency SLO", "requests/s", True, True,
                   "serves {r}× the goodput of"),
        # training runs (engine/training_metrics.py): an item is a trained token
        MetricInfo("train-tokens-per-s", "trained tokens per second", "tokens/s", True, True,
                   "trains {r}× the tokens per second of"),
        MetricInfo("step-time", "mean step time", "ns", False, True,
                   "has {r}× the mean step time of"),
        MetricInfo("train-energy-per-token", "energy per trained token", "J/token", False,
                   False, "uses {r}× the energy per trained token of"),
        MetricInfo("train-tokens-per-j", "trained tokens per joule", "tokens/J", True, False,
                   "trains {r}× the tokens per joule of"),
        MetricInfo("cost-per-m-train-tokens", "cost per million tokens trained",
                   "USD/1M tokens", False, False,
                   "costs {r}× as much per million tokens trained as"),
        MetricInfo("train-tflops", "achieved model TFLOP/s", "TFLOP/s", True, True,
                   "achieves {r}× the model TFLOP/s of"),
        # the claim "per GPU": per device (a data-parallel run's node over its ranks), and
        # per card (a device's figure × its card's dies: an MI250 is one card of two dies)
        MetricInfo("train-tokens-per-s-per-device", "trained tokens per second per device",
                   "tokens/s", True, True, "trains {r}× the tokens per second per device of"),
        MetricInfo("train-tokens-per-s-per-card", "trained tokens per second per card",
                   "tokens/s", True, True, "trains {r}× the tokens per second per card of"),
    )
}  # fmt: skip
GENERATION_METRICS: tuple[str, ...] = (
    "ttft", "tpot", "itl-p50", "itl-p99", "e2e-latency", "decode-tokens-per-s",
    "prefill-tokens-per-s", "tokens-per-j", "prefill-energy-per-token",
    "decode-energy-per-token", "cost-per-m-tokens",
)  # fmt: skip
SERVER_METRICS: tuple[str, ...] = ("goodput",)
DEFAULT_METRICS: tuple[str, ...] = tuple(
    m for m in METRICS if m not in GENERATION_METRICS + SERVER_METRICS + TRAINING_METRICS
)


def metric_name(name: str) -> str:
    """A metric as named in METRICS; field-style spellings (decode_tokens_per_s) are taken."""
    return name.strip().lower().replace("_", "-")


WORKLOAD_FIELDS = (
    "model",
    "scenario",
    "precision",
    "batch size",
    "dynamic dims",
    "input shapes",
    "prompt tokens",
    "new tokens",
    "server load",
    "training step",
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
    if metric in GENERATION_METRICS:
        return generation_metric(run, metric, energy_view, cost_profiles)
    if metric in TRAINING_METRICS:
        return training_metric(run, metric, energy_view, cost_profiles)
    if metric == "goodput":
        if run.server is None:
            return None, "not a server-scenario run"
        if run.server.goodput_per_s is None:
            return None, "the run searched no latency SLO (--slo)"
        return Interval(run.server.goodput_per_s), None
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


def generation_metric(
    run: RunResult,
    metric: str,
    energy_view: str,
    cost_profiles: Mapping[str, CostProfile] | None,
) -> tuple[Interval | None, str | None]:
    """A generation run's figure for one of GENERATION_METRICS, or None + the reason.

    Energy-based ones rest on measured energy only, and the per-phase ones on a measured split
    (a split by time or of estimated energy is shown as an estimate, never ranked).
    """
    g = run.generation
    if g is None:
        return None, "not a generation run"
    if metric in ("ttft", "tpot", "decode-tokens-per-s"):
        return {"ttft": g.ttft_ns, "tpot": g.tpot_ns, "decode-tokens-per-s": g.decode_tokens_per_s}[
            metric
        ], None
    old = "not recorded for this run (measured before it was)"
    if metric in ("itl-p50", "itl-p99"):
        pe = g.itl(0.5 if metric == "itl-p50" else 0.99)
        return (None, old) if pe is None else (Interval(pe.value_ns, pe.lo_ns, pe.hi_ns), None)
    if metric == "e2e-latency":
        if g.e2e_latency_ns is not None:
            return g.e2e_latency_ns, None
        lat = run.latency
        return (
            (None, old)
            if lat is None
            else (Interval(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns), None)
        )
    if metric == "prefill-tokens-per-s":
        return (None, old) if g.prefill_tokens_per_s is None else (g.prefill_tokens_per_s, None)
    if metric == "cost-per-m-tokens":
        profile = (cost_profiles or {}).get(run.spec.device)
        if profile is None:
            return None, f"no cost profile for device {run.spec.device}"
        iv, reason, _ = usd_per_million_output_tokens(
            run, profile, energy_view=energy_view, allow_estimate=False
        )
        return iv, reason
    energy, reason = energy_per_item(run, energy_view)  # measured J per sequence
    if energy is None:
        return None, reason
    if metric == "tokens-per-j":
        return inverse(energy, float(g.new_tokens)), None
    split = next((p for p in g.phase_energy if p.view == energy_view), None)
    if split is None:
        return None, g.phase_energy_na_reason or f"no {energy_view} energy split for this run"
    if split.estimate:
        return None, f"the split between prefill and decode is an estimate ({split.note})"
    joules, tokens = (
        (split.prefill_j, split.prefill_tokens)
        if metric == "prefill-energy-per-token"
        else (split.decode_j, split.decode_tokens)
    )
    if tokens <= 0:
        return None, "the energy window covers no tokens"
    rel = energy.rel_half_width
    per = joules / tokens
    return (Interval(per) if rel is None else Interval(per, per * (1 - rel), per * (1 + rel))), None


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
    """A configuration's runs pooled for one metric (see ``pool_values``)."""
    values: list[Interval] = []
    reasons: list[str] = []
    for run in runs:
        iv, reason = metric_value(run, metric, energy_view=energy_view, cost_profiles=cost_profiles)
        if iv is None:
            reasons.append(reason or "not available")
        else:
            values.append(iv)
    return pool_values(values, reasons, len(runs))


def pool_values(values: Sequence[Interval], reasons: Sequence[str], n_runs: int) -> MetricEstimate:
    """Per-run figures pooled: the geometric mean with a t interval on the spread between runs
    (R ≥ 2), or the single run's figure; none at all gives the runs' reasons."""
    if not values:
        return MetricEstimate(None, "; ".join(dict.fromkeys(reasons)) or "not available", 0)
    logs = tuple(math.log(v.value) for v in values)
    rels = tuple(v.rel_half_width for v in values)
    r = len(values)
    partial = f" ({r} of {n_runs} runs)" if r < n_runs else ""
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
    return MetricEstimate(value, None, r, logs, rels, method)


def _spec_parts(spec: RunSpec, sha: str | None) -> dict[str, str]:
    gen = spec.scenario.value == "generation"
    return {
        "host": f"@{spec.host}" if spec.host else "@local",  # fleet runs: the agent's name
        "device": spec.device,
        "runtime": spec.runtime,
        "precision": spec.precision,
        "batch": f"b{spec.batch_size}",
        "threads": f"t{spec.threads}" if spec.threads else "t-default",
        "model": spec.model_label,
        "scenario": spec.scenario.value,
        "provider": spec.ort_provider or "default provider",
        "graph": f"graph-opt {spec.ort_graph_optimization}",
        "dims": ",".join(f"{k}={v}" for k, v in spec.dims.items()) or "default dims",
        "shapes": ",".join(f"{k}={v}" for k, v in spec.input_shapes.items()) or "declared shapes",
        "gen": f"p{spec.prompt_tokens}/gen{spec.new_tokens}" if gen else "",
        "streams": f"s{spec.streams}",  # server: concurrent streams, and the load they serve
        "load": spec.server_load_label,
        "instances": f"i{spec.instances}",  # multi-instance CPU runs: copies measured together
        "sha": (sha or "unknown")[:8],
    }


def config_labels(first_runs: Sequence[RunResult]) -> list[str]:
    """Short labels: device · runtime, plus whatever else differs between the configurations."""
    parts = [_spec_parts(r.spec, model_hash(r)) for r in first_runs]
    if len(parts) <= 1:
        return [r.spec.label() for r in first_runs]
    varying = [k for k in parts[0] if k in ("device", "runtime") or len({p[k] for p in parts}) > 1]
    labels = [
        join_label(p[k] for k in varying) or r.spec.label()
        for p, r in zip(parts, first_runs, strict=True)
    ]
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} #{seen[lab]}")
    return out
