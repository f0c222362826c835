"""Comparing runs: ratios to a baseline with 95 % intervals and verdicts (METHOD.md).

- Runs of one configuration (same spec.config_key() and model hash) are replicates, pooled
  by the geometric mean. The unit of replication is the process run.
- R ≥ 2 on both sides: r = X̂_B / X̂_A with interval exp(log r ± t_ν·√(s²_A/R_A + s²_B/R_B)),
  s² the variance of the log per-run figures, ν Welch's degrees of freedom. Otherwise the
  relative half-widths of the two sides combine: √(h_A² + h_B²), labelled "within-run only".
- Verdict: faster/slower (better/worse for energy and cost) only when the whole interval lies
  outside [1 − δ, 1 + δ] (δ the noise threshold, 1 % by default); equivalent when it lies
  inside; otherwise inconclusive, with ⌈4z²σ²/δ²⌉ runs per side that would settle it.
- A figure that cannot be had is None with the reason, never 0; estimated energy is never
  ranked against measured energy; workloads that differ are warned about.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattbench.domain.cost import CostProfile
from wattbench.domain.energy import check_energy_view
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import Interval, RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.engine.cost import cost_figures, energy_per_item
from wattbench.engine.stats import Z_975, t_975

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "Comparison",
    "ComparisonRow",
    "ConfigGroup",
    "MetricEstimate",
    "MetricInfo",
    "Ratio",
    "compare_runs",
    "metric_value",
    "ratio_of",
    "verdict_sentence",
    "workload_phrase",
]

METHOD_BETWEEN_RUNS = "between runs (Welch)"
METHOD_WITHIN_RUN = "within-run only"
DEFAULT_NOISE = 0.01  # the noise threshold: ratios within [0.99, 1.01] are no difference
_ENERGY_BASED = ("energy", "perf-per-watt", "cost", "co2")
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
        MetricInfo("latency-p50", "median latency", "ns", False, True,
                   "has {r}× the median latency of"),
        MetricInfo("latency-p99", "p99 latency", "ns", False, True,
                   "has {r}× the p99 latency of"),
        MetricInfo("latency-mean", "mean latency", "ns", False, True,
                   "has {r}× the mean latency of"),
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

_WORKLOAD_FIELDS = (
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
        return _sha(self.runs[0])

    def estimate(self, metric: str) -> MetricEstimate:
        return self.estimates[metric]


def _sha(run: RunResult) -> str | None:
    return run.model.sha256 if run.model is not None and run.model.sha256 else None


def _pool(
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


def _labels(first_runs: Sequence[RunResult]) -> list[str]:
    """Short labels: device · runtime, plus whatever else differs between the configurations."""
    parts = [_spec_parts(r.spec, _sha(r)) for r in first_runs]
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


# -- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    group: ConfigGroup
    ratios: Mapping[str, Ratio]
    comparable: bool
    differences: tuple[str, ...]  # what differs from the baseline's workload


@dataclass(frozen=True)
class Comparison:
    baseline: ConfigGroup
    groups: tuple[ConfigGroup, ...]  # all groups, baseline included, in order of appearance
    rows: tuple[ComparisonRow, ...]  # one per non-baseline group
    warnings: tuple[str, ...]
    noise: float
    energy_view: str
    metrics: tuple[str, ...]

    def row(self, label: str) -> ComparisonRow:
        for row in self.rows:
            if row.group.label == label:
                return row
        raise KeyError(label)

    def ratio(self, label: str, metric: str) -> Ratio:
        return self.row(label).ratios[metric]

    def verdict(
        self,
        row: ComparisonRow,
        metric: str,
        label: str | None = None,
        baseline_label: str | None = None,
    ) -> str:
        """The short verdict sentence of one ratio, with the labels the caller shows."""
        return verdict_sentence(
            row.ratios[metric],
            label or row.group.label,
            baseline_label or self.baseline.label,
            energy_view=self.energy_view,
        )

    def sentences(self) -> list[str]:
        """One verdict sentence per row and metric (CLI and reports)."""
        out = []
        for row in self.rows:
            workload = workload_phrase(self.baseline.runs[0]) if row.comparable else None
            for m in self.metrics:
                out.append(
                    verdict_sentence(
                        row.ratios[m],
                        row.group.label,
                        self.baseline.label,
                        energy_view=self.energy_view,
                        workload=workload,
                        differences=row.differences,
                    )
                )
        return out


def _differences(base: RunResult, other: RunResult) -> tuple[str, ...]:
    wa, wb = base.spec.workload_key(), other.spec.workload_key()
    diffs = [name for name, x, y in zip(_WORKLOAD_FIELDS, wa, wb, strict=True) if x != y]
    sa, sb = _sha(base), _sha(other)
    if sa is not None and sb is not None and sa != sb and "model" not in diffs:
        diffs.append("model file (sha256)")
    elif sa is not None and sb is not None and sa != sb:
        diffs[diffs.index("model")] = "model (and its sha256)"
    return tuple(diffs)


def compare_runs(
    runs: Sequence[RunResult],
    baseline_id: str | None = None,
    metrics: Sequence[str] | None = None,
    energy_view: str = "device",
    cost_profiles: Mapping[str, CostProfile] | None = None,
    noise: float | None = None,
) -> Comparison:
    """Group runs into configurations, pool replicates, and give every ratio to the baseline.

    baseline_id: a run id or unambiguous prefix (default: the first finished run); its whole
    configuration is the baseline. metrics: names from METRICS (default: all). noise: the
    noise threshold δ (default 1 %): faster/slower only when the whole 95 % interval of the
    ratio lies outside [1 − δ, 1 + δ]. cost_profiles: by device. Runs that did not finish are
    left out with a warning; workload mismatches and unknown model hashes are warned about.
    """
    metrics = DEFAULT_METRICS if metrics is None else tuple(metrics)
    noise = DEFAULT_NOISE if noise is None else float(noise)
    if not metrics:
        raise BadInputError("Choose at least one metric to compare.")
    if not 0 <= noise < 1:
        raise BadInputError(f"The noise threshold must be between 0 and 1 (got {noise}).")
    check_energy_view(energy_view)
    for m in metrics:
        if m not in METRICS:
            raise BadInputError(f"Unknown metric {m!r}: choose from {', '.join(METRICS)}.")
    warnings: list[str] = []
    done: list[RunResult] = []
    seen_ids: set[str] = set()
    for run in runs:
        if run.id in seen_ids:
            warnings.append(f"Run {run.id[:8]} was given twice; counted once.")
            continue
        seen_ids.add(run.id)
        if run.status is RunStatus.DONE:
            done.append(run)
        else:
            why = f": {run.reason}" if run.reason else ""
            warnings.append(
                f"Run {run.id[:8]} ({run.spec.label()}) is {run.status.value}{why}; not compared."
            )
    if baseline_id is not None:
        match = [r for r in runs if r.id == baseline_id or r.id.startswith(baseline_id)]
        if not match:
            raise BadInputError(f"Baseline run {baseline_id!r} is not among the runs compared.")
        if len({r.id for r in match}) > 1:
            raise BadInputError(f"Baseline id {baseline_id!r} is ambiguous: give more characters.")
        if match[0].status is not RunStatus.DONE:
            raise BadInputError(
                f"Baseline run {baseline_id!r} is {match[0].status.value}: choose a finished run."
            )
        baseline_run = match[0]
    elif done:
        baseline_run = done[0]
    else:
        raise BadInputError("None of these runs finished: there is nothing to compare.")

    grouped: dict[tuple[Any, ...], list[RunResult]] = {}
    for run in done:
        grouped.setdefault((run.spec.config_key(), _sha(run)), []).append(run)
    keys = list(grouped)
    labels = _labels([grouped[k][0] for k in keys])
    groups = tuple(
        ConfigGroup(
            key=k,
            label=label,
            run_ids=tuple(r.id for r in grouped[k]),
            runs=tuple(grouped[k]),
            estimates={m: _pool(grouped[k], m, energy_view, cost_profiles) for m in metrics},
        )
        for k, label in zip(keys, labels, strict=True)
    )
    base_key = (baseline_run.spec.config_key(), _sha(baseline_run))
    baseline = next(g for g in groups if g.key == base_key)

    rows = []
    for g in groups:
        if g is baseline:
            continue
        diffs = _differences(baseline.runs[0], g.runs[0])
        comparable = not diffs
        if diffs:
            warnings.append(
                f"{g.label} differs from the baseline {baseline.label} in "
                f"{', '.join(diffs)}: its ratios are not like-for-like."
            )
        if (_sha(baseline.runs[0]) is None) != (_sha(g.runs[0]) is None):
            warnings.append(
                f"The model hash of {g.label if _sha(g.runs[0]) is None else baseline.label} "
                "is unknown: the model's identity cannot be checked."
            )
        ratios = {
            m: ratio_of(
                baseline.estimates[m], g.estimates[m], m, noise=noise, comparable=comparable
            )
            for m in metrics
        }
        rows.append(ComparisonRow(g, ratios, comparable, diffs))
    log.debug("compared %d runs in %d groups", len(done), len(groups))
    return Comparison(
        baseline, groups, tuple(rows), tuple(warnings), noise, energy_view, tuple(metrics)
    )


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
    energy_based = energy_view is not None and ratio.metric in _ENERGY_BASED
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
