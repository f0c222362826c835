"""The compare view's bar charts: one per metric, each configuration with its 95 % interval,
its ratio to the baseline and the verdict, in a grid."""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontMetricsF
from PySide6.QtWidgets import QGridLayout, QWidget
from wattbench.domain import units
from wattbench.gui import theme
from wattbench.reports import series
from wattbench.reports.series import Bar

log = logging.getLogger(__name__)

# (metric name, chart title, axis unit label, scale from the metric's unit to the axis unit)
BAR_METRICS: tuple[tuple[str, str, str, float], ...] = (
    ("throughput", "Throughput", "items/s", 1.0),
    ("latency-p50", "Latency p50", "ms", 1e-6),
    ("latency-p99", "Latency p99", "ms", 1e-6),
    ("energy", "Energy per inference", "mJ", 1e3),
    ("perf-per-watt", "Inferences per joule", "items/J", 1.0),
    ("cost", "$ per million inferences", "USD", 1.0),
)
# the same for generation runs (engine/metrics.py: measured per token)
GENERATION_BAR_METRICS: tuple[tuple[str, str, str, float], ...] = (
    ("decode-tokens-per-s", "Decode tokens per second", "tokens/s", 1.0),
    ("ttft", "Time to first token (TTFT)", "ms", 1e-6),
    ("tpot", "Time per output token (TPOT)", "ms", 1e-6),
    ("itl-p99", "Inter-token latency p99", "ms", 1e-6),
    ("tokens-per-j", "Output tokens per joule", "tokens/J", 1.0),
    ("cost-per-m-tokens", "$ per million output tokens", "USD", 1.0),
)
# the same for training runs (engine/training_metrics.py: an item is a trained token)
TRAINING_BAR_METRICS: tuple[tuple[str, str, str, float], ...] = (
    ("train-tokens-per-s", "Trained tokens per second", "tokens/s", 1.0),
    ("step-time", "Step time (mean)", "ms", 1e-6),
    ("train-energy-per-token", "J per trained token", "mJ", 1e3),
    ("train-tokens-per-j", "Trained tokens per joule", "tokens/J", 1.0),
    ("cost-per-m-train-tokens", "$ per million tokens trained", "USD", 1.0),
    ("train-tflops", "Achieved model TFLOP/s", "TFLOP/s", 1.0),
)


MIN_BAR_SHARE = 0.45  # a label that would leave the bars less of the width than this is shortened
_SHA = re.compile(r"^[0-9a-f]{8}$")


def display_labels(labels: Sequence[str]) -> list[str]:
    """Shorter labels for charts: drop the parts every configuration shares, catalog prefixes,
    and model hashes (unless a hash is all that tells two configurations apart)."""
    split = [label.split(" · ") for label in labels]
    if len(split) <= 1:
        return [" · ".join(p.removeprefix("builtin:") for p in parts) for parts in split]
    common = set(split[0]).intersection(*split[1:])
    out = []
    for parts in split:
        kept = [p for p in parts if p not in common and not _SHA.match(p)]
        out.append(" · ".join(p.removeprefix("builtin:") for p in kept) or parts[0])
    if len(set(out)) < len(out):  # only a hash (or nothing) differed: keep the full labels
        return list(labels)
    return out


def short_text(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def set_plot_title(plot: pg.PlotWidget, text: str) -> None:
    plot.getPlotItem().setTitle(text, color=theme.foreground().name(), size="10pt")


class PlainAxis(pg.AxisItem):
    """An axis whose tick labels are plain numbers ('20,000', '0.5'), never '2e+04' or
    '1e+03' (pyqtgraph's own); in log mode, the value itself (10 ** position)."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)  # no "(x1e+06)" beside the label: the ticks say it

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self.logMode:
            return [units.tick_label(10.0**v) if v < 300 else "" for v in values]
        return [units.tick_label(v * scale) for v in values]


# (ticks drawn at the levels above, most of the axis' length their labels may fill): fewer
# labels between the major ticks than pyqtgraph's default, which labels 1, 2, 3 … 19
TEXT_FILL_LIMITS = [(0, 0.8), (2, 0.4), (4, 0.3), (6, 0.2)]


def plain_axes() -> dict[str, pg.AxisItem]:
    """A PlotWidget's ``axisItems``: plain-number ticks on the bottom and left axes."""
    axes = {"bottom": PlainAxis("bottom"), "left": PlainAxis("left")}
    for axis in axes.values():
        axis.setStyle(textFillLimits=TEXT_FILL_LIMITS)
    return axes


def add_legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-10, 10)) -> pg.LegendItem:
    """A legend (top right by default) on a background, so curves under it stay apart from
    its text; ``legend_columns`` sets its columns for the entries it gets."""
    fill = theme.background()
    fill.setAlpha(215)
    return plot.getPlotItem().addLegend(
        offset=offset, brush=pg.mkBrush(fill), labelTextColor=theme.foreground()
    )


