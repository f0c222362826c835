"""The hosts of a fleet as a table, one checkbox a host: its name, whether it runs something,
its CPU, the devices a runtime can use (with those runtimes) and the sources that measure its
power ("n/a (estimate only)" where none does). Checks are kept by name across listings."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)
from wattbench.domain.fleet import FleetHost, HostInventory

NO_POWER = "n/a (estimate only)"
HOST_COLUMNS = ("Host", "State", "CPU", "Devices (runtimes)", "Power sources")
COL_HOST, COL_HOST_STATE, COL_CPU, COL_DEVICES, COL_POWER = range(len(HOST_COLUMNS))


def cpu_text(host: FleetHost) -> str:
    """ "AMD EPYC (x86_64, 64 CPUs)", or why the host advertised nothing readable."""
    inv = host.inventory
    if inv is None:
        return f"inventory n/a: {host.problem or 'none advertised'}"
    text = inv.cpu or "n/a"
    extras = [x for x in (inv.architecture, inv.logical_cpus and f"{inv.logical_cpus} CPUs") if x]
    return f"{text} ({', '.join(map(str, extras))})" if extras else text


def devices_text(inv: HostInventory | None, *, all_devices: bool = False) -> str:
    """Each device a runtime can use, with those runtimes: "cpu (fake, torch); cuda:0
    (torch)" (``all_devices``: the others too, as "mps (no runtime)")."""
    if inv is None:
        return ""
    parts = [
        f"{d.id} ({', '.join(d.runtimes) if d.runtimes else 'no runtime'})"
        for d in inv.devices
        if d.runtimes or all_devices
    ]
    return "; ".join(parts) or "no device a runtime can use"


def power_text(inv: HostInventory | None) -> str:
    """The sources that measure this host's power, or that none does."""
    if inv is None:
        return ""
    measured = [p.name for p in inv.power if p.ok and not p.estimate]
    return ", ".join(measured) if measured else NO_POWER


def power_tip(inv: HostInventory | None) -> str:
    """Every power source of the host, read or not and why, then the inventory's notes."""
    if inv is None:
        return ""
    lines = []
    for p in inv.power:
        state = "estimate" if p.estimate and p.ok else "reads" if p.ok else "not read"
        lines.append(f"{p.name} ({p.device}): {state}" + (f" — {p.why}" if p.why else ""))
    return "\n".join([*lines, *inv.notes])


def style_table(table: QTableWidget, columns: Sequence[str], stretch: Sequence[int]) -> None:
    """A read-only table of whole rows, its columns fitted to their text but ``stretch``."""
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    for col in stretch:
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)


class HostsTable(QTableWidget):
    """See the module docstring."""

    checkedChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HOST_COLUMNS), parent)
        self.setObjectName("fleet-hosts")
        style_table(self, HOST_COLUMNS, (COL_DEVICES, COL_POWER))
        self._checked: set[str] = set()  # names checked, listed now or not
        self.itemChanged.connect(self._on_item)

    def names(self) -> list[str]:
        """The hosts listed, in the table's order (by name)."""
        cells = (self.item(row, COL_HOST) for row in range(self.rowCount()))
        return [str(c.data(Qt.ItemDataRole.UserRole)) for c in cells if c is not None]

    def checked(self) -> list[str]:
        """The hosts listed and checked."""
        return [n for n in self.names() if n in self._checked]

    def set_checked(self, name: str, checked: bool = True) -> None:
        (self._checked.add if checked else self._checked.discard)(name)
        if name in self.names():
            cell = self.item(self.names().index(name), COL_HOST)
            if cell is not None:
                cell.setCheckState(self._state(name))

    def cell_text(self, row: int, column: int) -> str:
        cell = self.item(row, column)
        return cell.text() if cell is not None else ""

    def set_hosts(self, hosts: Sequence[FleetHost]) -> None:
        """Show these hosts (rows updated in place; checks kept by name)."""
        self.blockSignals(True)
        try:
            self.setRowCount(len(hosts))
            for row, host in enumerate(hosts):
                self._fill(row, host)
        finally:
            self.blockSignals(False)

    def _fill(self, row: int, host: FleetHost) -> None:
        inv = host.inventory
        version = f", wattbench {inv.wattbench_version}" if inv else ""
        cells = (
            (host.name, f"{host.name} at {host.address}{version}"),
            ("running" if host.running else "idle", ""),
            (cpu_text(host), host.summary),
            (devices_text(inv), devices_text(inv, all_devices=True).replace("; ", "\n")),
            (power_text(inv), power_tip(inv)),
        )
        for col, (text, tip) in enumerate(cells):
            cell = self.item(row, col)
            if cell is None:
                cell = QTableWidgetItem()
                self.setItem(row, col, cell)
            cell.setText(text)
            cell.setToolTip(tip or text)
            if col == COL_HOST:
                cell.setData(Qt.ItemDataRole.UserRole, host.name)
                cell.setFlags(cell.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                cell.setCheckState(self._state(host.name))

    def _state(self, name: str) -> Qt.CheckState:
        return Qt.CheckState.Checked if name in self._checked else Qt.CheckState.Unchecked

    def _on_item(self, cell: QTableWidgetItem) -> None:
        if cell.column() != COL_HOST:
            return
        name = str(cell.data(Qt.ItemDataRole.UserRole))
        before = name in self._checked
        if cell.checkState() == Qt.CheckState.Checked:
            self._checked.add(name)
        else:
            self._checked.discard(name)
        if before != (name in self._checked):
            self.checkedChanged.emit()
