"""The report model: everything a comparison report says, as plain data, built once.

HTML, PDF, CSV and JSON are renderings of this one model, so they cannot disagree. Figures come
from wattbench.engine.compare (per-run values, pooled replicates, ratios and verdicts); this
module only selects, labels and arranges them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wattbench import __version__
from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult, RunStatus, host_of
from wattbench.engine.compare import Comparison, compare_runs
from wattbench.engine.metrics import COST_METRICS, METRICS, ConfigGroup, metric_value
from wattbench.engine.ratios import Ratio, verdict_sentence
from wattbench.engine.token_energy import token_energy
from wattbench.reports.sentences import model_name, summary_sentence

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
MAX_SYSTEM_VALUE_CHARS = 400
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
class SystemEntry:
    title: str
    used_by: tuple[str, ...]  # group labels (or run labels) measured on this machine
    items: tuple[tuple[str, str], ...]


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
    systems: tuple[SystemEntry, ...]
    cost_profiles: Mapping[str, CostProfile]
    units: Mapping[str, DisplayUnit]

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
    entries = tuple(
        RunEntry(
            run=r,
            group_label=group_of.get(r.id),
            host=host_of(r.system) or UNKNOWN_HOST,
            cells=_run_cells(r, energy_view, profiles, metrics),
        )
        for r in _unique(runs)
    )
    groups = tuple(
        GroupEntry(
            group=g,
            is_baseline=g is comparison.baseline,
            cells={m: _group_cell(g, m, energy_view) for m in metrics},
            methods={m: g.estimate(m).method for m in metrics},
            host=host_of(g.runs[0].system) or UNKNOWN_HOST,
        )
        for g in comparison.groups
    )
    shown_in = {m: display_unit(m, [c.cells[m].value for c in groups]) for m in metrics}
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
        summary=tuple(summary_sentence(comparison, row_label, energy_view)
                      for row_label in (row.group.label for row in comparison.rows)),
        sentences=_sentences(comparison, bool(profiles)),
        warnings=tuple(comparison.warnings),
        systems=_systems(entries),
        cost_profiles=profiles,
        units=shown_in,
    )  # fmt: skip


def report_metrics(runs: Sequence[RunResult]) -> tuple[str, ...]:
    """The metrics a report shows: the generation ones too when a run generated tokens."""
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
    metrics: Sequence[str] = REPORT_METRICS,
) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for m in metrics:
        iv, reason = metric_value(run, m, energy_view=energy_view, cost_profiles=profiles)
        if iv is None:
            cells[m] = Cell(None, na_reason=reason or "not available", note=_estimate_note(run, m,
                            energy_view))  # fmt: skip
        else:
            note = _join_notes(_percentile_note(run, m), _per_item_note(iv.value, run, m))
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


def _group_cell(group: ConfigGroup, metric: str, energy_view: str) -> Cell:
    est = group.estimate(metric)
    if est.value is None:
        return Cell(None, na_reason=est.na_reason or "not available",
                    note=_estimate_note(group.runs[0], metric, energy_view))  # fmt: skip
    note = _per_item_note(est.value.value, group.runs[0], metric)
    if len(group.runs) == 1:
        note = _join_notes(_percentile_note(group.runs[0], metric), note)
    return Cell(est.value.value, est.value.lo, est.value.hi, note=note)


def _per_item_note(value: float, run: RunResult, metric: str) -> str:
    """A latency per call read per item too, where a call runs a batch of several."""
    batch = run.spec.batch_size
    if not metric.startswith("latency") or batch <= 1:
        return ""
    return f"{units.per_item(value, batch)} (batch of {batch})"


def _join_notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _percentile_note(run: RunResult, metric: str) -> str:
    if metric not in ("latency-p50", "latency-p99") or run.latency is None:
        return ""
    pe = run.latency.percentile(0.5 if metric == "latency-p50" else 0.99)
    if pe is None or pe.headline:
        return ""
    return f"not a headline figure: too few effective samples (n_eff {run.latency.n_eff:.0f})"


def _estimate_note(run: RunResult, metric: str, energy_view: str) -> str:
    """Say what estimate exists when only an estimate stands in for a measurement."""
    if metric in _TOKEN_ENERGY:
        return _token_estimate_note(run, metric, energy_view)
    if metric not in ("energy", "perf-per-watt"):
        return ""
    est = [e for e in run.energy if e.is_estimate and e.items > 0]
    if not est:
        return ""
    own = [e for e in est if e.domain == energy_view] or est
    e = own[0]
    if metric == "energy":  # in mJ/µJ like the column beside it, not '0.00579 J'
        u = display_unit("energy", [e.energy_per_item_j])
        return (f"ESTIMATE, not a measurement: {e.energy_per_item_j * u.scale:.3g} {u.unit} "
                f"({e.source}, {e.method})")  # fmt: skip
    return (f"ESTIMATE, not a measurement: {e.items_per_j:.3g} inferences/J "
            f"({e.source}, {e.method})")  # fmt: skip


_TOKEN_ENERGY = ("tokens-per-j", "prefill-energy-per-token", "decode-energy-per-token")


def _token_estimate_note(run: RunResult, metric: str, energy_view: str) -> str:
    """The energy per token a run has as an estimate (estimated energy or a split by time)."""
    te, _ = token_energy(run.generation, energy_view)
    if te is None or not te.estimate:
        return ""
    if metric == "tokens-per-j":
        text = f"{te.tokens_per_j:.3g} output tokens/J"
    else:
        j = te.prefill_j_per_token if metric.startswith("prefill") else te.decode_j_per_token
        u = display_unit(metric, [j])
        text = f"{j * u.scale:.3g} {u.unit}"
    return f"ESTIMATE, not a measurement: {text} ({te.method}; {te.note})"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings and lists as ('a.b[0].c', 'text') pairs, in their recorded order."""
    out: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        if not value and prefix:
            out.append((prefix, "(none)"))
        for k, v in value.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list | tuple):
        if not value and prefix:
            out.append((prefix, "(none)"))
        for i, v in enumerate(value):
            out.extend(flatten(v, f"{prefix}[{i}]"))
    else:
        text = "unknown" if value is None else str(value)
        if len(text) > MAX_SYSTEM_VALUE_CHARS:
            text = text[: MAX_SYSTEM_VALUE_CHARS - 1] + "…"
        out.append((prefix or "value", text))
    return out


