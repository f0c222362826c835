"""The report model: everything a comparison report says, as plain data, built once.

HTML, PDF, CSV and JSON are renderings of this one model, so they cannot disagree. Figures come
from wattbench.engine.compare (per-run values, pooled replicates, ratios and verdicts); this
module only selects, labels and arranges them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from wattbench import __version__
from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import EnergyFigure, RunResult, RunStatus, host_of
from wattbench.domain.spec import Scenario
from wattbench.engine.board import Board, verdict_board
from wattbench.engine.compare import Comparison, compare_runs
from wattbench.engine.metrics import COST_METRICS, METRICS, ConfigGroup, metric_value
from wattbench.engine.ratios import Ratio, verdict_sentence
from wattbench.engine.token_energy import token_energy
from wattbench.engine.training_metrics import TRAINING_METRICS
from wattbench.reports.sentences import model_name, summary_lines
from wattbench.reports.sizing import NO_SIZING, Sizing
from wattbench.reports.systems import Machines, SystemEntry, machines, raw_systems

log = logging.getLogger(__name__)

REPORT_METRICS: tuple[str, ...] = (
    "throughput",
    "latency-p50",
    "latency-p99",
    "latency-mean",
    "energy",
    "perf-per-watt",
    "cost",
    "co2",
)
# added when any run generated tokens (engine/generation.py)
GENERATION_REPORT_METRICS: tuple[str, ...] = (
    "ttft",
    "tpot",
    "itl-p50",
    "itl-p99",
    "decode-tokens-per-s",
    "prefill-tokens-per-s",
    "tokens-per-j",
    "prefill-energy-per-token",
    "decode-energy-per-token",
    "cost-per-m-tokens",
)
UNKNOWN_HOST = "unknown host"


@dataclass(frozen=True)
class Cell:
    """One figure in a table: value with its 95 % interval, or None with the reason."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    na_reason: str | None = None
    note: str = ""  # e.g. "not a headline figure: n_eff 120 < 662"


@dataclass(frozen=True)
class DisplayUnit:
    """How a metric is shown to people: unit text and the factor from stored units."""

    unit: str
    scale: float


@dataclass(frozen=True)
class RunEntry:
    run: RunResult
    group_label: str | None  # None: not compared (failed, cancelled...)
    host: str
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class GroupEntry:
    group: ConfigGroup
    is_baseline: bool
    cells: Mapping[str, Cell]
    methods: Mapping[str, str]  # how each pooled figure was made
    host: str


@dataclass(frozen=True)
class ReportModel:
    title: str
    generated_at: str
    wattbench_version: str
    energy_view: str
    noise: float
    comparison: Comparison
    metrics: tuple[str, ...]
    runs: tuple[RunEntry, ...]
    groups: tuple[GroupEntry, ...]
    summary: tuple[str, ...]
    sentences: tuple[str, ...]
    warnings: tuple[str, ...]
    systems: tuple[SystemEntry, ...]  # raw descriptions (JSON)
    machines: Machines  # what differs between the machines (HTML, PDF)
    board: Board  # the best configuration per question (engine.board)
    cost_profiles: Mapping[str, CostProfile]
    units: Mapping[str, DisplayUnit]
    sizing: Sizing = NO_SIZING  # checked claims and the capacity plan, when given

    @property
    def baseline(self) -> GroupEntry:
        return next(g for g in self.groups if g.is_baseline)

    def ratio(self, group_label: str, metric: str) -> Ratio | None:
        for row in self.comparison.rows:
            if row.group.label == group_label:
                return row.ratios.get(metric)
        return None


# -- building ------------------------------------------------------------------------------


