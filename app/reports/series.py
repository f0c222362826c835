"""The data of every comparison chart, built once for the GUI's charts and the reports' figures.

Each builder takes a ``Comparison`` and the labels to show (the GUI shortens them) and returns
plain values in display units: bars with their interval and verdict, curves, Pareto points.
pyqtgraph (``gui.compare_charts``) and matplotlib (``reports.charts``) only draw them, so a
chart in the app and the same chart in a report always show the same numbers. An estimated
energy figure (a TDP model) is returned as such (``estimate=True``), never as a measurement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from wattbench.domain.spec import join_label
from wattbench.engine.compare import Comparison
from wattbench.engine.metrics import ConfigGroup

MAX_POWER_SERIES = 8
# a bar's interval reaching past this many times the largest bar runs off the value axis
# (marked as such) instead of squeezing every bar into a corner
WIDE_INTERVAL = 1.5
LOG_SPREAD = 30.0  # a Pareto axis whose points span more than this ratio is drawn log-scaled
# The Pareto view's axes, the same in the app and the report: lower left to upper right.
PARETO_X = "p99 latency per call (ms)"
PARETO_Y = "throughput (items/s)"
PARETO_BETTER = "upper left is better"
ENERGY_METRICS = ("energy", "perf-per-watt")  # the bars an energy estimate can stand in for


@dataclass(frozen=True)
class Bar:
    """One configuration's figure for one metric, in the axis unit; None = n/a (with why)."""

    label: str
    value: float | None
    lo: float | None = None
    hi: float | None = None
    na_reason: str | None = None
    estimate: bool = False  # a TDP × load estimate, not a measurement
    baseline: bool = False
    verdict: str | None = None  # against the baseline (None for the baseline itself)
    ratio: float | None = None


@dataclass(frozen=True)
class Series:
    """A labelled curve (x and y in display units), with its interval when known."""

    label: str
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None


@dataclass(frozen=True)
class ValueAxis:
    """Where a bar chart's value axis ends, and which bars' intervals run off it."""

    top: float
    runs_off: tuple[bool, ...]  # per bar: its interval's upper end is past ``top``

    def end(self, bar: Bar) -> float:
        """Where the bar's interval (or the bar, without one) ends on the axis."""
        end = bar.hi if bar.hi is not None else bar.value
        return min(end or 0.0, self.top)


def value_axis(bars: Sequence[Bar]) -> ValueAxis:
    """The value axis' range from 0: every bar and interval, except that an interval reaching
    past ``WIDE_INTERVAL`` times the largest bar is cut there (and said to run off), so one
    wide interval cannot flatten the other bars."""
    values = [b.value for b in bars if b.value is not None and np.isfinite(b.value)]
    peak = max(values, default=0.0)
    if peak <= 0:
        return ValueAxis(1.0, tuple(False for _ in bars))
    limit = peak * WIDE_INTERVAL
    runs_off = tuple(b.value is not None and b.hi is not None and b.hi > limit for b in bars)
    ends = [min(b.hi, limit) if b.hi is not None else b.value for b in bars if b.value is not None]
    return ValueAxis(max([peak, *ends]), runs_off)


@dataclass(frozen=True)
class Point:
    """One configuration in the Pareto view: p99 latency (x) against throughput (y), coloured
    by its energy per inference."""

    label: str
    throughput: float  # items/s
    p99_ms: float
    energy: float | None  # energy per inference in the chart's unit; None = not known
    estimate: bool = False  # the energy is an estimate


def _names(comparison: Comparison, labels: Mapping[str, str] | None) -> dict[str, str]:
    return {g.label: (labels or {}).get(g.label, g.label) for g in comparison.groups}


def estimated_energy_j(group: ConfigGroup, energy_view: str) -> float | None:
    """Energy per inference from the runs' estimate figures (geometric mean over replicates),
    for display beside measurements only: never ranked with them."""
    vals = []
    for run in group.runs:
        est = [e for e in run.energy if e.is_estimate and e.items > 0]
        own = [e for e in est if e.domain == energy_view] or est
        if own:
            vals.append(own[0].energy_per_item_j)
    return float(np.exp(np.mean(np.log(vals)))) if vals else None


def metric_bars(
    comparison: Comparison,
    metric: str,
    *,
    scale: float = 1.0,
    labels: Mapping[str, str] | None = None,
) -> list[Bar]:
    """One bar per configuration: the pooled figure × ``scale`` with its interval and its
    verdict against the baseline; an energy estimate where nothing was measured."""
    names = _names(comparison, labels)
    rows = {row.group.label: row for row in comparison.rows}
    bars = []
    for group in comparison.groups:
        est = group.estimates.get(metric)
        if est is None:
            continue
        is_base = group is comparison.baseline
        ratio = None if is_base else rows[group.label].ratios.get(metric)
        verdict = ratio.kind if ratio is not None else None
        times = ratio.value if ratio is not None else None
        label = names[group.label]
        iv = est.value
        if iv is not None:
            lo = None if iv.lo is None else iv.lo * scale
            hi = None if iv.hi is None else iv.hi * scale
            bars.append(Bar(label, iv.value * scale, lo, hi, None, False, is_base, verdict, times))
            continue
        guess = (
            estimated_energy_j(group, comparison.energy_view) if metric in ENERGY_METRICS else None
        )
        if guess is not None and guess > 0:
            value = guess * scale if metric == "energy" else 1.0 / guess
            bars.append(Bar(label, value, None, None, None, True, is_base, verdict, times))
        else:
            bars.append(Bar(label, None, None, None, est.na_reason, False, is_base, verdict, times))
    return bars


