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
from wattbench.gui import theme
from wattbench.gui.widgets.bar_charts import set_plot_title, short_text
from wattbench.reports.series import Point, Series

log = logging.getLogger(__name__)

CDF_MAX_POINTS = 1500  # per curve: the eye cannot tell more apart, and drawing stays fast
POWER_MAX_POINTS = 3000


class CdfChart(pg.PlotWidget):
    """Latency distributions (empirical CDFs) of each configuration, overlaid, log x."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "latency per call (ms, log scale)")
        item.setLabel("left", "fraction of calls ≤ latency")
        item.setLogMode(x=True, y=False)
        self.legend = item.addLegend(offset=(-10, 10))
        self.curves: list[pg.PlotDataItem] = []
        set_plot_title(self, "Latency distribution (CDF)")

    def set_series(self, series: Sequence[tuple[str, np.ndarray]]) -> None:
        """series: (label, latencies in ms) per configuration."""
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
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
        for level in (0.5, 0.99):
            item.addLine(y=level, pen=pg.mkPen(theme.muted(), style=Qt.PenStyle.DashLine))
        if drawn == 0:
            set_plot_title(self, "Latency distribution: n/a — the runs hold no per-call latencies")
        else:
            set_plot_title(self, "Latency distribution (CDF); dashed: p50 and p99")


class PowerChart(pg.PlotWidget):
    """Power per domain over time, each run aligned on the start of its measurement."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "time since the start of measurement (s)")
        item.setLabel("left", "power (W)")
        self.legend = item.addLegend(offset=(-10, 10))
        self.curves: list[pg.PlotDataItem] = []
        set_plot_title(self, "Power")

    def set_series(self, series: Sequence[Series], na_reason: str = "") -> None:
        """series: power (W) against the time since the start of measurement (s)."""
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
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
        super().__init__(parent=parent)
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "batch size (log scale)")
        item.setLabel("left", "throughput (items/s)")
        item.setLogMode(x=True, y=False)
        self.legend = item.addLegend(offset=(-10, 10))
        self.curves: list[pg.PlotDataItem] = []
        set_plot_title(self, "Throughput vs batch size")

    def set_series(self, series: Sequence[Series]) -> None:
        """series: throughput against batch size, one curve per configuration."""
        item = self.getPlotItem()
        item.clear()
        self.legend.clear()
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
        if not self.curves:
            set_plot_title(
                self,
                "Throughput vs batch size: n/a — no configuration was measured at two or more "
                "batch sizes",
            )
        else:
            set_plot_title(self, "Throughput vs batch size")


class ParetoChart(pg.PlotWidget):
    """Throughput vs p99 latency; colour = energy per inference (grey when unknown)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "throughput (items/s)")
        item.setLabel("left", "p99 latency per call (ms)")
        self.scatter = pg.ScatterPlotItem(size=14, pxMode=True)
        self.labels: list[pg.TextItem] = []
        self.colour_bar: pg.ColorBarItem | None = None
        self.points: list[Point] = []
        set_plot_title(self, "Throughput vs p99 latency")

    def set_points(self, points: Sequence[Point]) -> None:
        item = self.getPlotItem()
        item.clear()
        if self.colour_bar is not None:
            self.getPlotItem().layout.removeItem(self.colour_bar)
            self.colour_bar.setParentItem(None)
            self.colour_bar = None
        self.labels = []
        self.points = [p for p in points if p.throughput > 0 and p.p99_ms > 0]
        if not self.points:
            set_plot_title(self, "Throughput vs p99 latency: n/a — no run has both figures")
            return
        energies = [p.energy for p in self.points if p.energy is not None]
        cmap = pg.colormap.get("viridis")
        lo_e, hi_e = (min(energies), max(energies)) if energies else (0.0, 1.0)
        if hi_e <= lo_e:
            hi_e = lo_e * 1.1 + 1e-9
        spots = []
        for p in self.points:
            if p.energy is None:
                brush = pg.mkBrush(theme.muted())
            else:
                brush = pg.mkBrush(cmap.map((p.energy - lo_e) / (hi_e - lo_e), mode="qcolor"))
            spots.append(
                {
                    "pos": (p.throughput, p.p99_ms),
                    "brush": brush,
                    "symbol": "d" if p.estimate else "o",  # a diamond: energy estimated
                    "pen": pg.mkPen(theme.foreground()),
                    "data": p.label,
                }
            )
        self.scatter = pg.ScatterPlotItem(size=14, pxMode=True)
        self.scatter.addPoints(spots)
        item.addItem(self.scatter)
        for p in self.points:
            text = short_text(p.label, 30) + (" (energy estimated)" if p.estimate else "")
            label = pg.TextItem(text, color=theme.foreground(), anchor=(0, 1))
            label.setPos(p.throughput, p.p99_ms)
            item.addItem(label)
            self.labels.append(label)
        xs = [p.throughput for p in self.points]
        ys = [p.p99_ms for p in self.points]
        item.setXRange(0, max(xs) * 1.3, padding=0)
        item.setYRange(0, max(ys) * 1.25, padding=0)
        if energies:
            self.colour_bar = pg.ColorBarItem(
                values=(lo_e, hi_e),
                colorMap=cmap,
                label="energy per inference (mJ)",
                interactive=False,
                width=14,
            )
            self.getPlotItem().layout.addItem(self.colour_bar, 2, 5)
            set_plot_title(
                self,
                "Throughput vs p99 latency (right and low is better); "
                "colour = energy per inference",
            )
        else:
            set_plot_title(self, "Throughput vs p99 latency; energy per inference n/a (grey)")