def legend_columns(legend: pg.LegendItem, entries: int) -> None:
    """Two columns for a long legend, that would otherwise cover half the plot."""
    legend.setColumnCount(2 if entries > 4 else 1)


class MetricBars(pg.PlotWidget):
    """Horizontal bars, one per configuration, with 95 % interval whiskers and verdicts."""

    def __init__(self, title: str, unit: str, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent, axisItems=plain_axes())
        theme.watcher().register(self)
        self._title = title
        self._unit = unit
        self.bars: list[Bar] = []
        self.error_bars: pg.ErrorBarItem | None = None
        self.verdict_items: list[pg.TextItem] = []
        self._pool: list[pg.TextItem] = []
        self._bar_item: pg.BarGraphItem | None = None
        self._note: pg.TextItem | None = None
        self._axis = series.value_axis([])
        self._arrows = pg.ScatterPlotItem(size=9, pxMode=True, symbol="t2")  # ▶: runs on
        item = self.getPlotItem()
        item.addItem(self._arrows)
        item.getViewBox().sigResized.connect(self._fit_range)
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setLabel("bottom", unit)
        item.showGrid(x=True, y=False, alpha=0.18)
        set_plot_title(self, title)
        self.setMinimumHeight(170)

    def _text_pool(self, n: int) -> list[pg.TextItem]:
        """n TextItems, reused between redraws (creating and removing them is what is slow)."""
        item = self.getPlotItem()
        while len(self._pool) < n:
            label = pg.TextItem("", anchor=(0, 0.5))
            label.setZValue(10)  # over the interval lines
            item.addItem(label)
            self._pool.append(label)
        for i, label in enumerate(self._pool):
            label.setVisible(i < n)
        return self._pool[:n]

    def set_bars(self, bars: Sequence[Bar]) -> None:
        item = self.getPlotItem()
        self.bars = list(bars)
        shown = [b for b in self.bars if b.value is not None]
        if self._bar_item is None:
            self._bar_item = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[])
            item.addItem(self._bar_item)
            self._note = pg.TextItem("", anchor=(0.5, 0.5))
            item.addItem(self._note)
        assert self._note is not None
        if not shown:
            reasons = list(dict.fromkeys(b.na_reason for b in self.bars if b.na_reason))
            set_plot_title(self, f"{self._title}: n/a")
            text = "\n".join(textwrap.fill(r, 60) for r in reasons[:3]) or "no figures"
            if self._title.startswith("$") and any("no cost profile" in r for r in reasons):
                text += "\n(set a cost profile on the Costs page)"
            self._bar_item.setVisible(False)
            if self.error_bars is not None:
                self.error_bars.setVisible(False)
            self._text_pool(0)
            self._arrows.setData([])
            self._note.setText(text, color=theme.muted())
            self._note.setPos(0.5, 0.5)
            self._note.setVisible(True)
            self.verdict_items = [self._note]
            item.setXRange(0, 1, padding=0)
            item.setYRange(0, 1, padding=0)
            item.getAxis("left").setTicks([[], []])
            item.getAxis("bottom").setTicks([[], []])
            return
        self._note.setVisible(False)
        item.getAxis("bottom").setTicks(None)
        set_plot_title(self, self._title)
        n = len(self.bars)
        ys = np.arange(n, dtype=float)[::-1]  # first configuration at the top
        values = np.array([b.value if b.value is not None else 0.0 for b in self.bars])
        brushes = []
        for i, b in enumerate(self.bars):
            colour = QColor(theme.muted() if b.estimate else theme.series_colour(i))
            if b.value is None:
                colour.setAlpha(0)
            brush = pg.mkBrush(colour)
            if b.estimate:
                brush.setStyle(Qt.BrushStyle.BDiagPattern)  # hatched: a model, not measured
            brushes.append(brush)
        pens = [
            pg.mkPen(theme.foreground(), width=2) if b.baseline else pg.mkPen(None)
            for b in self.bars
        ]
        self._bar_item.setOpts(
            x0=np.zeros(n), y=ys, height=0.6, width=values, brushes=brushes, pens=pens
        )
        self._bar_item.setVisible(True)
        self._axis = axis = series.value_axis(self.bars)
        self.verdict_items = self._text_pool(n)
        for b, label in zip(self.bars, self.verdict_items, strict=True):
            verdict_colour = theme.VERDICT_COLOURS.get(b.verdict or "", theme.foreground().name())
            label.setText(self._bar_texts(b, axis)[0], color=verdict_colour)
            label.fill = pg.mkBrush(theme.background()) if self._runs_off(b) else pg.mkBrush(None)
        item.setYRange(-0.6, n - 0.4, padding=0)
        self._fit_range()
        self._ticks()

    def _runs_off(self, b: Bar) -> bool:
        return b.value is not None and b.hi is not None and b.hi > self._axis.top

    def _label_at(self, b: Bar) -> float:
        """Where a bar's label starts: after its interval; on the line of an interval that
        runs off the axis, just after the bar (over that line, on the background colour)."""
        if b.value is None:
            return 0.0
        return b.value if self._runs_off(b) else self._axis.end(b)

    def _fit_range(self) -> None:
        """The value axis from 0 to where every bar's label fits beside its bar, measured in
        pixels (again whenever the chart is resized). A label that would leave the bars less
        than ``MIN_BAR_SHARE`` of the width is shortened (``_bar_texts``; the full text in its
        tooltip), and the axis made long enough for the short one. Then the intervals, one
        that runs off drawn to the edge with an arrow."""
        if not self.bars or all(b.value is None for b in self.bars):
            return
        width = max(self.getPlotItem().getViewBox().width(), 50.0)
        right = self._axis.top * 1.03
        limit = right / MIN_BAR_SHARE
        for b, label in zip(self.bars, self.verdict_items, strict=True):
            metrics = QFontMetricsF(label.textItem.font())
            start = self._label_at(b)
            texts = self._bar_texts(b, self._axis)
            for text in texts:
                room = max(width - metrics.horizontalAdvance(text) - 12, 1.0)
                need = start * width / room
                if need <= limit:
                    break
            if label.toPlainText() != text:
                label.setText(text)
            label.setToolTip(texts[0])
            right = max(right, need)
        ys = np.arange(len(self.bars), dtype=float)[::-1]
        for b, label, y in zip(self.bars, self.verdict_items, ys, strict=True):
            label.setPos(self._label_at(b) + right * 4 / width, y)
        self.getPlotItem().setXRange(0, right, padding=0)
        self._draw_intervals(right, ys)

    def _draw_intervals(self, right: float, ys: np.ndarray) -> None:
        with_iv = [
            (y, b, min(b.hi, right))
            for y, b in zip(ys, self.bars, strict=True)
            if b.value is not None and b.lo is not None and b.hi is not None
        ]
        off = [(right * 0.975, y) for y, b in zip(ys, self.bars, strict=True) if self._runs_off(b)]
        self._arrows.setData(
            pos=off, brush=pg.mkBrush(theme.foreground()), pen=pg.mkPen(theme.foreground())
        )
        if not with_iv:
            if self.error_bars is not None:
                self.error_bars.setVisible(False)
            return
        data = {
            "x": np.array([b.value for _, b, _ in with_iv], dtype=float),
            "y": np.array([y for y, _, _ in with_iv], dtype=float),
            "left": np.array([(b.value or 0.0) - (b.lo or 0.0) for _, b, _ in with_iv]),
            "right": np.array([hi - (b.value or 0.0) for _, b, hi in with_iv]),
        }
        if self.error_bars is None:
            self.error_bars = pg.ErrorBarItem(
                beam=0.2, pen=pg.mkPen(theme.foreground(), width=1.5), **data
            )
            self.getPlotItem().addItem(self.error_bars)
        else:
            self.error_bars.setData(**data)
        self.error_bars.setVisible(True)

    @staticmethod
    def _bar_texts(b: Bar, axis: series.ValueAxis) -> list[str]:
        """A bar's label, then a shorter one for a narrow chart: without the ratio (and the
        interval's end); "(baseline)" and the verdict's word always stay."""
        if b.value is None:
            return ["n/a"]
        figure = units.number(b.value)
        value = figure + (" (estimate)" if b.estimate else "")
        if b.hi is not None and b.hi > axis.top:  # the arrow: its interval runs on to here
            value += f" · interval to {units.number(b.hi)}"
        if b.baseline:
            return [f"{value} (baseline)", f"{figure} (baseline)"]
        if b.ratio is None:
            return [value, figure]
        verdict = b.verdict or "(no CI)"
        return [f"{value} · {units.number(b.ratio)}× {verdict}", f"{figure} · {verdict}"]

    def _ticks(self) -> None:
        n = len(self.bars)
        ticks = [(float(n - 1 - i), short_text(b.label)) for i, b in enumerate(self.bars)]
        self.getPlotItem().getAxis("left").setTicks([ticks, []])


class BarGrid(QWidget):
    """Metric bar charts (six: ``BAR_METRICS`` by default) in a grid of two columns."""

    def __init__(
        self,
        parent: QWidget | None = None,
        metrics: tuple[tuple[str, str, str, float], ...] = BAR_METRICS,
    ) -> None:
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.metrics = metrics
        self.charts: dict[str, MetricBars] = {}
        for i, (metric, title, unit, _scale) in enumerate(metrics):
            chart = MetricBars(title, unit, self)
            self.charts[metric] = chart
            layout.addWidget(chart, i // 2, i % 2)
