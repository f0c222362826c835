"""The compare view's curve charts (pyqtgraph): latency CDFs, power, batch curves, Pareto,
drawing the data ``reports.series`` builds (the bars are in ``bar_charts``).

Each widget takes those plain values (the same the report's figures draw) and redraws in one
go; nothing here runs the engine or touches the store. Charts that have nothing to draw say
why in their title instead of showing an empty frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from wattbench.domain import units
from wattbench.gui import theme
from wattbench.gui.widgets.bar_charts import (
    add_legend,
    legend_columns,
    plain_axes,
    set_plot_title,
    short_text,
)
from wattbench.reports import series
from wattbench.reports.placement import Box, place_labels
from wattbench.reports.series import Point, Series

log = logging.getLogger(__name__)

CDF_MAX_POINTS = 1500  # per curve: the eye cannot tell more apart, and drawing stays fast
POWER_MAX_POINTS = 3000
ENERGY_LABEL = "energy per inference (mJ)"  # series.pareto_points' colour, in mJ by default


class CdfChart(pg.PlotWidget):
    """Latency distributions (empirical CDFs) of each configuration, overlaid, log x."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems=plain_axes())
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "latency per call (ms, log scale)")
        item.setLabel("left", "fraction of calls ≤ latency")
        item.setLogMode(x=True, y=False)
        self.legend = add_legend(self)
        self.curves: list[pg.PlotDataItem] = []
        set_plot_title(self, "Latency distribution (CDF)")

    def set_series(self, series: Sequence[tuple[str, np.ndarray]]) -> None:
        """series: (label, latencies in ms) per configuration."""
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
        legend_columns(self.legend, len(series))
        self.curves = []
        drawn = 0
        for i, (label, lat_ms) in enumerate(series):
            x = np.sort(np.asarray(lat_ms, dtype=np.float64)[np.isfinite(lat_ms)])
            x = x[x > 0]
            if len(x) < 2:
                continue
            y = np.arange(1, len(x) + 1, dtype=np.float64) / len(x)
            if len(x) > CDF_MAX_POINTS:
                idx = np.unique(np.linspace(0, len(x) - 1, CDF_MAX_POINTS).astype(np.int64))
                x, y = x[idx], y[idx]
            curve = item.plot(
                x, y, pen=pg.mkPen(theme.series_colour(i), width=2), name=short_text(label, 48)
            )
            self.curves.append(curve)
            drawn += 1
        shown = [c.xData for c in self.curves]  # the data, not their log10
        if shown:
            lo, hi = min(float(x[0]) for x in shown), max(float(x[-1]) for x in shown)
            item.getAxis("bottom").setTicks(units.log_ticks(lo, hi))
        for level in (0.5, 0.99):
            item.addLine(y=level, pen=pg.mkPen(theme.muted(), style=Qt.PenStyle.DashLine))
        if drawn == 0:
            set_plot_title(self, "Latency distribution: n/a — the runs hold no per-call latencies")
        else:
            set_plot_title(self, "Latency distribution (CDF); dashed: p50 and p99")


