"""The Fleet page: connect to a fleet's scheduler, see its hosts, run the New run plan on the
hosts checked, side by side, and follow every host's runs.

A host is a ``wattbench agent`` joined to the scheduler (``wattbench scheduler``); the page
lists what each advertised (its CPU, its devices and the runtimes that use them, its power
sources) and whether it is running something, every few seconds while the page is shown. The
runs come back to this window's run store, each labelled with its host. Everything is asked
of ``controller.fleet`` (gui/fleet_controller.py); errors are one line above the tables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.fleet import FleetHost
from wattbench.domain.spec import LABEL_SEPARATOR
from wattbench.gui import icons
from wattbench.gui.controller import Controller, ItemState, QueueItem
from wattbench.gui.pages.new_run import NewRunPage, Plan
from wattbench.gui.pages.queue import progress_text, state_colour
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.fleet_hosts import HostsTable, style_table
from wattbench.service.fleet_link import SCHEDULER_ENV

log = logging.getLogger(__name__)

REFRESH_MS = 3000  # the hosts are listed again this often while the page is shown
RUN_COLUMNS = ("Host", "Run", "Progress", "State", "Reason")
COL_RUN_HOST, COL_RUN, COL_PROGRESS, COL_STATE, COL_REASON = range(len(RUN_COLUMNS))


def run_label(item: QueueItem) -> str:
    """The run's label without its host (shown in a column of its own)."""
    host = item.spec.host
    return item.label.removeprefix(f"@{host}{LABEL_SEPARATOR}") if host else item.label


def run_reason(item: QueueItem) -> str:
    if item.state is ItemState.DONE:
        return "stored" if item.stored else f"not stored: {item.store_error or 'no store'}"
    return item.reason or ""