def build_report(
    runs: Sequence[RunResult],
    *,
    baseline_id: str | None = None,
    energy_view: str = "device",
    noise: float = 0.01,
    cost_profiles: Mapping[str, CostProfile] | None = None,
    title: str | None = None,
    sizing: Sizing | None = None,
) -> ReportModel:
    """Compare the runs and gather every figure, sentence and description the report shows."""
    if not runs:
        raise BadInputError("A report needs at least one run: give the ids of stored runs.")
    profiles = dict(cost_profiles or {})
    metrics = report_metrics(runs)
    comparison = compare_runs(
        runs,
        baseline_id=baseline_id,
        metrics=metrics,
        noise=noise,
        energy_view=energy_view,
        cost_profiles=profiles,
    )
    group_of = {rid: g.label for g in comparison.groups for rid in g.run_ids}
    unique = _unique(runs)
    shown_in = {m: display_unit(m, [_pooled(g, m) for g in comparison.groups]
                                + [_estimate_value(r, m, energy_view) for r in unique])
                for m in metrics}  # fmt: skip
    entries = tuple(
        RunEntry(
            run=r,
            group_label=group_of.get(r.id),
            host=host_of(r.system) or UNKNOWN_HOST,
            cells=_run_cells(r, energy_view, profiles, metrics, shown_in),
        )
        for r in unique
    )
    groups = tuple(
        GroupEntry(
            group=g,
            is_baseline=g is comparison.baseline,
            cells={m: _group_cell(g, m, energy_view, shown_in[m]) for m in metrics},
            methods={m: g.estimate(m).method for m in metrics},
            host=host_of(g.runs[0].system) or UNKNOWN_HOST,
        )
        for g in comparison.groups
    )
    model_names = sorted({model_name(g.runs[0]) for g in comparison.groups})
    return ReportModel(
        title=title or f"Wattbench comparison — {', '.join(model_names)}",
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        wattbench_version=__version__,
        energy_view=energy_view,
        noise=noise,
        comparison=comparison,
        metrics=metrics,
        runs=entries,
        groups=groups,
        summary=summary_lines(comparison, with_cost=bool(profiles)),
        sentences=_sentences(comparison, bool(profiles)),
        warnings=tuple(comparison.warnings),
        systems=raw_systems([(e.run.system, _who(e), e.host) for e in entries]),
        machines=machines([(e.run.system, _who(e)) for e in entries]),
        board=verdict_board(comparison, profiles),
        cost_profiles=profiles,
        units=shown_in,
        sizing=sizing or NO_SIZING,
    )  # fmt: skip


def report_metrics(runs: Sequence[RunResult]) -> tuple[str, ...]:
    """The metrics a report shows: the generation ones too when a run generated tokens; a
    training run's own (its items are trained tokens) for training runs."""
    if any(r.spec.scenario is Scenario.TRAINING for r in runs):
        return TRAINING_METRICS
    if any(r.generation is not None for r in runs):
        return REPORT_METRICS + GENERATION_REPORT_METRICS
    return REPORT_METRICS


def _unique(runs: Sequence[RunResult]) -> list[RunResult]:
    seen: set[str] = set()
    out = []
    for r in runs:
        if r.id not in seen:
            seen.add(r.id)
            out.append(r)
    return out


def _run_cells(
    run: RunResult,
    energy_view: str,
    profiles: Mapping[str, CostProfile],
    metrics: Sequence[str],
    shown_in: Mapping[str, DisplayUnit],
) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for m in metrics:
        iv, reason = metric_value(run, m, energy_view=energy_view, cost_profiles=profiles)
        if iv is None:
            cells[m] = Cell(None, na_reason=reason or "not available", note=_estimate_note(run, m,
                            energy_view, shown_in[m]))  # fmt: skip
        else:
            note = _join_notes(
                _percentile_note(run, m), _per_item_note(iv.value, run, m, shown_in[m])
            )
            cells[m] = Cell(iv.value, iv.lo, iv.hi, note=note)
    return cells


def _sentences(comparison: Comparison, with_cost: bool) -> tuple[str, ...]:
    """Every verdict sentence; cost and CO2 only when cost profiles were given."""
    return tuple(
        verdict_sentence(row.ratios[m], row.group.label, comparison.baseline.label,
                         energy_view=comparison.energy_view)
        for row in comparison.rows
        for m in comparison.metrics
        if with_cost or m not in COST_METRICS
    )  # fmt: skip


def _pooled(group: ConfigGroup, metric: str) -> float | None:
    value = group.estimate(metric).value
    return None if value is None else value.value


def _who(e: RunEntry) -> str:
    return e.group_label or f"{e.run.spec.label()} ({e.run.status.value})"


def _group_cell(group: ConfigGroup, metric: str, energy_view: str, unit: DisplayUnit) -> Cell:
    est = group.estimate(metric)
    if est.value is None:
        return Cell(None, na_reason=est.na_reason or "not available",
                    note=_estimate_note(group.runs[0], metric, energy_view, unit))  # fmt: skip
    note = _per_item_note(est.value.value, group.runs[0], metric, unit)
    if len(group.runs) == 1:
        note = _join_notes(_percentile_note(group.runs[0], metric), note)
    return Cell(est.value.value, est.value.lo, est.value.hi, note=note)


def _per_item_note(value: float, run: RunResult, metric: str, unit: DisplayUnit) -> str:
    """A latency per call read per item too, where a call runs a batch of several (in the
    column's unit: no 'µs' figure under an 'ms' header)."""
    batch = run.spec.batch_size
    if not metric.startswith("latency") or batch <= 1:
        return ""
    return f"{units.number(value / batch * unit.scale)} {unit.unit} per item (batch of {batch})"


