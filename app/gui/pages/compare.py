"""Compare view: pick stored runs and a baseline, see ratios, verdicts and charts.

The controller loads the runs and the service compares them off the GUI thread, with the
store's cost profiles (comparisonReady); this page only turns the result into bars, curves
and sentences.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.gui import theme
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.compare_tabs import ChartTabs
from wattbench.gui.widgets.comparison_text import (
    short_labels,
    shorten,
    verdict_html,
    with_report_suffix,
)
from wattbench.gui.widgets.runs_table import throughput_text
from wattbench.gui.widgets.verdict_board import VerdictBoard
from wattbench.service.workbench import ComparisonView

log = logging.getLogger(__name__)

CHARTS_MIN_SHARE = 300  # pixels the charts keep when the summary needs more
REPORT_FILTERS = "HTML report (*.html);;PDF report (*.pdf);;CSV table (*.csv);;JSON data (*.json)"


class ComparePage(QWidget):
    """Pick runs and a baseline; bars with intervals and verdicts, CDFs, power, Pareto."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view: ComparisonView | None = None
        self.last_draw_s: float | None = None
        self._summaries: dict[str, Any] = {}
        self._checked: list[str] = []
        self._baseline_id: str | None = None
        self._profiles: list[CostProfile] = []
        self._waiting = False
        self._build()
        controller.runsListed.connect(self._on_runs_listed)
        controller.comparisonReady.connect(self._on_comparison)
        controller.comparisonFailed.connect(self._on_comparison_failed)
        controller.costProfilesReady.connect(self._on_profiles)
        controller.reportWritten.connect(self._on_report_written)
        controller.failed.connect(self._on_failed)
        controller.compareRequested.connect(lambda ids: self.set_runs(list(ids)))
        controller.storeReady.connect(self._on_store_opened)
        theme.watcher().on_change(self._recolour)
        asked = list(controller.compare_selection)
        if asked:
            self.set_runs(asked)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        picker = QWidget(self)
        pl = QVBoxLayout(picker)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(QLabel("<b>Runs to compare</b> (finished runs)"))
        self.filter_edit = QLineEdit(picker)
        self.filter_edit.setPlaceholderText("Filter by model, device, runtime, tag…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)
        pl.addWidget(self.filter_edit)
        self.run_list = QListWidget(picker)
        self.run_list.setAccessibleName("Runs to compare")
        self.run_list.itemChanged.connect(self._on_item_changed)
        self.run_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.run_list.setSpacing(1)
        pl.addWidget(self.run_list, 1)
        form = QFormLayout()
        self.baseline_combo = QComboBox(picker)
        self.baseline_combo.setAccessibleName("Baseline run")
        # long run labels must not widen the picker
        self.baseline_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.baseline_combo.setMinimumContentsLength(18)
        self.baseline_combo.currentIndexChanged.connect(self._on_baseline_changed)
        form.addRow("Baseline:", self.baseline_combo)
        self.energy_combo = QComboBox(picker)
        self.energy_combo.addItem("Device energy (the run's own device)", "device")
        self.energy_combo.addItem("System energy (every measured domain)", "system")
        self.energy_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.energy_combo.setMinimumContentsLength(18)
        self.energy_combo.setToolTip(
            "Device: energy of the compute device that ran the model. System: every measured "
            "domain together (a GPU server still powers its CPU and memory)."
        )
        self.energy_combo.currentIndexChanged.connect(self._on_energy_view)
        form.addRow("Energy:", self.energy_combo)
        pl.addLayout(form)
        buttons = QHBoxLayout()
        self.compare_button = QPushButton("Compare", picker)
        self.compare_button.setDefault(True)
        self.compare_button.clicked.connect(self.compare)
        self.export_button = QPushButton("Export report…", picker)
        self.export_button.clicked.connect(self.export_report)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.export_button)
        pl.addLayout(buttons)
        self.picker_status = QLabel("", picker)
        self.picker_status.setWordWrap(True)
        pl.addWidget(self.picker_status)

        results = QWidget(self)
        rl = QVBoxLayout(results)
        rl.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner(results, fold=2)
        rl.addWidget(self.banner)
        # the board first; the verdict sentences on demand under "Details"
        summary = self.summary = QWidget(results)
        sl = QVBoxLayout(summary)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(4)
        self.placeholder = QLabel(
            "Tick two or more runs, choose a baseline and press Compare. The board answers "
            "which configuration is best per second, per joule and per dollar, each compared "
            "with the baseline with its 95 % interval.",
            summary,
        )
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        sl.addWidget(self.placeholder)
        self.board = VerdictBoard(summary)
        self.board.setVisible(False)
        sl.addWidget(self.board)
        self.details_button = QToolButton(summary)
        self.details_button.setObjectName("details-toggle")
        self.details_button.setCheckable(True)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setAutoRaise(True)
        self.details_button.setText("Details: every verdict in words")
        self.details_button.toggled.connect(self.show_details)
        self.details_button.setVisible(False)
        sl.addWidget(self.details_button)
        self.verdicts = QTextBrowser(summary)
        self.verdicts.setAccessibleName("Verdicts")
        self.verdicts.setOpenLinks(False)
        self.verdicts.setMinimumHeight(60)
        self.verdicts.setVisible(False)
        sl.addWidget(self.verdicts, 1)
        # the summary above the charts, the boundary draggable
        self.results_split = QSplitter(Qt.Orientation.Vertical, results)
        self.results_split.setChildrenCollapsible(False)
        self.summary_scroll = QScrollArea(results)  # squeezed, it scrolls: nothing overlaps
        self.summary_scroll.setWidgetResizable(True)
        self.summary_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.summary_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary_scroll.setWidget(summary)
        self.results_split.addWidget(self.summary_scroll)
        charts = self.charts = ChartTabs(results)
        charts.setVisible(False)  # no empty plots: shown with the first comparison
        # the chart widgets, as tests, screenshots and the benchmark reach them
        self.tabs, self.bars, self.generation = charts.tabs, charts.bars, charts.generation
        self.cdf, self.power, self.batch = charts.cdf, charts.power, charts.batch
        self.pareto, self.slots, self.chart_notes = charts.pareto, charts.slots, charts.chart_notes
        self.show_tab, self.draw_all = charts.show_tab, charts.draw_all
        self.results_split.addWidget(charts)
        self.results_split.setStretchFactor(0, 0)
        self.results_split.setStretchFactor(1, 1)
        self.results_split.setSizes([120, 720])
        rl.addWidget(self.results_split, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(picker)
        splitter.addWidget(results)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._update_buttons()

    # ------------------------------------------------------------------ picking runs
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._summaries:
            self.controller.refresh_runs()
        self.controller.refresh_cost_profiles()

    def set_runs(self, run_ids: Sequence[str], baseline_id: str | None = None) -> None:
        """Select these runs (e.g. from the runs browser) and compare them at once."""
        self._checked = list(dict.fromkeys(run_ids))
        self._baseline_id = baseline_id or (self._checked[0] if self._checked else None)
        self._fill_list()
        self._fill_baseline()
        if len(self._checked) >= 2:
            self.compare()
        else:
            self.controller.refresh_runs()

    def _on_store_opened(self, _description: str) -> None:
        """Another store: its runs are not these; start again from its list."""
        if self.view is None and not self._checked:
            return
        self.view = None
        self._checked, self._summaries, self._baseline_id = [], {}, None
        self.banner.clear()
        self.board.setVisible(False)
        self.details_button.setVisible(False)
        self.show_details(False)
        self.placeholder.setVisible(True)
        self.charts.clear()
        self.charts.setVisible(False)
        self._fill_list()
        self._fill_baseline()
        self.controller.refresh_runs()

    def _on_runs_listed(self, summaries: list[Any]) -> None:
        self._summaries = {s.id: s for s in summaries}
        if self._summaries:  # a ticked run that is no longer listed was deleted
            self._checked = [rid for rid in self._checked if rid in self._summaries]
        self._fill_list()
        self._fill_baseline()

    def _label(self, run_id: str) -> str:
        s = self._summaries.get(run_id)
        if s is None:
            return run_id[:8]
        created = units.timestamp(s.created_at)
        thr = throughput_text(s)
        return f"{s.label} — {thr} — {created} — {run_id[:8]}"

    def _list_text(self, run_id: str) -> str:
        """Two lines in the run list: the configuration, then its figure, time and id."""
        s = self._summaries[run_id]
        created = units.timestamp(s.created_at)
        thr = throughput_text(s)
        return f"{s.label.removeprefix('builtin:')}\n{thr} · {created} · {run_id[:8]}"

    def _fill_list(self) -> None:
        self.run_list.blockSignals(True)
        self.run_list.clear()
        shown = [s for s in self._summaries.values() if s.status.value == "done"]
        for rid in self._checked:  # runs asked for but not (yet) listed stay visible
            if rid not in self._summaries:
                item = QListWidgetItem(rid[:8], self.run_list)
                item.setData(Qt.ItemDataRole.UserRole, rid)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
        for s in shown:
            item = QListWidgetItem(self._list_text(s.id), self.run_list)
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setToolTip(f"{s.label}\n{s.id}\ntags: {', '.join(s.tags) or '—'}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if s.id in self._checked else Qt.CheckState.Unchecked
            )
        self.run_list.blockSignals(False)
        self._apply_filter(self.filter_edit.text())
        if not shown and not self._checked:
            self.picker_status.setText(
                "No finished runs yet: run something on the New run "
                "page, or import a bundle with `wattbench import`."
            )
        else:
            self.picker_status.setText(f"{len(self._checked)} of {len(shown)} runs ticked.")

    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            s = self._summaries.get(item.data(Qt.ItemDataRole.UserRole))
            hay = (item.text() + " " + " ".join(s.tags if s else ())).lower()
            item.setHidden(bool(words) and not all(w in hay for w in words))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        rid = str(item.data(Qt.ItemDataRole.UserRole))
        if item.checkState() == Qt.CheckState.Checked and rid not in self._checked:
            self._checked.append(rid)
        elif item.checkState() != Qt.CheckState.Checked and rid in self._checked:
            self._checked.remove(rid)
        self._fill_baseline()
        self.picker_status.setText(f"{len(self._checked)} runs ticked.")

    def _fill_baseline(self) -> None:
        self.baseline_combo.blockSignals(True)
        self.baseline_combo.clear()
        for rid in self._checked:
            self.baseline_combo.addItem(self._label(rid), rid)
        if self._baseline_id not in self._checked:
            self._baseline_id = self._checked[0] if self._checked else None
        if self._baseline_id is not None:
            self.baseline_combo.setCurrentIndex(self._checked.index(self._baseline_id))
        self.baseline_combo.blockSignals(False)
        self._update_buttons()

    def _on_baseline_changed(self, index: int) -> None:
        self._baseline_id = self.baseline_combo.itemData(index) if index >= 0 else None
        if self.view is not None and len(self._checked) >= 2:
            self.compare()

    def _on_energy_view(self, _index: int) -> None:
        if self.view is not None and len(self._checked) >= 2:
            self.compare()

    def _update_buttons(self) -> None:
        enough = len(self._checked) >= 2
        self.compare_button.setEnabled(enough and not self._waiting)
        self.export_button.setEnabled(enough)
        if not enough:
            self.compare_button.setToolTip("Tick at least two runs.")
        else:
            self.compare_button.setToolTip("Compare the ticked runs with the baseline.")

    @property
    def checked_ids(self) -> list[str]:
        return list(self._checked)

    @property
    def baseline_id(self) -> str | None:
        return self._baseline_id

    @property
    def energy_view(self) -> str:
        return str(self.energy_combo.currentData())

    # ------------------------------------------------------------------ comparing
    def compare(self) -> None:
        if len(self._checked) < 2:
            self.banner.show_message("Tick at least two runs to compare.", Level.INFO)
            return
        self._waiting = True
        self._update_buttons()
        self.picker_status.setText("Loading and comparing the runs…")
        self.controller.compare(
            self._checked,
            baseline_id=self._baseline_id,
            energy_view=self.energy_view,
            cost_profiles=self._profiles,
        )

    def _on_comparison(self, view: ComparisonView) -> None:
        self._waiting = False
        self._update_buttons()
        self.picker_status.setText(
            f"{len(view.runs)} runs in {len(view.comparison.groups)} configurations."
        )
        self.show_comparison(view)

    def _on_comparison_failed(self, message: str) -> None:
        self._waiting = False
        self._update_buttons()
        self.picker_status.setText("")
        self.banner.show_message(message, Level.ERROR)

    def _on_profiles(self, profiles: list[CostProfile]) -> None:
        changed = profiles != self._profiles
        self._profiles = list(profiles)
        if changed and self.view is not None and len(self._checked) >= 2:
            self.compare()

    def show_comparison(self, view: ComparisonView) -> None:
        """Draw a comparison (public for tests and the benchmark)."""
        start = time.perf_counter()
        self.view = view
        comp = view.comparison
        names = short_labels(view)
        warnings = [shorten(w, names) for w in comp.warnings]
        if warnings:
            self.banner.show_message(warnings, Level.WARNING)
        else:
            self.banner.clear()
        self.verdicts.setHtml(verdict_html(view))
        self.placeholder.setVisible(False)
        self.board.set_view(view)
        self.details_button.setVisible(True)
        self.charts.setVisible(True)
        self._fit_summary()
        self.charts.set_view(view)
        self.last_draw_s = time.perf_counter() - start
        log.debug("drew a comparison of %d runs in %.3f s", len(view.runs), self.last_draw_s)

    @property
    def generative(self) -> bool:
        """Whether the token generation figures are shown (a compared run generated tokens)."""
        return self.charts.generative

    @property
    def details_shown(self) -> bool:
        """Whether the verdict sentences are shown (under "Details")."""
        return self.details_button.isChecked()

    def show_details(self, shown: bool = True) -> None:
        """Show or hide the verdict sentences under the board."""
        if self.details_button.isChecked() != shown:
            self.details_button.setChecked(shown)  # comes back here through toggled
            return
        self.details_button.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.verdicts.setVisible(shown)
        self._fit_summary()

    def _fit_summary(self) -> None:
        """Give the summary the height it needs: the board whole, the sentences a share."""
        total = sum(self.results_split.sizes()) or self.results_split.height()
        shown = self.verdicts.isVisible()
        self.verdicts.setVisible(False)  # measured without the sentences, then given a share
        layout = self.summary.layout()
        assert layout is not None
        layout.activate()
        width = max(self.summary_scroll.viewport().width(), 400)
        needed = self.summary.heightForWidth(width)
        if needed < 0:
            needed = self.summary.sizeHint().height()
        self.verdicts.setVisible(shown)
        needed += 2 * self.summary_scroll.frameWidth() + 2
        if self.details_shown:
            needed = max(needed + 200, int(total * 0.45))
        top = min(needed, max(total - CHARTS_MIN_SHARE, total // 3))
        self.results_split.setSizes([top, max(1, total - top)])

    def _recolour(self) -> None:
        """Colours written into text follow the palette: the sentences and the notes."""
        if self.view is not None:
            self.verdicts.setHtml(verdict_html(self.view))
            self.charts.redraw()  # texts and bars take the new colours
            QTimer.singleShot(0, self._fit_summary)  # the new style's rows and margins

    # ------------------------------------------------------------------ reports
    def export_report(self) -> None:
        if len(self._checked) < 2:
            self.banner.show_message("Tick at least two runs to export a report.", Level.INFO)
            return
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export report", "wattbench-report.html", REPORT_FILTERS
        )
        if not path:
            return
        path = with_report_suffix(path, chosen)
        self.picker_status.setText(f"Writing {path}…")
        self.controller.export_report(self._checked, path, baseline_id=self._baseline_id)

    def _on_report_written(self, path: str) -> None:
        self.picker_status.setText("")
        self.banner.show_message(f"Report written to {path}", Level.INFO)

    def _on_failed(self, what: str, message: str) -> None:
        if what in ("export a report", "load runs"):
            self.picker_status.setText("")
            self.banner.show_message(f"Could not {what}: {message}", Level.ERROR)