class FleetPage(QWidget):
    """Scheduler address and TLS files, the hosts (checkable), the fleet's runs."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.fleet = controller.fleet
        self._rows: dict[int, int] = {}  # fleet queue key -> row of the runs table
        self._build()
        self._connect()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.fleet.refresh_hosts)
        self.set_hosts(self.fleet.hosts)
        for item in self.fleet.items.values():
            self.update_item(item)
        self._update_buttons()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.address_edit = QLineEdit(os.environ.get(SCHEDULER_ENV, ""), self)  # as for the CLI
        self.address_edit.setPlaceholderText("tcp://HOST:8786 (or tls://HOST:8786)")
        self.address_edit.setToolTip(
            "The address `wattbench scheduler` printed; $WATTBENCH_SCHEDULER fills it in"
        )
        self.connect_button = QPushButton("Connect", self)
        self.disconnect_button = QPushButton("Disconnect", self)
        self.tls_button = QToolButton(self)
        self.tls_button.setText("TLS files (optional)")
        self.tls_button.setCheckable(True)
        self.tls_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.tls_button.setArrowType(Qt.ArrowType.RightArrow)
        top = QHBoxLayout()
        top.addWidget(QLabel("Scheduler:", self))
        top.addWidget(self.address_edit, 1)
        top.addWidget(self.connect_button)
        top.addWidget(self.disconnect_button)
        top.addWidget(self.tls_button)

        self.tls_box = QWidget(self)
        tls_form = QFormLayout(self.tls_box)
        tls_form.setContentsMargins(0, 0, 0, 0)
        self.tls_edits: dict[str, QLineEdit] = {}
        for key, title in (("ca", "CA certificate"), ("cert", "Certificate"), ("key", "Key")):
            edit = QLineEdit(self.tls_box)
            edit.setPlaceholderText("a PEM file")
            browse = QPushButton("Browse…", self.tls_box)
            browse.clicked.connect(lambda _c=False, e=edit, t=title: self._browse(e, t))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            tls_form.addRow(f"{title}:", row)
            self.tls_edits[key] = edit
        self.tls_box.setVisible(False)

        self.status_label = QLabel("Not connected.", self)
        self.banner = Banner(self)

        self.hosts_table = HostsTable(self)
        self.refresh_button = QPushButton(icons.icon("icon-refresh"), "Refresh", self)
        self.run_button = QPushButton(
            icons.icon("icon-new-run"), "Run the New run plan on the checked hosts", self
        )
        self.cancel_all_button = QPushButton(icons.icon("icon-cancel"), "Cancel all", self)
        self.runs_label = QLabel("", self)
        self.runs_label.setWordWrap(True)
        self.runs_table = QTableWidget(0, len(RUN_COLUMNS), self)
        self.runs_table.setObjectName("fleet-runs")
        style_table(self.runs_table, RUN_COLUMNS, (COL_RUN, COL_REASON))

        hosts_box = QWidget(self)
        hosts_layout = QVBoxLayout(hosts_box)
        hosts_layout.setContentsMargins(0, 0, 0, 0)
        hosts_bar = QHBoxLayout()
        hosts_bar.addWidget(QLabel("<b>Hosts</b>", hosts_box))
        hosts_bar.addStretch(1)
        hosts_bar.addWidget(self.refresh_button)
        hosts_layout.addLayout(hosts_bar)
        hosts_layout.addWidget(self.hosts_table, 1)
        runs_box = QWidget(self)
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        runs_bar = QHBoxLayout()
        runs_bar.addWidget(self.run_button)
        runs_bar.addWidget(self.cancel_all_button)
        runs_bar.addWidget(self.runs_label, 1)
        runs_layout.addLayout(runs_bar)
        runs_layout.addWidget(self.runs_table, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(hosts_box)
        splitter.addWidget(runs_box)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tls_box)
        layout.addWidget(self.status_label)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)

    def _connect(self) -> None:
        f = self.fleet
        self.connect_button.clicked.connect(self.connect_fleet)
        self.address_edit.returnPressed.connect(self.connect_fleet)
        self.disconnect_button.clicked.connect(f.disconnect_fleet)
        self.tls_button.toggled.connect(self._show_tls)
        self.refresh_button.clicked.connect(f.refresh_hosts)
        self.hosts_table.checkedChanged.connect(self._update_buttons)
        self.run_button.clicked.connect(self.run_plan)
        self.cancel_all_button.clicked.connect(f.cancel_all)
        f.connected.connect(self._on_connected)
        f.connectFailed.connect(self._on_connect_failed)
        f.disconnected.connect(self._on_disconnected)
        f.hostsListed.connect(self.set_hosts)
        f.hostsFailed.connect(self.show_error)
        f.runFailed.connect(self.show_error)
        f.fleetItemChanged.connect(self.update_item)
        f.fleetIdle.connect(self._on_idle)

    def _show_tls(self, shown: bool) -> None:
        self.tls_box.setVisible(shown)
        self.tls_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _browse(self, edit: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the {title.lower()}", edit.text())
        if path:
            edit.setText(path)

    # ------------------------------------------------------------------ public
    def connect_fleet(self) -> None:
        """Connect to the address in the field, with the TLS files given."""
        self.banner.clear()
        self.status_label.setText(f"Connecting to {self.address_edit.text().strip() or '…'}")
        self.connect_button.setEnabled(False)
        tls = {k: e.text().strip() for k, e in self.tls_edits.items()}
        self.fleet.connect_to(self.address_edit.text().strip(), **tls)

    def checked_hosts(self) -> list[str]:
        """The names of the hosts listed and checked, in the table's order."""
        return self.hosts_table.checked()

    def run_plan(self) -> None:
        """Give the New run page's plan to the checked hosts (one line says why not)."""
        plan = self._new_run_plan()
        if plan is None:
            self.show_error("The New run page is not available.")
            return
        if plan.runs is None or plan.errors:
            first = plan.errors[0] if plan.errors else "it has no runs"
            self.show_error(f"The New run plan cannot run (see the New run page): {first}")
            return
        if not plan.specs:
            self.show_error("The New run plan has no runs: set one up on the New run page.")
            return
        hosts = self.checked_hosts()
        if not hosts:
            self.show_error("Check at least one host to run on.")
            return
        self.banner.clear()
        if self.fleet.run(plan.specs, hosts):
            self.runs_label.setText(
                f"Running {len(plan.specs)} run(s) on each of {', '.join(hosts)}, side by side, "
                "round by round; the results go to this window's run database."
            )
        self._update_buttons()

    def show_error(self, message: str) -> None:
        """One line, in the error colour, above the tables."""
        self.banner.show_message(" ".join(message.split()), Level.ERROR)

    def run_text(self, key: int, column: int) -> str:
        """The text of one cell of a run's row ("" for a run not shown)."""
        row = self._rows.get(key)
        cell = self.runs_table.item(row, column) if row is not None else None
        return cell.text() if cell is not None else ""

    # ------------------------------------------------------------------ the hosts
    def set_hosts(self, hosts: Sequence[FleetHost]) -> None:
        self.hosts_table.set_hosts(hosts)
        if self.fleet.address:
            self.status_label.setText(
                f"Connected to {self.fleet.address}: {len(hosts)} host(s)"
                + ("" if hosts else " — start `wattbench agent` on each host")
                + "."
            )
        self._update_buttons()

    def _on_connected(self, address: str) -> None:
        self.status_label.setText(f"Connected to {address}; listing its hosts…")
        self.banner.clear()
        self._update_buttons()
        if self.isVisible():
            self.timer.start()

    def _on_connect_failed(self, message: str) -> None:
        self.status_label.setText("Not connected.")
        self.show_error(message)
        self._update_buttons()

    def _on_disconnected(self) -> None:
        self.timer.stop()
        self.set_hosts([])
        self.status_label.setText("Not connected.")

    # ------------------------------------------------------------------ the runs
    def update_item(self, item: QueueItem) -> None:
        row = self._rows.get(item.key)
        if row is None:
            row = self._rows[item.key] = self.runs_table.rowCount()
            self.runs_table.insertRow(row)
            for col in range(len(RUN_COLUMNS)):
                self.runs_table.setItem(row, col, QTableWidgetItem())
        cells = {
            COL_RUN_HOST: item.spec.host or "",
            COL_RUN: run_label(item),
            COL_PROGRESS: progress_text(item),
            COL_STATE: str(item.state),
            COL_REASON: run_reason(item),
        }
        colour = state_colour(item)
        for col, text in cells.items():
            cell = self.runs_table.item(row, col)
            if cell is None:
                continue
            cell.setText(text)
            cell.setToolTip(text)
            if col in (COL_STATE, COL_REASON):
                cell.setForeground(colour)
        self._update_buttons()

    def _on_idle(self) -> None:
        done = sum(1 for it in self.fleet.items.values() if it.state is ItemState.DONE)
        self.runs_label.setText(
            f"The fleet's runs are through: {done} of {len(self.fleet.items)} done."
        )
        self._update_buttons()

    def _update_buttons(self) -> None:
        connected = bool(self.fleet.address)
        self.connect_button.setEnabled(not self.fleet.running)
        self.disconnect_button.setEnabled(connected and not self.fleet.running)
        self.refresh_button.setEnabled(connected)
        self.run_button.setEnabled(connected and not self.fleet.running)
        self.run_button.setToolTip(
            "Queue the runs set up on the New run page on every host checked"
            if connected
            else "Connect to a scheduler first"
        )
        self.cancel_all_button.setEnabled(self.fleet.running)

    # ------------------------------------------------------------------ the page shown or not
    def _new_run_plan(self) -> Plan | None:
        window = self.window()
        page_of = getattr(window, "page", None)
        page = page_of("new-run") if callable(page_of) else None
        return page.plan() if isinstance(page, NewRunPage) else None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.fleet.address:
            self.fleet.refresh_hosts()
            self.timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.timer.stop()