def latency_samples(
    comparison: Comparison, labels: Mapping[str, str] | None = None
) -> list[tuple[str, np.ndarray]]:
    """(label, every per-call latency in ms of the configuration's runs) for CDFs."""
    names = _names(comparison, labels)
    out = []
    for group in comparison.groups:
        parts = [
            np.asarray(r.arrays["latencies_ns"], dtype=np.float64)
            for r in group.runs
            if "latencies_ns" in r.arrays and len(r.arrays["latencies_ns"])
        ]
        if parts:
            out.append((names[group.label], np.concatenate(parts) * 1e-6))
    return out


def power_series(
    comparison: Comparison,
    labels: Mapping[str, str] | None = None,
    limit: int = MAX_POWER_SERIES,
) -> tuple[list[Series], str]:
    """Power traces (W) of each configuration's first run, aligned on the start of its
    measurement (seconds); and, when there is none, why."""
    names = _names(comparison, labels)
    out: list[Series] = []
    reasons: list[str] = []
    for group in comparison.groups:
        run = group.runs[0]
        starts = run.arrays.get("starts_ns")
        traces = [t for t in run.telemetry.values() if t.unit == "W" and len(t.t_ns) >= 2]
        if not traces and run.energy_na_reason:
            reasons.append(run.energy_na_reason)
        for trace in traces:
            t_ns = np.asarray(trace.t_ns, dtype=np.int64)
            zero = int(starts[0]) if starts is not None and len(starts) else int(t_ns[0])
            x = (t_ns - zero).astype(np.float64) / 1e9
            y = np.asarray(trace.values, dtype=np.float64)
            out.append(Series(f"{names[group.label]} · {trace.name}", x, y))
    return out[:limit], (reasons[0] if reasons and not out else "")


def batch_series(comparison: Comparison, labels: Mapping[str, str] | None = None) -> list[Series]:
    """Throughput against batch size: one curve per configuration that differs only in its
    batch size and was measured at two batch sizes or more."""
    lines: dict[tuple[object, ...], list[ConfigGroup]] = {}
    for group in comparison.groups:
        # everything of the configuration but its batch size (and the model file's hash)
        key = (dataclasses.replace(group.spec, batch_size=1).config_key(), group.model_sha256)
        lines.setdefault(key, []).append(group)
    out = []
    for members in lines.values():
        pts = sorted(
            (
                (g.spec.batch_size, iv)
                for g in members
                if (est := g.estimates.get("throughput")) is not None
                and (iv := est.value) is not None
            ),
            key=lambda p: p[0],
        )
        if len({b for b, _ in pts}) < 2:
            continue
        s = members[0].spec
        label = join_label(
            (s.device, s.runtime, s.precision, f"t{s.threads}" if s.threads else "",
             f"i{s.instances}" if s.instances > 1 else "", s.server_load_label)
        )  # fmt: skip
        xs = np.array([b for b, _ in pts], dtype=np.float64)
        ys = np.array([iv.value for _, iv in pts], dtype=np.float64)
        if all(iv.lo is not None and iv.hi is not None for _, iv in pts):
            lo = np.array([iv.lo for _, iv in pts], dtype=np.float64)
            hi = np.array([iv.hi for _, iv in pts], dtype=np.float64)
            out.append(Series(label, xs, ys, lo, hi))
        else:
            out.append(Series(label, xs, ys))
    return out


def pareto_points(
    comparison: Comparison,
    labels: Mapping[str, str] | None = None,
    energy_scale: float = 1e3,
) -> list[Point]:
    """Throughput vs p99 latency of every configuration that has both; its energy per
    inference × ``energy_scale`` (mJ by default) colours it, an estimate when not measured."""
    names = _names(comparison, labels)
    points = []
    for group in comparison.groups:
        thr = group.estimates.get("throughput")
        p99 = group.estimates.get("latency-p99")
        if thr is None or p99 is None or thr.value is None or p99.value is None:
            continue
        energy = group.estimates.get("energy")
        colour: float | None = None
        estimate = False
        if energy is not None and energy.value is not None:
            colour = energy.value.value * energy_scale
        elif (guess := estimated_energy_j(group, comparison.energy_view)) is not None:
            colour, estimate = guess * energy_scale, True
        points.append(
            Point(names[group.label], thr.value.value, p99.value.value / 1e6, colour, estimate)
        )
    return points


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """The configurations no other beats on both counts (a p99 latency as low or lower and a
    throughput as high or higher, one of them strictly), by rising latency: the line the
    Pareto view joins. Configurations with the same figures are all on it, or none is."""
    ordered = sorted(points, key=lambda p: (p.p99_ms, -p.throughput))
    front: list[Point] = []
    for p in ordered:
        last = front[-1] if front else None
        if last is None or p.throughput > last.throughput:
            front.append(p)
        elif p.throughput == last.throughput and p.p99_ms == last.p99_ms:
            front.append(p)  # the same figures as a point on the front: not beaten either
    return front


def log_scaled(values: Sequence[float]) -> bool:
    """Whether an axis over ``values`` reads better log-scaled (they span a wide ratio)."""
    positive = [v for v in values if v > 0 and np.isfinite(v)]
    return len(positive) >= 2 and max(positive) / min(positive) > LOG_SPREAD


def pareto_range(values: Sequence[float]) -> tuple[float, float, bool]:
    """(low, high, log-scaled) of a Pareto view's axis over ``values`` (all positive), with a
    margin around the points; the same in the app and the report."""
    lo, hi = min(values), max(values)
    if log_scaled(values):
        return lo / 1.4, hi * 1.4, True
    pad = (hi - lo) * 0.12 or hi * 0.1 or 1.0
    return max(0.0, lo - pad), hi + pad, False
