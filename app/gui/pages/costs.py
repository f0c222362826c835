"""Cost profiles: what each device costs to own or rent, feeding the $ and CO2 figures.

Profiles live in the runs' database (through the controller). An empty field means "not set"
and is never taken as 0; the profile's own checks say in place what is implausible.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import WattbenchError
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level

log = logging.getLogger(__name__)

# (field, label, tooltip, default text)
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("purchase_price_usd", "Purchase price ($)", "What the device cost (with its share of the "
     "host, if you want that counted). Needs an amortization period.", ""),
    ("amortization_years", "Amortization (years)", "Over how many years the purchase is "
     "written off.", ""),
    ("utilization", "Utilization (0–1]", "Fraction of its life the device does useful work; "
     "capital cost is spread over these hours only.", "1"),
    ("electricity_usd_per_kwh", "Electricity ($/kWh)", "Your tariff; energy cost = measured "
     "energy × tariff × PUE.", ""),
    ("pue", "PUE (≥ 1)", "Facility power usage effectiveness: 1.0 at a desk, 1.1–1.6 in a "
     "data centre.", "1"),
    ("carbon_g_per_kwh", "Carbon intensity (gCO2/kWh)", "Optional: grid carbon intensity for "
     "the CO2 figures.", ""),
    ("cloud_usd_per_hour", "Cloud price ($/hour)", "Optional: a rented device's hourly price; "
     "replaces purchase and electricity.", ""),
)  # fmt: skip


def _text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


class CostsPage(QWidget):
    """Edit, save and delete per-device cost profiles."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.profiles: list[CostProfile] = []
        self._devices: set[str] = {"cpu"}
        self._build()
        controller.costProfilesReady.connect(self._on_profiles)
        controller.runsListed.connect(self._on_runs_listed)
        controller.storeReady.connect(lambda _d: controller.refresh_cost_profiles())
        controller.failed.connect(self._on_failed)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A cost profile says what a device costs to own (purchase price over its "
            "amortization period, plus electricity × PUE) or to rent (cloud $/hour). The "
            "compare view and reports turn it into $ and gCO2 per million inferences. Leave "
            "a field empty when it does not apply: it is never counted as 0.",
            self,
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.banner = Banner(self)
        layout.addWidget(self.banner)

        form = QFormLayout()
        self.device_combo = QComboBox(self)
        self.device_combo.setEditable(True)
        self.device_combo.setAccessibleName("Device")
        self.device_combo.setToolTip(
            "The compute device this profile applies to (as runs name it: cpu, cuda:0, …)."
        )
        self.device_combo.currentTextChanged.connect(self._load_into_form)
        form.addRow("Device:", self.device_combo)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("optional, e.g. 'on-prem' or 'cloud'")
        form.addRow("Profile name:", self.name_edit)
        self.edits: dict[str, QLineEdit] = {}
        for name, label, tip, default in FIELDS:
            edit = QLineEdit(self)
            validator = QDoubleValidator(self)
            validator.setNotation(QDoubleValidator.Notation.StandardNotation)
            edit.setValidator(validator)
            edit.setPlaceholderText("not set")
            edit.setToolTip(tip)
            edit.setText(default)
            edit.setAccessibleName(label)
            self.edits[name] = edit
            form.addRow(label + ":", edit)
        form_box = QWidget(self)
        form_box.setLayout(form)
        form_box.setMaximumWidth(640)
        layout.addWidget(form_box)
        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save profile", self)
        self.save_button.clicked.connect(self.save)
        self.delete_button = QPushButton("Delete profile", self)
        self.delete_button.clicked.connect(self.delete_selected)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.table = QTableWidget(0, 2 + len(FIELDS), self)
        self.table.setHorizontalHeaderLabels(["Device", "Name"] + [f[1] for f in FIELDS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        layout.addWidget(QLabel("<b>Saved profiles</b>", self))
        layout.addWidget(self.table, 1)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.controller.refresh_cost_profiles()

    # ------------------------------------------------------------------ data in
    def _on_profiles(self, profiles: list[CostProfile]) -> None:
        self.profiles = list(profiles)
        self.table.setRowCount(len(self.profiles))
        for row, p in enumerate(self.profiles):
            values = [p.device, p.name] + [_text(getattr(p, f[0])) for f in FIELDS]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text or "—")
                item.setData(Qt.ItemDataRole.UserRole, (p.device, p.name))
                self.table.setItem(row, col, item)
        self._devices |= {p.device for p in self.profiles}
        self._fill_devices()
        if self._form_untouched():  # show the saved profile, not empty fields a save would clear
            self._load_into_form(self.device_combo.currentText())

    def _form_untouched(self) -> bool:
        """True when nothing was typed in the form (every field still at its default)."""
        return not self.name_edit.text() and all(
            self.edits[name].text() == default for name, _label, _tip, default in FIELDS
        )

    def _on_runs_listed(self, summaries: list[Any]) -> None:
        self._devices |= {s.device for s in summaries}
        self._fill_devices()

    def _fill_devices(self) -> None:
        current = self.device_combo.currentText()
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItems(sorted(self._devices))
        self.device_combo.setCurrentText(current or "cpu")
        self.device_combo.blockSignals(False)

    def _find(self, device: str, name: str = "") -> CostProfile | None:
        return next((p for p in self.profiles if p.device == device and p.name == name), None)

    def _load_into_form(self, device: str) -> None:
        profile = self._find(device.strip(), self.name_edit.text().strip())
        if profile is not None:
            self.show_profile(profile)

    def show_profile(self, profile: CostProfile) -> None:
        self.device_combo.blockSignals(True)
        self.device_combo.setCurrentText(profile.device)
        self.device_combo.blockSignals(False)
        self.name_edit.setText(profile.name)
        for name, _label, _tip, _default in FIELDS:
            self.edits[name].setText(_text(getattr(profile, name)))

    def _on_table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            cell = self.table.item(rows[0].row(), 0)
            if cell is None:
                return
            profile = self._find(*cell.data(Qt.ItemDataRole.UserRole))
            if profile is not None:
                self.show_profile(profile)

    # ------------------------------------------------------------------ data out
    def profile_from_form(self) -> CostProfile:
        """The profile the form describes (BadInputError with a message when implausible)."""
        values: dict[str, Any] = {}
        for name, label, _tip, _default in FIELDS:
            text = self.edits[name].text().strip().replace(",", ".")
            if not text:
                continue
            try:
                values[name] = float(text)
            except ValueError:
                from wattbench.domain.errors import BadInputError

                raise BadInputError(f"{label}: {text!r} is not a number.") from None
        return CostProfile(
            device=self.device_combo.currentText().strip(),
            name=self.name_edit.text().strip(),
            **values,
        )

    def save(self) -> None:
        try:
            profile = self.profile_from_form()
        except WattbenchError as exc:
            self.banner.show_message(str(exc), Level.ERROR)
            return
        self.controller.save_cost_profile(profile)
        label = profile.device + (f" ({profile.name})" if profile.name else "")
        self.banner.show_message(f"Saved the cost profile for {label}.", Level.INFO)

    def delete_selected(self) -> None:
        device = self.device_combo.currentText().strip()
        name = self.name_edit.text().strip()
        if self._find(device, name) is None:
            self.banner.show_message(
                f"There is no saved profile for {device or '?'}"
                f"{f' named {name!r}' if name else ''}.",
                Level.INFO,
            )
            return
        self.controller.delete_cost_profile(device, name)
        self.banner.show_message(f"Deleted the cost profile for {device}.", Level.INFO)

    def _on_failed(self, what: str, message: str) -> None:
        if "cost profile" in what:
            self.banner.show_message(f"Could not {what}: {message}", Level.ERROR)