class PowerChart(pg.PlotWidget):
    """Power per domain over time, each run aligned on the start of its measurement."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems=plain_axes())
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "time since the start of measurement (s)")
        item.setLabel("left", "power (W)")
        self.legend = add_legend(self)
        self.curves: list[pg.PlotDataItem] = []
        set_plot_title(self, "Power")

    def set_series(self, series: Sequence[Series], na_reason: str = "") -> None:
        """series: power (W) against the time since the start of measurement (s)."""
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
        legend_columns(self.legend, len(series))
        self.curves = []
        for i, s in enumerate(series):
            if len(s.x) < 2:
                continue
            step = max(1, len(s.x) // POWER_MAX_POINTS)
            # a 1-px pen: wide antialiased pens over noisy traces are slow to paint
            pen = pg.mkPen(theme.series_colour(i), width=1.5 if len(series) <= 4 else 1)
            curve = item.plot(s.x[::step], s.y[::step], pen=pen, name=short_text(s.label, 56))
            self.curves.append(curve)
        if self.curves:
            item.addLine(x=0.0, pen=pg.mkPen(theme.muted(), style=Qt.PenStyle.DashLine))
            set_plot_title(self, "Power per domain, aligned on the start of measurement (dashed)")
        else:
            why = na_reason or "no power was recorded for these runs"
            set_plot_title(self, f"Power: n/a — {short_text(why, 90)}")


class BatchChart(pg.PlotWidget):
    """Throughput against batch size, one line per device (and runtime)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems=plain_axes())
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "batch size (log scale)")
        item.setLabel("left", "throughput (items/s)")
        item.setLogMode(x=True, y=False)
        self.legend = add_legend(self, (10, 10))  # top left: throughput rises with batch
        self.curves: list[pg.PlotDataItem] = []
        set_plot_title(self, "Throughput vs batch size")

    def set_series(self, series: Sequence[Series]) -> None:
        """series: throughput against batch size, one curve per configuration."""
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
        legend_columns(self.legend, len(series))
        self.curves = []
        for i, s in enumerate(series):
            colour = theme.series_colour(i)
            curve = item.plot(
                s.x,
                s.y,
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolBrush=colour,
                symbolSize=8,
                name=short_text(s.label, 48),
            )
            self.curves.append(curve)
            if s.lo is not None and s.hi is not None:
                err = pg.ErrorBarItem(
                    x=np.log10(s.x),
                    y=s.y,
                    bottom=np.maximum(0.0, s.y - s.lo),
                    top=np.maximum(0.0, s.hi - s.y),
                    beam=0.03,
                    pen=pg.mkPen(colour),
                )
                item.addItem(err)
        batches = sorted({float(b) for s in series for b in s.x if b > 0})
        if batches:
            ticks = units.log_ticks(min(batches), max(batches), batches)
            item.getAxis("bottom").setTicks(ticks)
            # a margin, so the end points and their intervals clear the frame (and the legend)
            lo, hi = np.log10(min(batches) / 1.4), np.log10(max(batches) * 1.4)
            item.setXRange(lo, hi, padding=0)
        if not self.curves:
            set_plot_title(
                self,
                "Throughput vs batch size: n/a — no configuration was measured at two or more "
                "batch sizes",
            )
        else:
            set_plot_title(self, "Throughput vs batch size")