def _systems(entries: Sequence[RunEntry]) -> tuple[SystemEntry, ...]:
    """One entry per distinct system description, with the configurations measured on it."""
    by_key: dict[str, tuple[RunEntry, list[str]]] = {}
    for e in entries:
        key = json.dumps(e.run.system, sort_keys=True, default=str)
        who = e.group_label or f"{e.run.spec.label()} ({e.run.status.value})"
        if key not in by_key:
            by_key[key] = (e, [])
        if who not in by_key[key][1]:
            by_key[key][1].append(who)
    out = []
    hosts_seen: dict[str, int] = {}
    for first, used_by in by_key.values():
        host = first.host
        hosts_seen[host] = hosts_seen.get(host, 0) + 1
        title = host if hosts_seen[host] == 1 else f"{host} (description #{hosts_seen[host]})"
        items = tuple(flatten(first.run.system)) or (("system", "not recorded"),)
        out.append(SystemEntry(title, tuple(used_by), items))
    return tuple(out)


# -- display units ---------------------------------------------------------------------------


def display_unit(metric: str, values: Sequence[float | None]) -> DisplayUnit:
    """A unit that reads well for the typical value (latency in µs/ms/s, energy in µJ/mJ/J)."""
    known = sorted(v for v in values if v is not None and math.isfinite(v) and v > 0)
    typical = known[len(known) // 2] if known else None
    if metric in ("prefill-energy-per-token", "decode-energy-per-token"):
        if typical is None or 1e-3 <= typical < 1:
            return DisplayUnit("mJ per token", 1e3)
        if typical < 1e-3:
            return DisplayUnit("µJ per token", 1e6)
        return DisplayUnit("J per token", 1.0)
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
    }
    return DisplayUnit(fixed.get(metric, METRICS[metric].unit), 1.0)


def compared(entry: RunEntry) -> bool:
    return entry.group_label is not None and entry.run.status is RunStatus.DONE