def _join_notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _percentile_note(run: RunResult, metric: str) -> str:
    if metric not in ("latency-p50", "latency-p99") or run.latency is None:
        return ""
    pe = run.latency.percentile(0.5 if metric == "latency-p50" else 0.99)
    if pe is None or pe.headline:
        return ""
    return f"not a headline figure: too few effective samples (n_eff {run.latency.n_eff:.0f})"


def _estimate_figure(run: RunResult, energy_view: str) -> EnergyFigure | None:
    est = [e for e in run.energy if e.is_estimate and e.items > 0]
    own = [e for e in est if e.domain == energy_view] or est
    return own[0] if own else None


def _estimate_value(run: RunResult, metric: str, energy_view: str) -> float | None:
    """The estimate that stands in for a missing measurement, in stored units (None: none)."""
    if metric in _TOKEN_ENERGY:
        te, _ = token_energy(run.generation, energy_view)
        if te is None or not te.estimate:
            return None
        return (
            te.tokens_per_j
            if metric == "tokens-per-j"
            else (te.prefill_j_per_token if metric.startswith("prefill") else te.decode_j_per_token)
        )
    e = _estimate_figure(run, energy_view)
    if e is None or metric not in _ITEM_ENERGY:
        return None
    return e.energy_per_item_j if metric in ("energy", "train-energy-per-token") else e.items_per_j


def _estimate_note(run: RunResult, metric: str, energy_view: str, unit: DisplayUnit) -> str:
    """Say what estimate exists when only an estimate stands in for a measurement, in the unit
    of the column it sits in (no 'J' figure under an 'mJ' header)."""
    value = _estimate_value(run, metric, energy_view)
    if value is None:
        return ""
    text = f"{units.number(value * unit.scale)} {unit.unit}"
    if metric in _TOKEN_ENERGY:
        te, _ = token_energy(run.generation, energy_view)
        assert te is not None
        return f"ESTIMATE, not a measurement: {text} ({te.method}; {te.note})"
    e = _estimate_figure(run, energy_view)
    assert e is not None
    return f"ESTIMATE, not a measurement: {text} ({e.source}, {e.method})"


_TOKEN_ENERGY = ("tokens-per-j", "prefill-energy-per-token", "decode-energy-per-token")
# energy per item and items per joule: of an inference, or of a trained token
_ITEM_ENERGY = ("energy", "perf-per-watt", "train-energy-per-token", "train-tokens-per-j")


# -- display units ---------------------------------------------------------------------------


def display_unit(metric: str, values: Sequence[float | None]) -> DisplayUnit:
    """A unit that reads well for the typical value (latency in µs/ms/s, energy in µJ/mJ/J)."""
    known = sorted(v for v in values if v is not None and math.isfinite(v) and v > 0)
    typical = known[len(known) // 2] if known else None
    if metric in ("prefill-energy-per-token", "decode-energy-per-token", "train-energy-per-token"):
        per = "per trained token" if metric == "train-energy-per-token" else "per token"
        if typical is None or 1e-3 <= typical < 1:
            return DisplayUnit(f"mJ {per}", 1e3)
        if typical < 1e-3:
            return DisplayUnit(f"µJ {per}", 1e6)
        return DisplayUnit(f"J {per}", 1.0)
    if metric.startswith("latency") or METRICS[metric].unit == "ns":
        if typical is not None and typical < 1e6:
            return DisplayUnit("µs", 1e-3)
        if typical is not None and typical >= 1e9:
            return DisplayUnit("s", 1e-9)
        return DisplayUnit("ms", 1e-6)
    if metric == "energy":
        if typical is None or 1e-3 <= typical < 1:
            return DisplayUnit("mJ per inference", 1e3)
        if typical < 1e-3:
            return DisplayUnit("µJ per inference", 1e6)
        return DisplayUnit("J per inference", 1.0)
    fixed = {
        "throughput": "inferences/s",
        "perf-per-watt": "inferences/J",
        "cost": "USD per million inferences",
        "co2": "gCO2 per million inferences",
        "train-tokens-per-j": "trained tokens/J",
        "cost-per-m-train-tokens": "USD per million tokens trained",
    }
    return DisplayUnit(fixed.get(metric, METRICS[metric].unit), 1.0)


def compared(entry: RunEntry) -> bool:
    return entry.group_label is not None and entry.run.status is RunStatus.DONE
