"""A checkable list of compute devices, each with its power sources and their status."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QLabel, QVBoxLayout, QWidget
from wattbench.gui import theme

if TYPE_CHECKING:  # values the controller hands over; their modules load the plugins
    from wattbench.energy.doctor import Diagnosis
    from wattbench.service.inventory import DeviceChoice

log = logging.getLogger(__name__)


def _status_colour(status: str) -> str:
    if status == "ok":
        return theme.ok_colour()
    if status == "warning":
        return theme.warning_text()
    return theme.error_text()


def power_html(power: Iterable[Diagnosis]) -> str:
    """One line per power source: a coloured dot, its name, its status and why."""
    lines = []
    for p in power:
        colour = _status_colour(p.status)
        detail = f" — {html.escape(p.detail)}" if p.detail else ""
        lines.append(
            f"<span style='color:{colour}'>●</span> {html.escape(p.title)}: "
            f"<b>{html.escape(p.status)}</b>{detail}"
        )
    if not lines:
        return "<i>no power source found: energy will be n/a (see Sensors)</i>"
    return "<br>".join(lines)


class DeviceRow(QFrame):
    toggled = Signal(str, bool)

    def __init__(self, device: DeviceChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.check = QCheckBox(f"{device.id} — {device.name}", self)
        self.check.setObjectName(f"device-{device.id}")
        runtimes = []
        for name, info in sorted(device.runtimes.items()):
            runtimes.append(name if info.usable else f"{name} (not usable: {info.reason})")
        self.runtimes_label = QLabel(
            "Runtimes: " + html.escape(", ".join(runtimes) or "none"), self
        )
        self.runtimes_label.setWordWrap(True)
        self.power_label = QLabel(power_html(device.power), self)
        self.power_label.setWordWrap(True)
        self.power_label.setTextFormat(Qt.TextFormat.RichText)
        for label in (self.runtimes_label, self.power_label):
            label.setContentsMargins(24, 0, 0, 0)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.check)
        layout.addWidget(self.runtimes_label)
        layout.addWidget(self.power_label)
        self.check.toggled.connect(lambda on: self.toggled.emit(device.id, on))
        theme.watcher().on_change(self._recolour)
        if not any(info.usable for info in device.runtimes.values()):
            self.check.setEnabled(False)
            self.check.setToolTip("No runtime can use this device.")

    def _recolour(self) -> None:
        """The power sources' status dots in the palette now in use."""
        self.power_label.setText(power_html(self.device.power))


class DeviceList(QWidget):
    """Devices with check boxes; `selectionChanged` when the checked set changes."""

    selectionChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self._rows: dict[str, DeviceRow] = {}
        self._placeholder = QLabel("Looking for devices…", self)
        self._layout.addWidget(self._placeholder)

    def set_placeholder(self, text: str) -> None:
        self._placeholder.setText(text)
        self._placeholder.setVisible(bool(text))

    def set_devices(self, devices: Iterable[DeviceChoice], checked: Iterable[str]) -> None:
        wanted = set(checked)
        for row in self._rows.values():
            row.setParent(None)
            row.deleteLater()
        self._rows = {}
        for device in devices:
            row = DeviceRow(device, self)
            row.check.setChecked(device.id in wanted and row.check.isEnabled())
            row.toggled.connect(lambda *_: self.selectionChanged.emit())
            self._layout.addWidget(row)
            self._rows[device.id] = row
        self.set_placeholder("" if self._rows else "No device found.")
        self.selectionChanged.emit()

    def devices(self) -> list[DeviceChoice]:
        return [row.device for row in self._rows.values()]

    def device(self, device_id: str) -> DeviceChoice | None:
        row = self._rows.get(device_id)
        return row.device if row is not None else None

    def checked(self) -> list[str]:
        return [d for d, row in self._rows.items() if row.check.isChecked()]

    def set_checked(self, device_id: str, on: bool = True) -> None:
        row = self._rows.get(device_id)
        if row is not None and row.check.isEnabled():
            row.check.setChecked(on)
