"""The compare view's charts: the bar charts of the figures (and of token generation), latency
CDFs, power, throughput against batch size and the Pareto view, in tabs, each drawn the first
time it is shown after a comparison arrives.

A chart with nothing to draw says why in one line instead of an empty plot (``chart_slot``);
the drawing itself is the chart widgets' own, from the plain values ``reports.series`` builds.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget
from wattbench.gui.widgets.bar_charts import GENERATION_BAR_METRICS, TRAINING_BAR_METRICS, BarGrid
from wattbench.gui.widgets.chart_slot import ChartSlot, fold_empty, note_html, one_line
from wattbench.gui.widgets.compare_charts import BatchChart, CdfChart, ParetoChart, PowerChart
from wattbench.gui.widgets.comparison_text import na_reason, short_labels
from wattbench.reports import series
from wattbench.service.workbench import ComparisonView

log = logging.getLogger(__name__)


def _scrolled(grid: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(grid)
    return area


class ChartTabs(QWidget):
    """The chart tabs, and above them one line per bar chart that has nothing to draw."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view: ComparisonView | None = None
        self._stale: set[int] = set()
        self._grid_notes: dict[int, list[str]] = {}  # tab index -> bar charts not drawn
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.chart_notes = QLabel(self)
        self.chart_notes.setObjectName("chart-notes")
        self.chart_notes.setWordWrap(True)
        self.chart_notes.setTextFormat(Qt.TextFormat.RichText)
        self.chart_notes.setVisible(False)
        self.tabs = QTabWidget(self)
        self.bars = BarGrid(self.tabs)
        self.generation = BarGrid(self.tabs, GENERATION_BAR_METRICS)
        self.training = BarGrid(self.tabs, TRAINING_BAR_METRICS)
        self.cdf = CdfChart(self.tabs)
        self.power = PowerChart(self.tabs)
        self.batch = BatchChart(self.tabs)
        self.pareto = ParetoChart(self.tabs)
        self.slots: dict[QWidget, ChartSlot] = {
            chart: ChartSlot(chart, self.tabs)
            for chart in (self.cdf, self.power, self.batch, self.pareto)
        }
        # each tab's page: a grid scrolls when the sentences above take its height
        self.pages: dict[QWidget, QWidget] = {
            self.bars: _scrolled(self.bars),
            self.generation: _scrolled(self.generation),
            self.training: _scrolled(self.training),
            **self.slots,
        }
        for chart, title in (
            (self.bars, "Figures"),
            (self.generation, "Token generation"),  # shown for generation runs
            (self.training, "Training"),  # shown for training runs
            (self.cdf, "Latency CDF"),
            (self.power, "Power"),
            (self.batch, "Throughput vs batch"),
            (self.pareto, "Pareto"),
        ):
            self.tabs.addTab(self.pages[chart], title)
        self.tabs.setTabVisible(self._index(self.generation), False)
        self.tabs.setTabVisible(self._index(self.training), False)
        self.tabs.currentChanged.connect(self._draw_tab)
        self.tabs.currentChanged.connect(self._show_chart_notes)
        layout.addWidget(self.chart_notes)
        layout.addWidget(self.tabs, 1)

    def set_view(self, view: ComparisonView) -> None:
        """Draw the tab shown from this comparison; the others when they are shown."""
        self.view = view
        training = any(r.training is not None for r in view.runs)
        self.tabs.setTabVisible(self._index(self.bars), True)  # where a hidden tab moves to
        self._show_grid(self.generation, any(r.generation is not None for r in view.runs))
        self._show_grid(self.training, training)
        self.tabs.setTabVisible(self._index(self.bars), not training)  # its figures are n/a
        self.redraw()

    def clear(self) -> None:
        """Forget the comparison: the charts keep what they drew until the next one."""
        self.view = None
        self._stale = set()
        self._grid_notes = {}
        self._show_chart_notes()

    def redraw(self) -> None:
        """Draw the tab shown again (e.g. in a new palette's colours), the others when shown."""
        self._stale = set(range(self.tabs.count()))
        self._grid_notes = {}
        self._draw_tab(self.tabs.currentIndex())
        self._show_chart_notes()

    @property
    def generative(self) -> bool:
        """Whether the token generation figures are shown (a compared run generated tokens)."""
        return self.tabs.isTabVisible(self._index(self.generation))

    @property
    def training_shown(self) -> bool:
        """Whether the training figures are shown (a compared run is a training run)."""
        return self.tabs.isTabVisible(self._index(self.training))

    def _show_grid(self, grid: BarGrid, shown: bool) -> None:
        """The token generation or training tab, brought to the front when it appears."""
        index = self._index(grid)
        if shown == self.tabs.isTabVisible(index):
            return
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)  # the tab is drawn by show_comparison, once
        self.tabs.setTabVisible(index, shown)
        if shown or current == index:  # hiding the tab shown moves on to the figures
            self.tabs.setCurrentIndex(index if shown else self._index(self.bars))
        self.tabs.blockSignals(False)

    def _draw_tab(self, index: int) -> None:
        """Draw one chart tab from the current comparison (each tab once per comparison)."""
        view = self.view
        if view is None or index not in self._stale:
            return
        self._stale.discard(index)
        comp, names = view.comparison, short_labels(view)
        tab = self._index
        grids = {tab(g): g for g in (self.bars, self.generation, self.training)}
        if index in grids:
            grid = grids[index]
            drawn, notes = [], []
            for metric, title, _unit, scale in grid.metrics:
                bars = series.metric_bars(comp, metric, scale=scale, labels=names)
                grid.charts[metric].set_bars(bars)
                if any(b.value is not None for b in bars):
                    drawn.append(metric)
                else:
                    reasons = [b.na_reason for b in bars if b.na_reason]
                    why = na_reason(view, metric) or (reasons[0] if reasons else "no figures")
                    notes.append(f"{title}: n/a — {one_line(why)}")
            fold_empty(grid, grid.charts, drawn)
            self._grid_notes[index] = notes
        elif index == tab(self.cdf):
            self.cdf.set_series(series.latency_samples(comp, names))
            self._slot(self.cdf, bool(self.cdf.curves), "the runs hold no per-call latencies")
        elif index == tab(self.power):
            power, why = series.power_series(comp, names)
            self.power.set_series(power, why)
            self._slot(self.power, bool(self.power.curves), one_line(why or "no power samples"))
        elif index == tab(self.batch):
            self.batch.set_series(series.batch_series(comp, names))
            self._slot(
                self.batch,
                bool(self.batch.curves),
                "no configuration was measured at two or more batch sizes",
            )
        elif index == tab(self.pareto):
            self.pareto.set_points(series.pareto_points(comp, names))
            self._slot(self.pareto, bool(self.pareto.points), "no run has both figures")

    def _slot(self, chart: QWidget, drawn: bool, why: str) -> None:
        slot = self.slots[chart]
        if drawn:
            slot.show_chart()
        else:
            slot.show_note(f"{self.tabs.tabText(self.tabs.indexOf(slot))}: n/a — {why}")

    def _show_chart_notes(self, *_args: object) -> None:
        """Above the bar charts: one line per chart of theirs that has nothing to draw."""
        notes = self._grid_notes.get(self.tabs.currentIndex(), [])
        self.chart_notes.setText(note_html(notes))
        self.chart_notes.setVisible(bool(notes))

    def _index(self, chart: QWidget) -> int:
        return self.tabs.indexOf(self.pages[chart])

    @property
    def current_chart(self) -> QWidget:
        """The chart (or grid of bar charts) of the tab shown."""
        page = self.tabs.currentWidget()
        return next(chart for chart, p in self.pages.items() if p is page)

    def show_tab(self, chart: QWidget) -> None:
        """Bring a chart's tab to the front (it draws then, if it has not yet)."""
        self.tabs.setCurrentWidget(self.pages[chart])

    def draw_all(self) -> None:
        """Draw every tab now (reports and screenshots; the view itself draws lazily)."""
        for index in range(self.tabs.count()):
            self._draw_tab(index)
