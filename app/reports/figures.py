"""The compare view's charts, drawn from a ReportModel: bars, CDFs, power, batch curves, Pareto.

A chart that has nothing to show is not drawn; `build_charts` says why in `ChartSet.skipped`, so
the report can tell the reader instead of showing an empty frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from wattbench.engine.compare import METRICS, ConfigGroup
from wattbench.reports.charts import (
    Bar,
    Chart,
    Point,
    Series,
    bar_chart,
    batch_chart,
    cdf_chart,
    pareto_chart,
    timeline_chart,
)
from wattbench.reports.model import GroupEntry, ReportModel

log = logging.getLogger(__name__)

BAR_METRICS: tuple[str, ...] = ("throughput", "latency-p99", "energy", "perf-per-watt", "cost")
MAX_TIMELINE_SERIES = 8


@dataclass
class ChartSet:
    charts: list[Chart] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (chart title, why)


def estimated_energy_j(group: ConfigGroup, energy_view: str) -> float | None:
    """Energy per inference from an estimate (model), for display only: never ranked."""
    vals = []
    for run in group.runs:
        est = [e for e in run.energy if e.is_estimate and e.items > 0]
        own = [e for e in est if e.domain == energy_view] or est
        if own:
            vals.append(own[0].energy_per_item_j)
    return float(np.exp(np.mean(np.log(vals)))) if vals else None


def _bars(model: ReportModel, metric: str) -> list[Bar]:
    unit = model.units[metric]
    bars = []
    for g in model.groups:
        c = g.cells[metric]
        if c.value is not None:
            bars.append(
                Bar(
                    g.group.label,
                    c.value * unit.scale,
                    None if c.lo is None else c.lo * unit.scale,
                    None if c.hi is None else c.hi * unit.scale,
                    baseline=g.is_baseline,
                )
            )
            continue
        est = estimated_energy_j(g.group, model.energy_view) if metric in (
            "energy", "perf-per-watt") else None  # fmt: skip
        if est is not None and est > 0:
            value = est * unit.scale if metric == "energy" else 1 / est
            bars.append(Bar(g.group.label, value, estimate=True, baseline=g.is_baseline))
        else:
            bars.append(Bar(g.group.label, None, na_reason=c.na_reason, baseline=g.is_baseline))
    return bars


def _latencies_ms(g: GroupEntry) -> np.ndarray | None:
    parts = [np.asarray(r.arrays["latencies_ns"], dtype=np.float64) for r in g.group.runs
             if "latencies_ns" in r.arrays and len(r.arrays["latencies_ns"])]  # fmt: skip
    return np.concatenate(parts) * 1e-6 if parts else None


def _power_series(model: ReportModel) -> list[Series]:
    out: list[Series] = []
    for g in model.groups:
        run = g.group.runs[0]
        starts = run.arrays.get("starts_ns")
        for trace in run.telemetry.values():
            if trace.unit != "W" or len(trace.t_ns) < 2:
                continue
            t0 = int(starts[0]) if starts is not None and len(starts) else int(trace.t_ns[0])
            x = (np.asarray(trace.t_ns, dtype=np.int64) - t0) * 1e-9
            out.append(Series(f"{g.group.label}: {trace.name}", x, np.asarray(trace.values)))
    return out[:MAX_TIMELINE_SERIES]


def _batch_series(model: ReportModel) -> list[Series]:
    """One line per configuration that differs only in batch size."""
    lines: dict[tuple[object, ...], list[GroupEntry]] = {}
    for g in model.groups:
        s = g.group.spec
        key = (s.model, s.device, s.runtime, s.precision, s.threads, s.scenario.value)
        lines.setdefault(key, []).append(g)
    out = []
    for members in lines.values():
        pts = sorted((g.group.spec.batch_size, g.cells["throughput"]) for g in members
                     if g.cells["throughput"].value is not None)  # fmt: skip
        if len({b for b, _ in pts}) < 2:
            continue
        s = members[0].group.spec
        label = f"{s.device} · {s.runtime} · {s.precision}" + (f" · t{s.threads}" if s.threads
                                                              else "")  # fmt: skip
        xs = np.array([b for b, _ in pts], dtype=np.float64)
        ys = np.array([c.value for _, c in pts], dtype=np.float64)
        if all(c.lo is not None and c.hi is not None for _, c in pts):
            lo = np.array([c.lo for _, c in pts], dtype=np.float64)
            hi = np.array([c.hi for _, c in pts], dtype=np.float64)
            out.append(Series(label, xs, ys, lo, hi))
        else:
            out.append(Series(label, xs, ys))
    return out


def _pareto_points(model: ReportModel) -> list[Point]:
    e_unit = model.units["energy"]
    p99_unit_ms = 1e-6  # stored ns → ms
    points = []
    for g in model.groups:
        thr, p99, energy = g.cells["throughput"], g.cells["latency-p99"], g.cells["energy"]
        if thr.value is None or p99.value is None:
            continue
        colour: float | None = None
        estimate = False
        if energy.value is not None:
            colour = energy.value * e_unit.scale
        else:
            est = estimated_energy_j(g.group, model.energy_view)
            if est is not None:
                colour, estimate = est * e_unit.scale, True
        points.append(Point(g.group.label, p99.value * p99_unit_ms, thr.value, colour, estimate))
    return points


def build_charts(model: ReportModel, *, png_dpi: int = 250) -> ChartSet:
    """Every chart the report shows, in reading order."""
    out = ChartSet()
    for metric in BAR_METRICS:
        info = METRICS[metric]
        bars = _bars(model, metric)
        title = info.label if info.label[:2] in ("p5", "p9") else info.label.capitalize()
        if all(b.value is None for b in bars):
            reasons = "; ".join(dict.fromkeys(b.na_reason or "not available" for b in bars))
            out.skipped.append((title, f"no configuration has this figure ({reasons})"))
            continue
        out.charts.append(
            bar_chart(
                f"bar_{metric}",
                title,
                model.units[metric].unit,
                bars,
                higher_is_better=info.higher_is_better,
                png_dpi=png_dpi,
            )
        )
    cdfs = [(g.group.label, lat) for g in model.groups if (lat := _latencies_ms(g)) is not None]
    if cdfs:
        out.charts.append(cdf_chart(cdfs, png_dpi=png_dpi))
    else:
        out.skipped.append(("Latency distribution", "no run has its raw latencies stored"))
    power = _power_series(model)
    if power:
        out.charts.append(timeline_chart(power, png_dpi=png_dpi))
    else:
        out.skipped.append(("Power timeline", "no run has a sampled power trace"))
    batch = _batch_series(model)
    if batch:
        out.charts.append(batch_chart(batch, png_dpi=png_dpi))
    else:
        out.skipped.append(
            ("Throughput vs batch size", "no configuration was measured at two or more batch sizes")
        )
    points = _pareto_points(model)
    if len(points) >= 2:
        out.charts.append(pareto_chart(points, model.units["energy"].unit, png_dpi=png_dpi))
    else:
        out.skipped.append(
            ("Pareto view", "fewer than two configurations have both throughput and p99 latency")
        )
    log.debug("built %d charts, skipped %d", len(out.charts), len(out.skipped))
    return out
