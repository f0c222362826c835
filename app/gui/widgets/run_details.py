"""The runs browser's details pane: a run's figures as HTML and its latency histogram."""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QWidget,
)
from wattbench.domain import units
from wattbench.domain.interference import interference_text
from wattbench.gui import (
    theme,
)
from wattbench.gui.controller import flag_words
from wattbench.reports.training import training_rows

log = logging.getLogger(__name__)

HIST_BINS = 60
LOG_X_SPREAD = 20.0  # histogram on a log axis when p99.9 / min exceeds this


class HistogramPlot(pg.PlotWidget):
    """Histogram of a run's per-call latencies with its p50 and p99."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "latency per call (ms)")
        item.setLabel("left", "calls")
        item.setMenuEnabled(False)
        self.counts: np.ndarray = np.zeros(0)
        self.log_x = False
        self._title("Latency histogram: select one run")
        self.setMinimumHeight(180)

    def _title(self, text: str) -> None:
        self.getPlotItem().setTitle(text, color=theme.foreground().name(), size="10pt")

    def set_latencies(
        self,
        latencies_ns: np.ndarray | None,
        p50_ns: float | None,
        p99_ns: float | None,
        why: str = "",
    ) -> None:
        item = self.getPlotItem()
        item.clear()
        if latencies_ns is None or len(latencies_ns) < 2:
            self.counts = np.zeros(0)
            self._title(f"Latency histogram: n/a — {why or 'no per-call latencies stored'}")
            return
        raw = np.asarray(latencies_ns, dtype=np.float64)
        raw = raw[np.isfinite(raw) & (raw > 0)]
        unit, scale = ("µs", 1e3) if float(np.median(raw)) < 1e6 else ("ms", 1e6)
        x = raw / scale
        hi = float(np.percentile(x, 99.9))  # a few far outliers would squash the histogram
        lo = float(x.min())
        if hi <= lo:
            hi = lo * 1.01 + 1e-9
        # a heavy tail (p99.9 far above the minimum) reads better on a log axis
        self.log_x = hi / lo > LOG_X_SPREAD
        axis = item.getAxis("bottom")
        axis.enableAutoSIPrefix(False)
        axis.setTicks(units.log_ticks(lo, hi) if self.log_x else None)
        item.setLabel("bottom", f"latency per call ({unit}{', log scale' if self.log_x else ''})")
        if self.log_x:
            edges = np.geomspace(lo, hi, HIST_BINS + 1)
            self.counts, _ = np.histogram(x, bins=edges)
            x0, x1 = np.log10(edges[:-1]), np.log10(edges[1:])
        else:
            self.counts, edges = np.histogram(x, bins=HIST_BINS, range=(lo, hi))
            x0, x1 = edges[:-1], edges[1:]
        item.addItem(
            pg.BarGraphItem(
                x0=x0,
                x1=x1,
                height=self.counts,
                brush=pg.mkBrush(theme.series_colour(0)),
                pen=pg.mkPen(None),
            )
        )
        for value, name in ((p50_ns, "p50"), (p99_ns, "p99")):
            if value is not None and value > 0:
                pos = math.log10(value / scale) if self.log_x else value / scale
                line = pg.InfiniteLine(
                    pos,
                    angle=90,
                    label=name,
                    pen=pg.mkPen(theme.series_colour(5), width=2),
                    labelOpts={"position": 0.9, "color": theme.foreground()},
                )
                item.addItem(line)
        x_ms = x
        beyond = int((x_ms > hi).sum())
        extra = f"; {beyond} calls beyond the range shown" if beyond else ""
        self._title(f"Latency histogram ({len(x_ms):,} calls{extra})")


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td style='padding-right:12px; vertical-align:top'><b>{html.escape(k)}</b></td>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='0' cellpadding='1'>{cells}</table>"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return [(prefix, ", ".join(str(v) for v in value))]
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(value, default=str))]
    return [(prefix, "n/a" if value is None else str(value))]


def flatten_html(value: Any) -> str:
    """A nested mapping (a spec, a system description) as a two-column table."""
    return _kv_table(_flatten(value))


def run_summary_html(result: Any) -> str:
    """The details pane's first tab: status, figures, flags, energy, phases, note."""
    rows: list[tuple[str, str]] = [("Run", result.id), ("Status", result.status.value)]
    if result.reason:
        rows.append(("Reason", result.reason))
    rows += [
        ("Created", units.timestamp(result.created_at)),
        ("Finished", units.timestamp(result.finished_at) or "—"),
    ]
    if result.model is not None:
        rows.append(
            (
                "Model",
                f"{result.model.name} ({result.model.format}, sha256 {result.model.sha256[:12]}…)",
            )
        )
    training = result.training is not None  # an item is a trained token, a call a step
    thr = result.throughput_items_per_s
    if thr is not None:
        rate = " tokens/s" if training else " items/s"
        rows.append(("Throughput", units.estimate(thr.value, thr.lo, thr.hi) + rate))
    rows += training_rows(result)
    lat = result.latency
    if lat is not None:
        batch = 1 if training else result.spec.batch_size
        per_call = "step time" if training else units.per_call_label(batch)
        rows.append(
            (
                f"Latency mean {per_call}",
                units.estimate(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns, units.duration_ns),
            )
        )
        if batch > 1:
            rows.append(("Latency mean per item", units.per_item(lat.mean_ns, batch)))
        for pe in lat.percentiles:
            marker = "" if pe.headline else " (not a headline figure: too few effective samples)"
            rows.append(
                (
                    f"{pe.name} {'step time' if training else 'per call'}",
                    units.estimate(pe.value_ns, pe.lo_ns, pe.hi_ns, units.duration_ns) + marker,
                )
            )
        rows.append(
            (
                "Precision of the mean",
                f"{units.rho(lat.rho)} ({units.RHO_MEANING}; target "
                f"{units.percent(result.spec.target_epsilon)})",
            )
        )
        rows.append(("Samples", f"{lat.n:,} (n_eff {lat.n_eff:,.0f}, lag-1 r {lat.r1:.2f})"))
    rows.append(("Converged", "yes" if result.converged else "no"))
    rows.append(("Flags", ", ".join(flag_words(result.flags)) or "none"))
    rows.append(("Interference", interference_text(result.interference)))
    item, items = ("trained token", "tokens") if training else ("inference", "inferences")
    if result.energy:
        for e in result.energy:
            est = " (estimate)" if e.is_estimate else ""
            rows.append(
                (
                    f"Energy {e.domain}{est}",
                    f"{units.energy_j(e.energy_per_item_j)}/{item}, "
                    f"{units.number(e.items_per_j)} {items}/J, "
                    f"{units.power_w(e.avg_power_w)} avg — {e.source}, {e.scope}, "
                    f"{e.method}" + (f"; flags {', '.join(e.flags)}" if e.flags else ""),
                )
            )
    else:
        rows.append(("Energy", units.na(result.energy_na_reason)))
    ph = result.phases
    rows += [
        ("Worker start", units.duration_s(ph.worker_start_s)),
        ("Cold load", units.duration_s(ph.cold_load_s)),
        ("First call", units.duration_ns(ph.first_call_ns)),
        (
            "Warm-up",
            f"{ph.warmup_iterations} calls, {units.duration_s(ph.warmup_s)}, "
            f"{'steady' if ph.warmup_steady else 'not steady'}",
        ),
        ("Measurement", units.duration_s(ph.measure_s)),
        ("Harness efficiency", units.eta(ph.harness_efficiency)),
    ]
    tags = getattr(result, "tags", None)
    if tags:
        rows.append(("Tags", ", ".join(tags)))
    if result.notes:
        rows.append(("Note", result.notes))
    return _kv_table(rows)
