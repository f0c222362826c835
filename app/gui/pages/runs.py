"""Runs browser: every stored run, sortable and filterable, with tags, notes, deletion and details.

The table shows the store's run summaries (no arrays); selecting one run loads it in full
through the controller for the details pane (system description, spec, flags, latency
histogram). "Compare selected" hands the ids to the compare view (controller.request_compare).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import (
    Qt,
)
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.codec import to_document
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.run_details import HistogramPlot, flatten_html, run_summary_html
from wattbench.gui.widgets.runs_table import (
    ANY,
    COLUMNS,
    DATE_WINDOWS,
    ID_ROLE,
    RunsFilter,
    RunsModel,
)

log = logging.getLogger(__name__)


class RunsPage(QWidget):
    """Every stored run: filter, sort, tag, note, delete, inspect, send to compare."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = RunsModel(self)
        self.proxy = RunsFilter(self)
        self.proxy.setSourceModel(self.model)
        self._detail_id: str | None = None
        self._loaded_once = False
        self._build()
        controller.runsListed.connect(self._on_runs_listed)
        controller.runsChanged.connect(self.refresh)
        controller.runLoaded.connect(self._on_run_loaded)
        controller.failed.connect(self._on_failed)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        filters = QHBoxLayout()
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search runs (model, device, tag, note, id)…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filters)
        filters.addWidget(self.search, 2)
        self.model_combo = self._combo("Model", filters)
        self.device_combo = self._combo("Device", filters)
        self.status_combo = self._combo("Status", filters)
        self.tag_combo = self._combo("Tag", filters)
        filters.addWidget(QLabel("Date:"))
        self.date_combo = QComboBox(self)
        for name, _span in DATE_WINDOWS:
            self.date_combo.addItem(name)
        self.date_combo.currentIndexChanged.connect(self._apply_filters)
        filters.addWidget(self.date_combo)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _i: self.edit_note())

        actions = QHBoxLayout()
        self.count_label = QLabel("", self)
        actions.addWidget(self.count_label, 1)
        self.tag_button = self._button("Add tag…", self.add_tag, actions)
        self.untag_button = self._button("Remove tag…", self.remove_tag, actions)
        self.note_button = self._button("Note…", self.edit_note, actions)
        self.delete_button = self._button("Delete…", self.delete_selected, actions)
        self.compare_button = self._button("Compare selected", self.compare_selected, actions)
        self.refresh_button = self._button("Refresh", self.refresh, actions)
        QShortcut(QKeySequence.StandardKey.Delete, self.table, self.delete_selected)

        self.banner = Banner(self)
        self.details_tabs = QTabWidget(self)
        self.summary_view = QTextBrowser(self.details_tabs)
        self.spec_view = QTextBrowser(self.details_tabs)
        self.system_view = QTextBrowser(self.details_tabs)
        self.details_tabs.addTab(self.summary_view, "Run")
        self.details_tabs.addTab(self.spec_view, "Spec")
        self.details_tabs.addTab(self.system_view, "System")
        self.histogram = HistogramPlot(self)
        details = QSplitter(Qt.Orientation.Horizontal, self)
        details.addWidget(self.details_tabs)
        details.addWidget(self.histogram)
        details.setSizes([600, 500])

        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(filters)
        tl.addWidget(self.table, 1)
        tl.addLayout(actions)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(top)
        splitter.addWidget(details)
        splitter.setStretchFactor(0, 1)  # the run list takes the height the window gains
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([560, 300])
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        self._show_empty_details()
        self._update_buttons()

    def _combo(self, name: str, layout: QHBoxLayout) -> QComboBox:
        layout.addWidget(QLabel(f"{name}:"))
        combo = QComboBox(self)
        combo.setAccessibleName(f"{name} filter")
        combo.addItem(ANY, "")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.currentIndexChanged.connect(self._apply_filters)
        layout.addWidget(combo)
        return combo

    def _button(self, text: str, slot: Any, layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text, self)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    # ------------------------------------------------------------------ listing
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded_once:
            self.refresh()

    def refresh(self) -> None:
        self.controller.refresh_runs()

    def _on_runs_listed(self, summaries: list[Any]) -> None:
        self._loaded_once = True
        selected = set(self.selected_ids())
        self.model.set_summaries(summaries)
        self._fill_combo(self.model_combo, sorted({s.model_ref for s in summaries}))
        self._fill_combo(self.device_combo, sorted({s.device for s in summaries}))
        self._fill_combo(self.status_combo, sorted({s.status.value for s in summaries}))
        self._fill_combo(self.tag_combo, sorted({t for s in summaries for t in s.tags}))
        self._apply_filters()
        if selected:
            self.select_ids(selected)
        self.table.resizeColumnsToContents()
        for col in range(len(COLUMNS)):
            if self.table.columnWidth(col) > 260:
                self.table.setColumnWidth(col, 260)

    @staticmethod
    def _fill_combo(combo: QComboBox, values: list[str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(ANY, "")
        for v in values:
            combo.addItem(v, v)
        index = combo.findData(current)
        combo.setCurrentIndex(max(0, index))
        combo.blockSignals(False)

    def _apply_filters(self, *_args: Any) -> None:
        span = DATE_WINDOWS[max(0, self.date_combo.currentIndex())][1]
        self.proxy.set_filters(
            model=self.model_combo.currentData() or "",
            device=self.device_combo.currentData() or "",
            status=self.status_combo.currentData() or "",
            tag=self.tag_combo.currentData() or "",
            since=datetime.now(UTC) - span if span is not None else None,
            text=self.search.text(),
        )
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == 0:
            self.count_label.setText("No runs stored yet: start one on the New run page.")
        elif shown == total:
            self.count_label.setText(f"{total} runs")
        else:
            self.count_label.setText(f"{shown} of {total} runs match the filters")
        self._update_buttons()

    # ------------------------------------------------------------------ selection
    def selected_ids(self) -> list[str]:
        rows = self.table.selectionModel().selectedRows()
        return [str(self.proxy.data(i, ID_ROLE)) for i in sorted(rows, key=lambda i: i.row())]

    def select_ids(self, ids: Sequence[str] | set[str]) -> None:
        wanted = set(ids)
        selection = self.table.selectionModel()
        selection.clearSelection()
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if self.proxy.data(index, ID_ROLE) in wanted:
                selection.select(
                    index, selection.SelectionFlag.Select | selection.SelectionFlag.Rows
                )

    def _on_selection(self, *_args: Any) -> None:
        ids = self.selected_ids()
        self._update_buttons()
        if len(ids) == 1:
            self._detail_id = ids[0]
            self.summary_view.setHtml("<p>Loading…</p>")
            self.controller.load_run(ids[0])
        else:
            self._detail_id = None
            self._show_empty_details(len(ids))

    def _update_buttons(self) -> None:
        n = len(self.selected_ids())
        for button in (self.tag_button, self.untag_button, self.delete_button):
            button.setEnabled(n >= 1)
        self.note_button.setEnabled(n == 1)
        self.compare_button.setEnabled(n >= 2)
        self.compare_button.setToolTip(
            "Select two or more runs (Ctrl+click) to compare them."
            if n < 2
            else "Open these runs in the compare view."
        )

    # ------------------------------------------------------------------ details
    def _show_empty_details(self, n: int = 0) -> None:
        text = f"{n} runs selected." if n > 1 else "Select a run to see its details."
        for view in (self.summary_view, self.spec_view, self.system_view):
            view.setHtml(f"<p>{text}</p>")
        self.histogram.set_latencies(None, None, None, "select one run")

    def _on_run_loaded(self, result: Any) -> None:
        if result.id != self._detail_id:
            return
        self.summary_view.setHtml(run_summary_html(result))
        self.spec_view.setHtml(flatten_html(to_document(result.spec)))
        system = dict(result.system)
        self.system_view.setHtml(
            flatten_html(system)
            if system
            else "<p>n/a — no system description was stored with this run.</p>"
        )
        lats = result.arrays.get("latencies_ns")
        lat = result.latency
        p50 = lat.percentile(0.5) if lat is not None else None
        p99 = lat.percentile(0.99) if lat is not None else None
        self.histogram.set_latencies(
            lats,
            p50.value_ns if p50 else None,
            p99.value_ns if p99 else None,
            result.reason or "no per-call latencies stored",
        )

    # ------------------------------------------------------------------ actions
    def add_tag(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        tag, ok = QInputDialog.getText(self, "Add tag", f"Tag for {len(ids)} run(s):")
        tag = tag.strip()
        if ok and tag:
            self.controller.add_tag(ids, tag)

    def remove_tag(self) -> None:
        ids = self.selected_ids()
        tags = sorted({t for s in self.model.summaries if s.id in ids for t in s.tags})
        if not ids:
            return
        if not tags:
            self.banner.show_message("The selected runs have no tags.", Level.INFO)
            return
        tag, ok = QInputDialog.getItem(self, "Remove tag", "Tag to remove:", tags, 0, False)
        if ok and tag:
            self.controller.remove_tag(ids, tag)

    def edit_note(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        current = next((s.note for s in self.model.summaries if s.id == ids[0]), "")
        text, ok = QInputDialog.getMultiLineText(self, "Note", "Note for this run:", current)
        if ok and text != current:
            self.controller.set_note(ids[0], text)

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        answer = QMessageBox.question(
            self,
            "Delete runs",
            f"Delete {len(ids)} run(s) with their measurements? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.delete_runs(ids)
            self.banner.show_message(f"Deleted {len(ids)} run(s).", Level.INFO)

    def selected_run_ids(self) -> list[str]:
        """The selected runs (the main window's compare shortcut reads this)."""
        return self.selected_ids()

    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) >= 2:
            self.controller.request_compare(ids)

    def _on_failed(self, what: str, message: str) -> None:
        if what in (
            "list runs",
            "load a run",
            "tag runs",
            "untag runs",
            "save a note",
            "delete runs",
        ):
            self.banner.show_message(f"Could not {what}: {message}", Level.ERROR)