class ParetoChart(pg.PlotWidget):
    """p99 latency (x) against throughput (y), colour = energy per inference (grey when
    unknown), the Pareto front joined: the report's Pareto view, the same axes and front."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems=plain_axes())
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", series.PARETO_X)
        item.setLabel("left", series.PARETO_Y)
        self.legend = add_legend(self, (-10, -10))
        self.scatter = pg.ScatterPlotItem(size=14, pxMode=True)
        self.front: pg.PlotDataItem | None = None
        self.labels: list[pg.TextItem] = []
        self.colour_bar: pg.ColorBarItem | None = None
        self.points: list[Point] = []
        self.log_x = self.log_y = False
        item.getViewBox().sigResized.connect(self.place_labels)
        item.getViewBox().sigRangeChanged.connect(self.place_labels)
        set_plot_title(self, "Throughput vs p99 latency")

    def _to_view(self, p: Point) -> tuple[float, float]:
        x, y = p.p99_ms, p.throughput
        return (np.log10(x) if self.log_x else x, np.log10(y) if self.log_y else y)

    def set_points(self, points: Sequence[Point]) -> None:
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
        self.front = None
        if self.colour_bar is not None:
            item.layout.removeItem(self.colour_bar)
            self.colour_bar.setParentItem(None)
            self.colour_bar = None
        self.labels = []
        self.points = [p for p in points if p.throughput > 0 and p.p99_ms > 0]
        if not self.points:
            set_plot_title(self, "Throughput vs p99 latency: n/a — no run has both figures")
            return
        for name, values in (
            ("bottom", [p.p99_ms for p in self.points]),
            ("left", [p.throughput for p in self.points]),
        ):
            lo, hi, log = series.pareto_range(values)
            if name == "bottom":
                self.log_x = log
            else:
                self.log_y = log
            item.getAxis(name).setTicks(units.log_ticks(lo, hi) if log else None)
            span = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
            (item.setXRange if name == "bottom" else item.setYRange)(*span, padding=0)
        energies = [p.energy for p in self.points if p.energy is not None]
        all_estimates = all(p.estimate for p in self.points if p.energy is not None)
        cmap = pg.colormap.get("viridis")
        lo_e, hi_e = (min(energies), max(energies)) if energies else (0.0, 1.0)
        if hi_e <= lo_e:
            hi_e = lo_e * 1.1 + 1e-9
        front = series.pareto_front(self.points)
        if len(front) > 1:
            xy = np.array([self._to_view(p) for p in front])
            pen = pg.mkPen(theme.muted(), width=1.5, style=Qt.PenStyle.DashLine)
            self.front = item.plot(xy[:, 0], xy[:, 1], pen=pen, name="Pareto front")
        spots = []
        for p in self.points:
            if p.energy is None:
                brush = pg.mkBrush(theme.muted())
            else:
                brush = pg.mkBrush(cmap.map((p.energy - lo_e) / (hi_e - lo_e), mode="qcolor"))
            spots.append(
                {
                    "pos": self._to_view(p),
                    "brush": brush,
                    "symbol": "d" if p.estimate else "o",  # a diamond: energy estimated
                    "pen": pg.mkPen(theme.foreground()),
                    "data": p.label,
                }
            )
        self.scatter = pg.ScatterPlotItem(size=12, pxMode=True)
        self.scatter.addPoints(spots)
        item.addItem(self.scatter)
        for p in self.points:
            mixed = p.estimate and not all_estimates  # all of them: the title says it once
            text = short_text(p.label, 30) + (" (energy estimated)" if mixed else "")
            label = pg.TextItem(text, color=theme.foreground(), anchor=(0, 1))
            item.addItem(label, ignoreBounds=True)
            self.labels.append(label)
        self.place_labels()
        better = f"Throughput vs p99 latency ({series.PARETO_BETTER})"
        if energies:
            self.colour_bar = pg.ColorBarItem(
                values=(lo_e, hi_e),
                colorMap=cmap,
                interactive=False,
                width=14,
            )
            fg = theme.foreground()
            self.colour_bar.getAxis("left").setLabel(ENERGY_LABEL, color=fg.name())
            axis = self.colour_bar.axis
            axis.setWidth(None)  # ColorBarItem fixes 45 px: too narrow for "0.0004"
            axis.enableAutoSIPrefix(False)
            axis.setStyle(autoExpandTextSpace=True)
            axis.setPen(pg.mkPen(fg))
            axis.setTextPen(pg.mkPen(fg))
            levels = axis.tickValues(lo_e, hi_e, 200)  # pyqtgraph's steps, plain labels
            axis.setTicks([[(v, units.tick_label(v)) for v in values] for _, values in levels])
            item.layout.addItem(self.colour_bar, 2, 5)
            what = "estimated energy" if all_estimates else "energy"
            set_plot_title(self, f"{better} · colour: {what} per inference")
        else:
            set_plot_title(self, f"{better} · energy per inference n/a (grey)")

    def place_labels(self) -> None:
        """Each point's label on the side ``placement`` picks for the plot's current size, so
        labels neither cover one another nor leave the plot (again on every resize)."""
        if not self.labels:
            return
        box = self.getPlotItem().getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        width, height = max(box.width(), 1.0), max(box.height(), 1.0)
        spots = []
        for p in self.points:
            x, y = self._to_view(p)
            spots.append(((x - x0) / (x1 - x0) * width, (y - y0) / (y1 - y0) * height))
        sizes = [(t.boundingRect().width(), t.boundingRect().height()) for t in self.labels]
        frame, key = box.sceneBoundingRect(), self.legend.sceneBoundingRect()
        avoid = (
            [
                Box(
                    key.left() - frame.left(),
                    frame.bottom() - key.bottom(),
                    key.right() - frame.left(),
                    frame.bottom() - key.top(),
                )
            ]
            if self.front is not None
            else []
        )
        places = place_labels(spots, sizes, (width, height), marker=12.0, avoid=avoid)
        for label, place in zip(self.labels, places, strict=True):
            label.setAnchor((0, 1))  # its lower left corner at the box's
            label.setPos(
                x0 + place.box.x0 / width * (x1 - x0), y0 + place.box.y0 / height * (y1 - y0)
            )
