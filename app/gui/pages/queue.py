"""The Queue page: every queued, running and finished run of this session, with its progress.

Runs execute one at a time (the controller's run thread supervises each worker process). A row
shows the run's phase and, while measuring, ρ (the relative half-width of the mean's interval)
approaching its target ε; a failed run shows why, and the queue goes on with the next.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain import units
from wattbench.domain.events import Phase
from wattbench.gui import icons, theme
from wattbench.gui.controller import Controller, ItemState, QueueItem, run_caveats

log = logging.getLogger(__name__)

COLUMNS = ("#", "Run", "State", "Progress", "Samples", "Elapsed", "Result / reason")
COL_KEY, COL_RUN, COL_STATE, COL_PROGRESS, COL_N, COL_ELAPSED, COL_REASON = range(len(COLUMNS))


def progress_text(item: QueueItem) -> str:
    """The phase in words, with ρ → ε while measuring."""
    if item.state is ItemState.QUEUED:
        return "waiting"
    if item.state.finished:
        return str(item.state)
    text = str(item.phase)
    if item.phase == Phase.MEASURING and item.rho is not None and item.epsilon is not None:
        text += f" · {units.rho(item.rho)} → ε {units.percent(item.epsilon)}"
    elif item.message and item.message not in text:
        text += f" · {item.message}"
    return text


def progress_value(item: QueueItem) -> int | None:
    """Per mille done, or None when unknown (the bar then shows activity)."""
    if item.state is ItemState.DONE:
        return 1000
    if item.state.finished or item.state is ItemState.QUEUED:
        return 0
    if item.fraction is not None:
        return int(max(0.0, min(1.0, item.fraction)) * 1000)
    if item.phase == Phase.MEASURING and item.rho and item.epsilon:
        return int(min(1.0, item.epsilon / item.rho) * 1000)
    return None


def state_colour(item: QueueItem) -> QBrush:
    """Failed: the error colour; done: green only when its figures carry no caveat (a run
    that did not converge or reads unreliable gets the warning colour)."""
    if item.state is ItemState.FAILED:
        return QBrush(QColor(theme.error_text()))
    if item.state is ItemState.DONE:
        return QBrush(QColor(theme.warning_text() if run_caveats(item) else theme.ok_colour()))
    return QBrush(theme.foreground())


class QueuePage(QWidget):
    """A table of the session's runs with cancel and clear buttons."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("queue-table")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_RUN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_REASON, QHeaderView.ResizeMode.Stretch)
        for col, width in (
            (COL_KEY, 40),
            (COL_STATE, 90),
            (COL_PROGRESS, 260),
            (COL_N, 80),
            (COL_ELAPSED, 80),
        ):
            self.table.setColumnWidth(col, width)
        self.empty_label = QLabel(
            "No runs yet. Set one up on the New run page and press Run (Ctrl+R).", self
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cancel_button = QPushButton(icons.icon("icon-cancel"), "Cancel selected", self)
        self.cancel_all_button = QPushButton(icons.icon("icon-cancel"), "Cancel all", self)
        self.clear_button = QPushButton("Clear finished", self)
        self.live_button = QPushButton(icons.icon("icon-live"), "Live view", self)
        self.runs_button = QPushButton(icons.icon("icon-runs"), "Runs browser", self)
        buttons = QHBoxLayout()
        for b in (self.cancel_button, self.cancel_all_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.live_button)
        buttons.addWidget(self.runs_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)

        self._rows: dict[int, int] = {}  # queue key -> row
        self._bars: dict[int, QProgressBar] = {}
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.cancel_all_button.clicked.connect(controller.cancel_all)
        self.clear_button.clicked.connect(controller.clear_finished)
        self.live_button.clicked.connect(lambda: controller.request_page("live"))
        self.runs_button.clicked.connect(lambda: controller.request_page("runs"))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        controller.queueChanged.connect(self.rebuild)
        controller.itemChanged.connect(self.update_item)
        theme.watcher().on_change(self._recolour)
        self.rebuild()

    # ------------------------------------------------------------------ public
    def row_of(self, key: int) -> int | None:
        return self._rows.get(key)

    def cell_text(self, key: int, column: int) -> str:
        """The text shown in one cell (for tests and screen readers)."""
        row = self._rows.get(key)
        if row is None:
            return ""
        if column == COL_PROGRESS:
            return self._bars[key].format()
        cell = self.table.item(row, column)
        return cell.text() if cell is not None else ""

    def selected_keys(self) -> list[int]:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return [key for key, row in self._rows.items() if row in rows]

    def cancel_selected(self) -> None:
        for key in self.selected_keys():
            self.controller.cancel(key)

    # ------------------------------------------------------------------ drawing
    def rebuild(self) -> None:
        items = list(self.controller.items.values())
        self.table.setRowCount(0)
        self._rows.clear()
        self._bars.clear()
        self.table.setRowCount(len(items))
        for row, item in enumerate(items):
            self._rows[item.key] = row
            for col in range(len(COLUMNS)):
                if col != COL_PROGRESS:
                    self.table.setItem(row, col, QTableWidgetItem())
            bar = QProgressBar(self.table)
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            self.table.setCellWidget(row, COL_PROGRESS, bar)
            self._bars[item.key] = bar
            self.update_item(item.key)
        self.empty_label.setVisible(not items)
        self.table.setVisible(bool(items))
        self._update_buttons()

    def update_item(self, key: int) -> None:
        item = self.controller.items.get(key)
        row = self._rows.get(key)
        if item is None or row is None:
            return
        cells = {
            COL_KEY: str(item.key),
            COL_RUN: item.label,
            COL_STATE: str(item.state),
            COL_N: f"{item.n:,}" if item.n else "",
            COL_ELAPSED: units.duration_s(item.elapsed_s) if item.elapsed_s else "",
            COL_REASON: self._reason(item),
        }
        colour = state_colour(item)
        for col, text in cells.items():
            cell = self.table.item(row, col)
            if cell is None:
                continue
            cell.setText(text)
            cell.setToolTip(item.reason or item.label if col == COL_REASON else text)
            if col in (COL_STATE, COL_REASON):
                cell.setForeground(colour)
        bar = self._bars[key]
        value = progress_value(item)
        if value is None:
            bar.setValue(0)
        else:
            bar.setValue(value)
        bar.setFormat(progress_text(item))
        bar.setToolTip(progress_text(item))
        self._update_buttons()

    def _recolour(self) -> None:
        """The states' colours for the palette now in use."""
        for key in list(self._rows):
            self.update_item(key)

    def _reason(self, item: QueueItem) -> str:
        if item.state is ItemState.DONE:
            stored = "stored" if item.stored else "not stored"
            rho = units.rho(item.rho) if item.rho is not None else ""
            if item.converged is False:  # stopped by its time or sample limit: say so
                if rho and item.epsilon and item.rho is not None and item.rho > item.epsilon:
                    rho += f" > ε {units.percent(item.epsilon)}"
                rho = f"did not converge ({rho})" if rho else "did not converge"
            rho = f" · {rho}" if rho else ""
            others = [c for c in run_caveats(item) if not c.startswith("not converged")]
            if others:  # what makes its verdicts unreliable besides convergence
                rho += f" · unreliable: {'; '.join(others)}"
            return f"done ({stored}){rho}" + (f" — {item.reason}" if item.reason else "")
        return item.reason or ""

    def _update_buttons(self) -> None:
        live = [it for it in self.controller.items.values() if not it.state.finished]
        selected_live = any(
            not self.controller.items[k].state.finished
            for k in self.selected_keys()
            if k in self.controller.items
        )
        self.cancel_button.setEnabled(selected_live)
        self.cancel_all_button.setEnabled(bool(live))
        self.clear_button.setEnabled(
            any(it.state.finished for it in self.controller.items.values())
        )
