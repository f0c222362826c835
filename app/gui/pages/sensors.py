"""Sensors page: the `wattbench sensors` diagnosis in the GUI, each fix ready to copy.

The controller runs the diagnosis off the GUI thread (sensorsReady); a source that cannot be
read shows why and the exact fix (a udev rule, a tmpfiles line, a package to install).
"""

from __future__ import annotations

import html
import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from wattbench.energy.doctor import SensorReport
from wattbench.gui import theme
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level

log = logging.getLogger(__name__)

HEADERS = ("Device", "Power source", "Status", "Why")


def status_colour(status: str) -> QColor | None:
    s = status.lower()
    if s in ("ok", "readable", "available"):
        return QColor(theme.ok_colour())
    if s in ("warning", "estimate", "degraded"):
        return QColor(theme.warning_text())
    if s:
        return QColor(theme.error_text())
    return None


class SensorsPage(QWidget):
    """Every power source, its status, why it cannot be read, and the fix."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.report: SensorReport | None = None
        self._asked = False
        self._build()
        controller.sensorsReady.connect(self._on_report)
        theme.watcher().on_change(self._recolour)
        controller.failed.connect(self._on_failed)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("Press Diagnose to check every power source.", self)
        self.summary.setWordWrap(True)
        top.addWidget(self.summary, 1)
        self.diagnose_button = QPushButton("Diagnose again", self)
        self.diagnose_button.clicked.connect(self.diagnose)
        top.addWidget(self.diagnose_button)
        layout.addLayout(top)
        self.banner = Banner(self)
        layout.addWidget(self.banner)

        self.table = QTableWidget(0, len(HEADERS), self)
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)

        fix_box = QWidget(self)
        fl = QVBoxLayout(fix_box)
        fl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.fix_title = QLabel("<b>Fix</b>", fix_box)
        row.addWidget(self.fix_title, 1)
        self.copy_button = QPushButton("Copy fix", fix_box)
        self.copy_button.clicked.connect(self.copy_fix)
        self.copy_button.setEnabled(False)
        row.addWidget(self.copy_button)
        fl.addLayout(row)
        self.fix_text = QPlainTextEdit(fix_box)
        self.fix_text.setReadOnly(True)
        self.fix_text.setAccessibleName("Fix")
        self.fix_text.setPlaceholderText("Select a source that cannot be read to see its fix.")
        font = self.fix_text.font()
        font.setFamily("monospace")
        self.fix_text.setFont(font)
        fl.addWidget(self.fix_text, 1)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(fix_box)
        splitter.setSizes([420, 200])
        layout.addWidget(splitter, 1)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._asked:
            self.diagnose()

    def diagnose(self) -> None:
        self._asked = True
        self.diagnose_button.setEnabled(False)
        self.summary.setText("Checking every power source…")
        self.controller.diagnose_sensors()

    def _on_report(self, report: SensorReport) -> None:
        self.report = report
        self.diagnose_button.setEnabled(True)
        self.banner.clear()
        rows = report.diagnoses
        self.table.setRowCount(len(rows))
        for r, status in enumerate(rows):
            values = (status.device or "—", status.title, status.status, status.detail or "—")
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if c == 2 and (colour := status_colour(status.status)) is not None:
                    item.setForeground(colour)
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        readable = sum(1 for s in rows if s.ok)
        text = (
            f"{readable} of {len(rows)} power sources can be read."
            if rows
            else "No power source was found."
        )
        fixes = sum(1 for s in rows if s.fix)
        if fixes:
            text += f" {fixes} can be fixed: select one to see how."
        self.summary.setText(text)
        first_fix = next((i for i, s in enumerate(rows) if s.fix), None)
        if first_fix is not None:
            self.table.selectRow(first_fix)
        else:
            self._on_selection()

    def _recolour(self) -> None:
        """The statuses' colours for the palette now in use."""
        if self.report is None:
            return
        for r, status in enumerate(self.report.diagnoses):
            item = self.table.item(r, 2)
            if item is not None and (colour := status_colour(status.status)) is not None:
                item.setForeground(colour)

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if self.report is None or not rows:
            self.fix_text.setPlainText("")
            self.copy_button.setEnabled(False)
            return
        status = self.report.diagnoses[rows[0].row()]
        self.fix_title.setText(f"<b>Fix for {html.escape(status.title)}</b>")
        if status.fix:
            self.fix_text.setPlainText(status.fix)
            self.copy_button.setEnabled(True)
        else:
            self.fix_text.setPlainText("")
            self.fix_text.setPlaceholderText(
                "Nothing to fix: this source can be read."
                if status.ok
                else "No fix is known for this source on this machine."
            )
            self.copy_button.setEnabled(False)

    def copy_fix(self) -> None:
        text = self.fix_text.toPlainText()
        if text:
            QGuiApplication.clipboard().setText(text)
            self.banner.show_message("The fix is on the clipboard.", Level.INFO)

    def _on_failed(self, what: str, message: str) -> None:
        if what == "diagnose sensors":
            self.diagnose_button.setEnabled(True)
            self.summary.setText("The diagnosis did not finish.")
            self.banner.show_message(message, Level.ERROR)
