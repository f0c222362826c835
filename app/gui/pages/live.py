"""The Live view: latency, throughput, power per domain and convergence of the running run.

A QTimer (~20 Hz) reads the controller's LiveBuffer snapshot and calls setData on existing
curves when something new arrived; no signal is sent per sample. Long traces are downsampled
and clipped to the view; the time axes of the plots are linked.
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget
from wattbench.domain import units
from wattbench.domain.events import Phase
from wattbench.gui import theme
from wattbench.gui.controller import Controller
from wattbench.gui.live_buffer import LiveSnapshot, peak_decimate, throughput_series

log = logging.getLogger(__name__)

REDRAW_INTERVAL_MS = 50  # 20 Hz
LATENCY_BINS = 1_500  # drawn: each bin's min and max (the buffer keeps every sample)
GAP_S = 0.25  # calls further apart than this are not joined by the latency line
LABELLED_PHASES = {Phase.WARMUP: 0.95, Phase.MEASURING: 0.85}  # label position on the line


class GrowingRange:
    """An axis range that only grows (with headroom) while a run goes on.

    Autoranging every frame re-lays out the axis and its tick labels ~10 times a second, which
    costs several times the drawing of the curves; a range that changes rarely keeps frames
    cheap. Once the user pans or zooms a plot, it is left alone until the next run.
    """

    def __init__(self, plot: pg.PlotWidget, axis: str, *, log: bool = False) -> None:
        self.plot = plot
        self.axis = axis
        self.log = log
        self.lo: float | None = None
        self.hi: float | None = None
        self.manual = False
        plot.getPlotItem().getViewBox().sigRangeChangedManually.connect(self._on_manual)

    def _on_manual(self, *_: object) -> None:
        self.manual = True
        if self.log:  # fixed ticks fit the range they were made for only
            self._log_axis().setTicks(None)

    def _log_axis(self) -> pg.AxisItem:
        return self.plot.getPlotItem().getAxis("left" if self.axis == "y" else "bottom")

    def reset(self) -> None:
        self.lo = self.hi = None
        self.manual = False
        self.plot.getPlotItem().enableAutoRange()
        if self.log:
            self._log_axis().setTicks(None)

    def include(self, lo: float, hi: float) -> None:
        """Make sure [lo, hi] (data units) is visible; grow with headroom when it is not."""
        if self.manual or not (np.isfinite(lo) and np.isfinite(hi)):
            return
        if self.log:
            if lo <= 0 or hi <= 0:
                return
            lo, hi = float(np.log10(lo)), float(np.log10(hi))
        if self.lo is not None and self.hi is not None and self.lo <= lo and hi <= self.hi:
            return
        span = max(hi - lo, 1e-9)
        if self.log:
            new_lo, new_hi = np.floor(lo * 4) / 4, np.ceil(hi * 4) / 4 + 0.25
        elif self.axis == "x":
            new_lo, new_hi = min(0.0, lo), hi + max(span * 0.5, 5.0)
        else:
            new_lo, new_hi = min(0.0, lo), hi + span * 0.25
        self.lo = new_lo if self.lo is None else min(self.lo, new_lo)
        self.hi = new_hi if self.hi is None else max(self.hi, new_hi)
        if self.axis == "x":
            self.plot.setXRange(self.lo, self.hi, padding=0)
        else:
            self.plot.setYRange(self.lo, self.hi, padding=0)
        if self.log:  # pyqtgraph labels every 1…9 between decades, printed over each other
            self._log_axis().setTicks(units.log_ticks(10**self.lo, 10**self.hi))


class LivePage(QWidget):
    """Charts of the run in progress (or the last one), redrawn from a timer."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._version = -1
        self._run_key = -1
        self.redraws = 0  # how many times the charts were redrawn (tests, benchmarks)
        self._rho_t_s: list[float] = []
        self._rho: list[float] = []

        self.title = QLabel("No run yet: start one on the New run page.", self)
        self.title.setObjectName("live-title")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.latency_plot = theme.make_plot(
            self, title="Latency per call", left="latency (ms)", bottom="time (s)"
        )
        self.throughput_plot = theme.make_plot(
            self, title="Throughput", left="items/s", bottom="time (s)"
        )
        self.power_plot = theme.make_plot(
            self, title="Power per domain", left="power (W)", bottom="time (s)"
        )
        self.rho_plot = theme.make_plot(
            self, title="Convergence: ρ approaching ε", left="ρ (%)", bottom="time (s)"
        )
        for plot in (self.throughput_plot, self.power_plot, self.rho_plot):
            plot.setXLink(self.latency_plot)
        self.x_range = GrowingRange(self.latency_plot, "x")  # the other plots' x axes follow
        self.y_ranges = {
            "latency": GrowingRange(self.latency_plot, "y", log=True),
            "throughput": GrowingRange(self.throughput_plot, "y"),
            "power": GrowingRange(self.power_plot, "y"),
            "rho": GrowingRange(self.rho_plot, "y"),
        }
        for plot in self.plots():
            # redrawn ~10 times a second while a benchmark shares the CPU: antialiasing costs
            # about five times the rest of the painting
            plot.setAntialiasing(False)
            for name in ("left", "bottom"):
                plot.getPlotItem().getAxis(name).setStyle(maxTickLevel=0)
        self.power_plot.addLegend(offset=(-10, 10))
        self.power_na = pg.TextItem("", anchor=(0.5, 0.5))
        self.power_plot.addItem(self.power_na, ignoreBounds=True)

        self.latency_plot.setLogMode(y=True)  # tails are 10-100× the median
        # thousands of spiky points: antialiasing them costs more than the rest of the page
        self.latency_curve = self.latency_plot.plot(
            pen=pg.mkPen(theme.series_colour(0)), antialias=False
        )
        self.latency_curve.setDownsampling(auto=True, method="peak")
        self.latency_curve.setClipToView(True)
        self.throughput_curve = self.throughput_plot.plot(
            pen=pg.mkPen(theme.series_colour(1), width=2), antialias=False
        )
        self.rho_curve = self.rho_plot.plot(
            pen=pg.mkPen(theme.series_colour(2), width=2), antialias=False
        )
        self.epsilon_line = pg.InfiniteLine(
            angle=0,
            movable=False,
            pen=pg.mkPen(theme.muted(), style=Qt.PenStyle.DashLine),
            label="ε",
            labelOpts={"position": 0.05},
        )
        self.rho_plot.addItem(self.epsilon_line)
        self.epsilon_line.hide()
        self.power_curves: dict[str, pg.PlotDataItem] = {}
        self.phase_lines: list[pg.InfiniteLine] = []

        self.charts = QWidget(self)
        grid = QGridLayout(self.charts)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.latency_plot, 0, 0)
        grid.addWidget(self.throughput_plot, 0, 1)
        grid.addWidget(self.power_plot, 1, 0)
        grid.addWidget(self.rho_plot, 1, 1)
        self.charts.hide()  # no empty axes: shown when the first run starts
        self.hint = QLabel(
            "The charts appear here while a run measures: latency of each call, throughput, "
            "power per domain and ρ approaching ε.\nSet a run up on the New run page and press "
            "Run (Ctrl+R).",
            self,
        )
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.status)
        layout.addWidget(self.charts, 1)
        layout.addWidget(self.hint, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        theme.watcher().on_change(self._recolour)

    def plots(self) -> tuple[pg.PlotWidget, ...]:
        return (self.latency_plot, self.throughput_plot, self.power_plot, self.rho_plot)

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Draw what arrived since the last call (cheap when nothing did)."""
        live = self.controller.live
        if live.version == self._version or not self.isVisible():
            return  # nothing new, or nobody looking: drawn when the page is shown
        snap = live.snapshot()
        self._version = snap.version
        if snap.run_key < 0:
            return
        if snap.run_key != self._run_key:
            self._start_run(snap)
        self._draw_status(snap)
        t_s, lat_ms = peak_decimate(snap.latency_t_s, snap.latency_ms, LATENCY_BINS)
        connect = np.ones(len(t_s), dtype=bool)
        if len(t_s) > 1:
            connect[:-1] = np.diff(t_s) < GAP_S
        self.latency_curve.setData(t_s, lat_ms, connect=connect)
        tput_t, tput = throughput_series(snap.latency_t_s, snap.latency_ms, snap.batch_size)
        self.throughput_curve.setData(tput_t, tput)
        self._draw_power(snap)
        self._draw_rho(snap)
        self._draw_phases(snap)
        self.x_range.include(0.0, max(snap.elapsed_s, float(t_s[-1]) if len(t_s) else 0.0))
        if len(lat_ms):
            self.y_ranges["latency"].include(float(lat_ms.min()), float(lat_ms.max()))
        if len(tput):
            self.y_ranges["throughput"].include(0.0, float(tput.max()))
        watts = [float(w.max()) for _t, w in snap.power.values() if len(w)]
        if watts:
            self.y_ranges["power"].include(0.0, max(watts))
        if self._rho:
            top = max(max(self._rho), (snap.epsilon or 0.0) * 100)
            self.y_ranges["rho"].include(0.0, top)
        self.redraws += 1

    def _start_run(self, snap: LiveSnapshot) -> None:
        self._run_key = snap.run_key
        self.hint.hide()
        self.charts.show()
        for growing in (self.x_range, *self.y_ranges.values()):
            growing.reset()
        self._rho_t_s, self._rho = [], []
        for name, curve in self.power_curves.items():
            self.power_plot.removeItem(curve)
            legend = self.power_plot.getPlotItem().legend
            if legend is not None:
                legend.removeItem(name)
        self.power_curves = {}
        for line in self.phase_lines:
            self.latency_plot.removeItem(line)
        self.phase_lines = []
        self.epsilon_line.hide()

    def _draw_status(self, snap: LiveSnapshot) -> None:
        self.title.setText(snap.label)
        parts = [
            f"Phase: {snap.phase or 'starting'}",
            f"elapsed {units.duration_s(snap.elapsed_s)}",
        ]
        if snap.n:
            parts.append(f"{snap.n:,} samples")
        if snap.rho is not None:
            target = (
                f" (target ε {units.percent(snap.epsilon)})" if snap.epsilon is not None else ""
            )
            parts.append(f"{units.rho(snap.rho)}{target}")
        if len(snap.latency_ms):
            median_ns = float(np.median(snap.latency_ms[-200:])) * 1e6
            parts.append(f"recent median latency {units.duration_ns(median_ns)}")
        if snap.message and snap.rho is None:  # while measuring the message repeats ρ
            parts.append(snap.message)
        self.status.setText(" · ".join(parts))

    def _draw_power(self, snap: LiveSnapshot) -> None:
        for i, (domain, (t_s, watts)) in enumerate(sorted(snap.power.items())):
            curve = self.power_curves.get(domain)
            if curve is None:
                curve = self.power_plot.plot(
                    pen=pg.mkPen(theme.series_colour(i), width=2), name=domain, antialias=False
                )
                self.power_curves[domain] = curve
            curve.setData(t_s, watts)
        if snap.power:
            self.power_na.setText("")
        else:
            self.power_na.setText(
                "no power readings (energy n/a; see Sensors)", color=theme.muted()
            )

    def _draw_rho(self, snap: LiveSnapshot) -> None:
        if snap.rho is not None and snap.phase == Phase.MEASURING:
            t_now = float(snap.latency_t_s[-1]) if len(snap.latency_t_s) else snap.elapsed_s
            if not self._rho_t_s or t_now > self._rho_t_s[-1]:
                self._rho_t_s.append(t_now)
                self._rho.append(snap.rho * 100)
        self.rho_curve.setData(self._rho_t_s, self._rho)
        if snap.epsilon is not None:
            self.epsilon_line.setValue(snap.epsilon * 100)
            self.epsilon_line.show()

    def _draw_phases(self, snap: LiveSnapshot) -> None:
        for t_s, phase in snap.phase_marks[len(self.phase_lines) :]:
            # only the phases that matter get a label: short ones would print over each other
            position = LABELLED_PHASES.get(phase)
            line = pg.InfiniteLine(
                pos=t_s,
                angle=90,
                movable=False,
                pen=pg.mkPen(theme.muted(), style=Qt.PenStyle.DotLine),
                label=phase if position is not None else None,
                labelOpts={
                    "position": position or 0.9,
                    "color": theme.muted(),
                    "fill": theme.background(),
                },
            )
            self.latency_plot.addItem(line)
            self.phase_lines.append(line)

    def _recolour(self) -> None:
        self.latency_curve.setPen(pg.mkPen(theme.series_colour(0)))
        self.throughput_curve.setPen(pg.mkPen(theme.series_colour(1), width=2))
        self.rho_curve.setPen(pg.mkPen(theme.series_colour(2), width=2))
        for i, curve in enumerate(self.power_curves.values()):
            curve.setPen(pg.mkPen(theme.series_colour(i), width=2))
        for line in self.phase_lines:  # the phase labels keep the colours they were made in
            line.setPen(pg.mkPen(theme.muted(), style=Qt.PenStyle.DotLine))
            label = getattr(line, "label", None)  # only the phases that matter have one
            if label is not None:
                label.fill = pg.mkBrush(theme.background())
                label.setColor(theme.muted())
        self._version = -1
