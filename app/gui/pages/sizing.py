"""Sizing: the capacity planner on stored runs — how many servers of each configuration a
facility's power budget holds, what they deliver together and what they cost over a period.

The page gathers the inputs (the runs, the facility, what the user states about each device's
servers) and reads them with the service's parsers, so a bad input is refused here with the
same message the CLI gives; the plan itself runs on the controller's database thread
(``Controller.plan_capacity``). The table's cells are the CLI's (``service.capacity_table``):
the configurations as columns, every input labelled measured / estimate / input.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.gui import theme
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.run_picker import RunPicker
from wattbench.service.capacity import (
    CapacityRow,
    Facility,
    ServerInput,
    parse_power,
    parse_server,
)
from wattbench.service.capacity_table import plan_notes, plan_table, plan_title

log = logging.getLogger(__name__)

# the columns of the servers table: (key of service.capacity.parse_server, header, tooltip)
SERVER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("devices", "Devices", "How many of this device one server holds (default 1)."),
    ("power", "Load", "The whole server's power at full load, e.g. 250W or 10kW (default: "
     "measured by the runs)."),
    ("idle", "Idle", "The server's power when idle, e.g. 90W (default: measured before the "
     "runs)."),
    ("price", "Price ($)", "One server, e.g. 300000 (default: the device's cost profile × "
     "devices)."),
)  # fmt: skip
RESULT_ROWS = ("servers", "racks", "aggregate throughput", "total cost", "$ per 1M")


def _number(text: str, label: str, field: str) -> float:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        raise BadInputError(f"{label}: {text.strip()!r} is not a number.", field=field) from None


def _power(text: str, unit: str, field: str) -> float:
    """'600' with the unit beside the field, or a power with its own unit ('1MW')."""
    text = text.strip()
    return parse_power(text + unit if text[-1:].isdigit() else text, field=field)


def _fit_height(table: QTableWidget, min_rows: int = 0) -> None:
    """As tall as its rows, so that it never scrolls on its own (its page scrolls)."""
    rows = table.verticalHeader().length()
    rows = max(rows, min_rows * table.verticalHeader().defaultSectionSize())
    header = table.horizontalHeader().sizeHint().height()
    table.setFixedHeight(rows + header + 2 * table.frameWidth() + 2)


def _scrolling(widget: QWidget, parent: QWidget, *, across: bool = False) -> QScrollArea:
    """The widget in a frameless area that scrolls it when the window is short (and, across,
    narrow)."""
    scroll = QScrollArea(parent)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    if not across:
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(widget)
    return scroll


class SizingPage(QWidget):
    """Runs, facility and servers in; servers, racks, throughput and cost out."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.rows: list[CapacityRow] = []
        self.facility: Facility | None = None
        self._server_text: dict[tuple[str, str], str] = {}  # (device, key) -> typed text
        self._build()
        controller.runsListed.connect(self.picker.set_summaries)
        controller.compareRequested.connect(lambda ids: self.picker.set_checked(list(ids)))
        controller.capacityPlanned.connect(self._on_planned)
        controller.capacityFailed.connect(self._on_failed)
        theme.watcher().on_change(self._recolour)
        if controller.compare_selection:  # the runs last sent from the runs browser
            self.picker.set_checked(controller.compare_selection)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        inputs = QWidget(self)
        il = QVBoxLayout(inputs)
        il.setContentsMargins(0, 0, 6, 0)
        self.picker = RunPicker("Runs to plan with (finished runs)", inputs)
        self.picker.changed.connect(self._fill_servers)
        il.addWidget(self.picker, 1)

        il.addWidget(QLabel("<b>Facility</b>", inputs))
        form = QFormLayout()
        self.budget_edit = QLineEdit("1", inputs)
        self.budget_edit.setToolTip("What the facility may draw, IT and cooling together.")
        self.budget_unit = QComboBox(inputs)
        self.budget_unit.addItems(["kW", "MW"])
        self.budget_unit.setCurrentText("MW")
        budget = QHBoxLayout()
        budget.addWidget(self.budget_edit, 1)
        budget.addWidget(self.budget_unit)
        form.addRow("Power budget:", budget)
        self.pue_edit = QLineEdit("1", inputs)
        self.pue_edit.setToolTip("Facility power ÷ IT power, 1 to 5 (1 = no cooling overhead).")
        form.addRow("PUE:", self.pue_edit)
        self.rack_power_edit = QLineEdit(inputs)
        self.rack_power_edit.setPlaceholderText("no limit, e.g. 10")
        self.rack_power_edit.setToolTip("The power one rack may draw, in kW (or give a unit).")
        rack = QHBoxLayout()
        rack.addWidget(self.rack_power_edit, 1)
        rack.addWidget(QLabel("kW", inputs))
        form.addRow("Rack power:", rack)
        self.rack_slots_edit = QLineEdit(inputs)
        self.rack_slots_edit.setPlaceholderText("no limit, e.g. 42")
        self.rack_slots_edit.setToolTip("How many servers a rack holds physically.")
        form.addRow("Rack slots:", self.rack_slots_edit)
        self.years_edit = QLineEdit("3", inputs)
        self.years_edit.setToolTip("The period the energy and capital costs are counted over.")
        form.addRow("Years:", self.years_edit)
        il.addLayout(form)

        servers_intro = QLabel(
            "<b>Servers</b> of each device: leave a cell empty to take it from the runs and "
            "the cost profile; powers as 250W or 10kW.",
            inputs,
        )
        servers_intro.setWordWrap(True)
        il.addWidget(servers_intro)
        self.servers_table = QTableWidget(0, 1 + len(SERVER_COLUMNS), inputs)
        self.servers_table.setAccessibleName("Servers of each device")
        self.servers_table.setHorizontalHeaderLabels(["Device", *(c[1] for c in SERVER_COLUMNS)])
        for col, (_key, _header, tip) in enumerate(SERVER_COLUMNS, 1):
            header_item = self.servers_table.horizontalHeaderItem(col)
            if header_item is not None:
                header_item.setToolTip(tip)
        self.servers_table.verticalHeader().setVisible(False)
        header = self.servers_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.servers_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.servers_table.itemChanged.connect(self._on_server_edited)
        _fit_height(self.servers_table, min_rows=1)
        il.addWidget(self.servers_table)
        self.plan_button = QPushButton("Plan", inputs)
        self.plan_button.setDefault(True)
        self.plan_button.setToolTip("Plan with the ticked runs and these inputs")
        self.plan_button.clicked.connect(self.plan)
        il.addWidget(self.plan_button)

        results = QWidget(self)
        rl = QVBoxLayout(results)
        rl.setContentsMargins(6, 0, 0, 0)
        self.banner = Banner(results)
        rl.addWidget(self.banner)
        self.title = QLabel(
            "Tick the runs of each configuration, give the facility's power budget and press "
            "Plan: how many servers the budget holds, in how many racks, what they deliver "
            "together and what they cost. Every input is labelled: measured (from the runs), "
            "estimate (a power model, not a sensor) or input (yours, or a cost profile).",
            results,
        )
        self.title.setWordWrap(True)
        self.title.setObjectName("sizing-title")
        rl.addWidget(self.title)
        self.table = QTableWidget(0, 0, results)
        self.table.setAccessibleName("Capacity plan")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
        self.table.setVisible(False)
        for bar in (self.table.setHorizontalScrollBarPolicy, self.table.setVerticalScrollBarPolicy):
            bar(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # sized to its cells: the page scrolls
        rl.addWidget(self.table)
        self.notes = QLabel("", results)
        self.notes.setObjectName("sizing-notes")
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rl.addWidget(self.notes)
        rl.addStretch(1)

        scroll = _scrolling(inputs, self)  # a short window scrolls: nothing overlaps
        scroll.setMinimumWidth(340)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(scroll)
        splitter.addWidget(_scrolling(results, self, across=True))
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.controller.refresh_runs()

    def set_runs(self, run_ids: Sequence[str]) -> None:
        """Tick these runs (e.g. those selected in the runs browser)."""
        self.picker.set_checked(run_ids)

    # ------------------------------------------------------------------ servers table
    def _devices(self) -> list[str]:
        devices = []
        for rid in self.picker.checked_ids():
            s = self.picker.summary(rid)
            if s is not None and s.device not in devices:
                devices.append(s.device)
        return devices

    def _fill_servers(self) -> None:
        table = self.servers_table
        table.blockSignals(True)
        devices = self._devices()
        table.setRowCount(len(devices))
        for row, device in enumerate(devices):
            name = QTableWidgetItem(device)
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            table.setItem(row, 0, name)
            for col, (key, _header, tip) in enumerate(SERVER_COLUMNS, 1):
                cell = QTableWidgetItem(self._server_text.get((device, key), ""))
                cell.setToolTip(tip)
                table.setItem(row, col, cell)
        table.blockSignals(False)
        _fit_height(table, min_rows=1)

    def _on_server_edited(self, item: QTableWidgetItem) -> None:
        device_item = self.servers_table.item(item.row(), 0)
        if device_item is not None and item.column() > 0:
            key = SERVER_COLUMNS[item.column() - 1][0]
            self._server_text[(device_item.text(), key)] = item.text().strip()

    def set_server(self, device: str, **figures: str) -> None:
        """State figures of a device's servers, as typed: devices="8", power="10kW" …"""
        for key, text in figures.items():
            self._server_text[(device, key)] = text
        self._fill_servers()

    # ------------------------------------------------------------------ planning
    def facility_from_form(self) -> Facility:
        """The facility the fields describe (BadInputError with a message when they cannot)."""
        slots = self.rack_slots_edit.text().strip()
        rack = self.rack_power_edit.text().strip()
        if slots and not slots.isdigit():
            raise BadInputError(f"Rack slots: {slots!r} is not a whole number.", field="rack_slots")
        return Facility(
            budget_w=_power(self.budget_edit.text(), self.budget_unit.currentText(), "budget"),
            pue=_number(self.pue_edit.text(), "PUE", "pue"),
            rack_power_w=_power(rack, "kW", "rack_power") if rack else None,
            rack_slots=int(slots) if slots else None,
            years=_number(self.years_edit.text(), "Years", "years"),
        )

    def servers_from_form(self) -> list[ServerInput]:
        """What the servers table states, per device (devices with an empty row left out)."""
        given = []
        for device in self._devices():
            parts = [
                f"{key}={text}"
                for key, _h, _t in SERVER_COLUMNS
                if (text := self._server_text.get((device, key), ""))
            ]
            if parts:
                given.append(parse_server(device, ",".join(parts)))
        return given

    def plan(self) -> None:
        """Read the inputs and ask the controller for the plan; a bad input is said in the
        banner and nothing else changes."""
        ids = self.picker.checked_ids()
        try:
            if not ids:
                raise BadInputError("Tick the runs to plan with (one or more a configuration).")
            facility = self.facility_from_form()
            servers = self.servers_from_form()
        except WattbenchError as exc:
            self.banner.show_message(str(exc), Level.ERROR)
            return
        self.banner.show_message("Planning…", Level.INFO)
        self.plan_button.setEnabled(False)
        self.controller.plan_capacity(ids, facility, servers)

    def _on_failed(self, message: str) -> None:
        self.plan_button.setEnabled(True)
        self.banner.show_message(message, Level.ERROR)

    def _on_planned(self, facility: Facility, rows: list[CapacityRow]) -> None:
        self.plan_button.setEnabled(True)
        self.banner.clear()
        self.facility, self.rows = facility, list(rows)
        headers, table = plan_table(self.rows, facility)
        self.title.setText(f"<b>{html.escape(plan_title(facility))}</b>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        t = self.table
        t.clear()
        t.setColumnCount(len(headers) - 1)
        t.setRowCount(len(table))
        for col, label in enumerate(headers[1:]):
            head, _sep, rest = label.partition(" · ")
            item = QTableWidgetItem(f"{head}\n{rest}" if rest else head)
            item.setToolTip(label)
            t.setHorizontalHeaderItem(col, item)
        t.setVerticalHeaderLabels([line[0] for line in table])
        for row, line in enumerate(table):
            for col, text in enumerate(line[1:]):
                t.setItem(row, col, QTableWidgetItem(text))
        self._recolour()
        t.setVisible(True)
        t.resizeColumnsToContents()
        t.resizeRowsToContents()
        _fit_height(t)
        t.setFixedWidth(
            t.verticalHeader().width() + t.horizontalHeader().length() + 2 * t.frameWidth() + 2
        )
        notes = plan_notes(self.rows)
        self.notes.setText(
            "<ul style='margin:0; -qt-list-indent:1'>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
            + "</ul>"
            if notes
            else ""
        )

    def _recolour(self) -> None:
        """Results in bold; an estimate, and a figure resting on one, in the caveat colour."""
        t = self.table
        bold = QFont(t.font())
        bold.setBold(True)
        for row in range(t.rowCount()):
            head = t.verticalHeaderItem(row)
            key = head.text() if head is not None else ""
            for col in range(t.columnCount()):
                item = t.item(row, col)
                if item is None:
                    continue
                if key in RESULT_ROWS:
                    item.setFont(bold)
                estimate = "(estimate)" in item.text()
                item.setForeground(QBrush(QColor(theme.warning_text())) if estimate else QBrush())
                if estimate:
                    item.setToolTip("An estimate (a power model), not a measurement.")

    def cell(self, row_name: str, column: int = 0) -> str:
        """The text of a figure's row in a configuration's column ('' when there is none)."""
        for row in range(self.table.rowCount()):
            head = self.table.verticalHeaderItem(row)
            if head is not None and head.text() == row_name:
                item = self.table.item(row, column)
                return item.text() if item is not None else ""
        return ""
