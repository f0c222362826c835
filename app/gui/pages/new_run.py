"""The New run page: pick a model and devices, set how to run, and queue the runs.

Every choice is checked as it changes; what cannot work is explained in the banner above the
Run button, which stays disabled (with the reason as its tooltip) until something can run.
The form becomes a service ``RunRequest`` and the service plans it, exactly as it plans the
CLI's ``wattbench run``; its full checks run once more off the GUI thread when Run is pressed
(the controller's launch), and nothing is queued unless every run passes them.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import PRECISIONS, PRESETS, Scenario
from wattbench.gui import icons
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.device_list import DeviceList
from wattbench.service.inventory import DeviceInventory
from wattbench.service.plan import (
    RunPlan,
    RunRequest,
    entry_problems,
    parse_dims,
    parse_input_shapes,
    parse_ints,
    parse_threads,
    plan_runs,
)

log = logging.getLogger(__name__)

CATALOG_DELAY_MS = 100
MODEL_FILE_FILTER = "Models (*.onnx *.pt *.pth *.ts *.pt2);;ONNX (*.onnx);;All files (*)"


@dataclass(frozen=True)
class Plan:
    """What the page would queue now, and why not everything can run."""

    runs: RunPlan | None  # None while anything in errors stands
    errors: tuple[str, ...] = ()  # nothing can be queued while any is present
    skipped: tuple[str, ...] = ()  # combinations left out, each with its reason

    @property
    def specs(self) -> tuple[Any, ...]:
        return self.runs.specs if self.runs is not None else ()


class NewRunPage(QWidget):
    """Model, devices and options; Run queues the sweep they describe."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._settings = AppSettings()
        self._models: dict[str, Any] = {}  # ref -> ModelEntry
        self._inventory: DeviceInventory | None = None
        self.catalog_loaded = False
        self.devices_loaded = False
        self._checking_file: str | None = None
        self._request: int | None = None
        self._catalog_error = ""
        self._banner_from_plan = False  # the banner explains the plan (vs. a one-off notice)
        self.run_reason = ""
        self._build()
        self._restore()
        self._connect()
        self.update_plan()
        # After the window is painted: listing models and devices imports torch.
        QTimer.singleShot(CATALOG_DELAY_MS, self.refresh)

    def refresh(self) -> None:
        """Read the model catalog and the devices again (off the GUI thread)."""
        self.controller.refresh_catalog()
        self.controller.refresh_devices()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("model")
        self.model_combo.setMinimumContentsLength(30)
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model_combo.setPlaceholderText("Loading the model catalog…")
        self.open_button = QPushButton(icons.icon("icon-open"), "Open file…", self)
        self.open_button.setToolTip(
            "Benchmark an ONNX or TorchScript file (checked before anything is queued)"
        )
        self.model_info = QLabel(self)
        self.model_info.setWordWrap(True)
        self.model_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dims_edit = QLineEdit(self)
        self.dims_edit.setPlaceholderText("e.g. seq_len=128 (dynamic dimensions)")
        self.shapes_edit = QLineEdit(self)
        self.shapes_edit.setPlaceholderText("e.g. x=1x3x224x224:float32 (TorchScript files)")
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.open_button)
        model_form = QFormLayout()
        model_form.addRow("Model", model_row)
        model_form.addRow("", self.model_info)
        model_form.addRow("Dimensions", self.dims_edit)
        model_form.addRow("Input shapes", self.shapes_edit)
        model_box = QGroupBox("Model", self)
        model_box.setLayout(model_form)

        self.device_list = DeviceList(self)
        device_box = QGroupBox("Devices and their power sources", self)
        QVBoxLayout(device_box).addWidget(self.device_list)

        # runtime plugins are known once the devices are listed (see _set_runtimes)
        self.runtime_checks: dict[str, QCheckBox] = {}
        self.runtime_row = QWidget(self)
        self.runtime_layout = QHBoxLayout(self.runtime_row)
        self.runtime_layout.setContentsMargins(0, 0, 0, 0)
        self.runtime_layout.addWidget(QLabel("Looking for runtimes…", self.runtime_row))
        self.runtime_layout.addStretch(1)
        self.precision_checks = {name: QCheckBox(name, self) for name in PRECISIONS}
        for name, check in self.precision_checks.items():
            check.setObjectName(f"check-{name}")
        self.batch_edit = QLineEdit("1", self)
        self.batch_edit.setPlaceholderText("e.g. 1, 8, 32")
        self.threads_edit = QLineEdit("default", self)
        self.threads_edit.setPlaceholderText("default, or e.g. 1, 4")
        self.scenario_combo = QComboBox(self)
        for scenario, text in (
            (Scenario.SINGLE_STREAM, "Single stream (latency)"),
            (Scenario.OFFLINE, "Offline (throughput)"),
            (Scenario.GENERATION, "Generation (TTFT, tokens/s)"),
        ):
            self.scenario_combo.addItem(text, scenario.value)
        self.prompt_spin = QSpinBox(self)
        self.prompt_spin.setRange(1, 32_768)
        self.prompt_spin.setValue(32)
        self.new_tokens_spin = QSpinBox(self)
        self.new_tokens_spin.setRange(1, 32_768)
        self.new_tokens_spin.setValue(16)
        gen_row = QHBoxLayout()
        gen_row.addWidget(QLabel("prompt tokens", self))
        gen_row.addWidget(self.prompt_spin)
        gen_row.addWidget(QLabel("new tokens", self))
        gen_row.addWidget(self.new_tokens_spin)
        gen_row.addStretch(1)
        self.gen_widget = QWidget(self)
        self.gen_widget.setLayout(gen_row)
        gen_row.setContentsMargins(0, 0, 0, 0)
        how_form = QFormLayout()
        how_form.addRow("Runtimes", self.runtime_row)
        how_form.addRow("Precisions", _row(self, list(self.precision_checks.values())))
        how_form.addRow("Batch sizes", self.batch_edit)
        how_form.addRow("Threads", self.threads_edit)
        how_form.addRow("Scenario", self.scenario_combo)
        how_form.addRow("", self.gen_widget)
        how_box = QGroupBox("How to run", self)
        how_box.setLayout(how_form)

        self.preset_combo = QComboBox(self)
        for name, preset in PRESETS.items():
            self.preset_combo.addItem(
                f"{name} (ε {preset.epsilon:.1%}, at most {preset.t_max_s:.0f} s measuring)", name
            )
        self.t_max_spin = QDoubleSpinBox(self)
        self.t_max_spin.setRange(0, 3600)
        self.t_max_spin.setDecimals(1)
        self.t_max_spin.setSuffix(" s")
        self.t_max_spin.setSpecialValueText("as the preset says")
        self.t_max_spin.setToolTip("Measurement stops here even if not converged")
        self.idle_check = QCheckBox("Measure the idle power first (energy above idle)", self)
        self.idle_check.setChecked(True)
        self.sample_spin = QDoubleSpinBox(self)
        self.sample_spin.setRange(1, 1000)
        self.sample_spin.setDecimals(0)
        self.sample_spin.setValue(10)
        self.sample_spin.setSuffix(" Hz")
        self.repeats_spin = QSpinBox(self)
        self.repeats_spin.setRange(1, 100)
        self.repeats_spin.setToolTip("Replicates of each configuration (for between-run variation)")
        measure_form = QFormLayout()
        measure_form.addRow("Preset", self.preset_combo)
        measure_form.addRow("Max measuring time", self.t_max_spin)
        measure_form.addRow("Power sampling", self.sample_spin)
        measure_form.addRow("Repeats", self.repeats_spin)
        measure_form.addRow("", self.idle_check)
        measure_box = QGroupBox("Measurement", self)
        measure_box.setLayout(measure_form)

        form = QWidget(self)
        form_layout = QVBoxLayout(form)
        for box in (model_box, device_box, how_box, measure_box):
            form_layout.addWidget(box)
        form_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(form)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        self.banner = Banner(self)
        self.summary_label = QLabel(self)
        self.summary_label.setWordWrap(True)
        self.run_button = QPushButton(icons.icon("icon-new-run"), "Run", self)
        self.run_button.setObjectName("run")
        self.run_button.setDefault(True)
        self.run_button.setMinimumWidth(120)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary_label, 1)
        bottom.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.banner)
        layout.addLayout(bottom)

    def _connect(self) -> None:
        c = self.controller
        c.catalogReady.connect(self._on_catalog)
        c.devicesReady.connect(self._on_devices)
        c.modelResolved.connect(self._on_model_resolved)
        c.modelRejected.connect(self._on_model_rejected)
        c.launchChecking.connect(self._on_checking)
        c.launchRejected.connect(self._on_rejected)
        c.launched.connect(self._on_launched)
        c.failed.connect(self._on_failed)
        self.open_button.clicked.connect(lambda: self.open_model_file())
        self.run_button.clicked.connect(self.start_runs)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.device_list.selectionChanged.connect(self.update_plan)
        for check in (*self.precision_checks.values(), self.idle_check):
            check.toggled.connect(self.update_plan)
        for edit in (self.batch_edit, self.threads_edit, self.dims_edit, self.shapes_edit):
            edit.textChanged.connect(self.update_plan)
        for combo in (self.scenario_combo, self.preset_combo):
            combo.currentIndexChanged.connect(self.update_plan)
        for spin in (self.repeats_spin, self.prompt_spin, self.new_tokens_spin):
            spin.valueChanged.connect(self.update_plan)
        for dspin in (self.t_max_spin, self.sample_spin):
            dspin.valueChanged.connect(self.update_plan)

    # ------------------------------------------------------------------ remembered choices
    def _restore(self) -> None:
        saved = self._settings.choices("new-run")
        self._saved_model = str(saved.get("model", "builtin:mlp-tiny"))
        self._saved_devices = [str(d) for d in saved.get("devices", ["cpu"])]
        self._saved_runtimes = [str(r) for r in saved.get("runtimes", ["torch"])]
        for name, check in self.precision_checks.items():
            check.setChecked(name in saved.get("precisions", ["fp32"]))
        self.batch_edit.setText(str(saved.get("batch", "1")))
        self.threads_edit.setText(str(saved.get("threads", "default")))
        self.dims_edit.setText(str(saved.get("dims", "")))
        _select_data(self.scenario_combo, saved.get("scenario", Scenario.SINGLE_STREAM.value))
        _select_data(self.preset_combo, saved.get("preset", "quick"))
        self.t_max_spin.setValue(float(saved.get("t_max_s", 0.0)))
        self.sample_spin.setValue(float(saved.get("sample_hz", 10.0)))
        self.repeats_spin.setValue(int(saved.get("repeats", 1)))
        self.idle_check.setChecked(bool(saved.get("idle_baseline", True)))
        self.prompt_spin.setValue(int(saved.get("prompt_tokens", 32)))
        self.new_tokens_spin.setValue(int(saved.get("new_tokens", 16)))

    def save_choices(self) -> None:
        """Remember the choices for the next session (called by the main window on close)."""
        self._settings.set_choices(
            "new-run",
            {
                "model": self.model_combo.currentData() or self._saved_model,
                "devices": self.device_list.checked()
                if self.devices_loaded
                else self._saved_devices,
                "runtimes": [n for n, c in self.runtime_checks.items() if c.isChecked()]
                if self.runtime_checks
                else self._saved_runtimes,
                "precisions": [n for n, c in self.precision_checks.items() if c.isChecked()],
                "batch": self.batch_edit.text(),
                "threads": self.threads_edit.text(),
                "dims": self.dims_edit.text(),
                "scenario": self.scenario_combo.currentData(),
                "preset": self.preset_combo.currentData(),
                "t_max_s": self.t_max_spin.value(),
                "sample_hz": self.sample_spin.value(),
                "repeats": self.repeats_spin.value(),
                "idle_baseline": self.idle_check.isChecked(),
                "prompt_tokens": self.prompt_spin.value(),
                "new_tokens": self.new_tokens_spin.value(),
            },
        )

    # ------------------------------------------------------------------ catalog and devices
    def _on_catalog(self, entries: list[Any]) -> None:
        current = self.model_combo.currentData() or self._saved_model
        files = {ref: m for ref, m in self._models.items() if m.family == "file"}
        self._models = {m.ref: m for m in entries}
        self._models.update(files)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for family, title in (("builtin", "built-in"), ("onnx-zoo", "ONNX zoo"), ("file", "file")):
            for m in entries if family != "file" else files.values():
                if m.family == family:
                    self._add_model_item(m, title)
        self.model_combo.blockSignals(False)
        self.catalog_loaded = True
        self._catalog_error = ""
        if not self.select_model(str(current)) and self.model_combo.count():
            self.model_combo.setCurrentIndex(0)
        self._on_model_changed()

    def _add_model_item(self, model: Any, family_title: str) -> None:
        self.model_combo.addItem(f"{model.name}  ({family_title})", model.ref)
        self.model_combo.setItemData(
            self.model_combo.count() - 1, model.description, Qt.ItemDataRole.ToolTipRole
        )

    def select_model(self, ref: str) -> bool:
        """Select the model `ref` if the catalog has it."""
        index = self.model_combo.findData(ref)
        if index < 0:
            return False
        self.model_combo.setCurrentIndex(index)
        return True

    def _set_runtimes(self, names: list[str]) -> None:
        """One check box per registered runtime plugin, keeping what was checked."""
        wanted = [n for n, c in self.runtime_checks.items() if c.isChecked()] or (
            self._saved_runtimes
        )
        while (old := self.runtime_layout.takeAt(0)) is not None:
            if (widget := old.widget()) is not None:
                widget.deleteLater()
        self.runtime_checks = {}
        for name in names:
            check = QCheckBox(name, self.runtime_row)
            check.setObjectName(f"check-{name}")
            check.setChecked(name in wanted)
            check.toggled.connect(self.update_plan)
            self.runtime_checks[name] = check
            self.runtime_layout.addWidget(check)
        self.runtime_layout.addStretch(1)

    def _on_devices(self, inventory: DeviceInventory) -> None:
        self._inventory = inventory
        self._set_runtimes(sorted(inventory.formats))
        checked = self.device_list.checked() if self.devices_loaded else self._saved_devices
        self.device_list.set_devices(inventory.devices, checked)
        if not self.device_list.checked():
            self.device_list.set_checked("cpu")
        if inventory.notes:
            self.device_list.set_placeholder("\n".join(inventory.notes))
        self.devices_loaded = True
        self.update_plan()

    def _on_failed(self, what: str, message: str) -> None:
        if what == "list models":
            self._catalog_error = f"The model catalog could not be read: {message}"
            self.model_combo.setPlaceholderText("No model catalog")
            self.update_plan()
        elif what == "list devices":
            self.device_list.set_placeholder(f"Devices could not be listed: {message}")
            self.devices_loaded = True
            self.update_plan()

    def _on_model_changed(self, *_: object) -> None:
        model = self.current_model()
        if model is None:
            self.model_info.setText("")
        else:
            inputs = (
                ", ".join(
                    f"{i.name} {'×'.join(str(d) for d in i.shape)} {i.dtype}" for i in model.inputs
                )
                or "none declared"
            )
            params = f" · {model.parameters:,} parameters" if model.parameters else ""
            self.model_info.setText(
                f"{html.escape(model.description)}<br><small>{model.format}{params} · inputs: "
                f"{html.escape(inputs)}</small>"
            )
        self.update_plan()

    def current_model(self) -> Any:
        ref = self.model_combo.currentData()
        return self._models.get(str(ref)) if ref is not None else None

    # ------------------------------------------------------------------ model files
    def open_model_file(self, path: str | None = None) -> None:
        """Check a model file off the GUI thread; it joins the model list if it can run."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open a model file", "", MODEL_FILE_FILTER)
            if not path:
                return
        try:
            dims = self._dims()
            shapes = self._input_shapes()
        except BadInputError as exc:
            self.notify(str(exc), Level.ERROR)
            return
        self._checking_file = path
        self.update_plan()
        self.controller.resolve_model_file(path, dims or None, shapes or None)

    def _on_model_resolved(self, model: Any) -> None:
        self._checking_file = None
        if model.ref not in self._models:
            self._models[model.ref] = model
            self._add_model_item(model, "file")
        self.select_model(model.ref)
        self.update_plan()
        self.notify(f"Opened {model.path or model.ref}.")

    def _on_model_rejected(self, path: str, message: str) -> None:
        self._checking_file = None
        self.update_plan()
        self.notify(
            f"This model file cannot be used, so nothing was queued: {path}\n{message}", Level.ERROR
        )

    # ------------------------------------------------------------------ the plan
    def _dims(self) -> dict[str, int]:
        return parse_dims([self.dims_edit.text()])

    def _input_shapes(self) -> dict[str, str]:
        return parse_input_shapes([self.shapes_edit.text()])

    def request(self) -> RunRequest:
        """The form as a service request (BadInputError for a value that cannot be read)."""
        return RunRequest(
            model=str(self.model_combo.currentData() or ""),
            devices=tuple(self.device_list.checked()),
            runtimes=tuple(n for n, c in self.runtime_checks.items() if c.isChecked()),
            precisions=tuple(n for n, c in self.precision_checks.items() if c.isChecked()),
            batch_sizes=tuple(
                parse_ints(self.batch_edit.text(), what="batch size", field="batch_size")
            ),
            threads=tuple(parse_threads(self.threads_edit.text())),
            repeats=self.repeats_spin.value(),
            scenario=Scenario(self.scenario_combo.currentData()),
            preset=str(self.preset_combo.currentData()),
            t_max_s=self.t_max_spin.value() or None,
            dims=self._dims(),
            input_shapes=self._input_shapes(),
            prompt_tokens=self.prompt_spin.value(),
            new_tokens=self.new_tokens_spin.value(),
            sample_hz=self.sample_spin.value(),
            idle_baseline=self.idle_check.isChecked(),
        )

    def _waiting(self) -> list[str]:
        """What the form still waits for or lacks before anything can be planned."""
        waiting: list[str] = []
        if self._checking_file:
            waiting.append(f"Checking {self._checking_file}…")
        if self.current_model() is None:
            waiting.append(
                self._catalog_error
                or ("Choose a model." if self.catalog_loaded else "Loading the model catalog…")
            )
        if not self.device_list.checked():
            waiting.append(
                "Choose at least one device." if self.devices_loaded else "Looking for devices…"
            )
        elif not any(c.isChecked() for c in self.runtime_checks.values()):
            waiting.append("Choose at least one runtime.")
        if not any(c.isChecked() for c in self.precision_checks.values()):
            waiting.append("Choose at least one precision.")
        return waiting

    def plan(self) -> Plan:
        """The runs that Run would queue (the service's plan), and what stops or limits them."""
        scenario = Scenario(self.scenario_combo.currentData())
        self.gen_widget.setVisible(scenario is Scenario.GENERATION)
        errors = self._waiting()
        try:
            request = self.request()
        except BadInputError as exc:
            return Plan(None, (*errors, str(exc)))
        if errors:
            return Plan(None, tuple(errors))
        try:
            runs = plan_runs(request, combinations=self._inventory)
        except BadInputError as exc:
            return Plan(None, tuple(str(exc).splitlines()))
        problems = entry_problems(self.current_model(), runs)
        if problems:
            return Plan(None, tuple(problems), runs.skipped)
        return Plan(runs, (), runs.skipped)

    def update_plan(self, *_: object) -> Plan:
        """Re-check the choices; explain in place what cannot run; enable Run if something can."""
        plan = self.plan()
        busy_checking = self._request is not None
        reason = ""
        if plan.errors:
            reason = plan.errors[0]
            self._plan_message(
                list(plan.errors), Level.INFO if reason.endswith("…") else Level.ERROR
            )
            self.summary_label.setText("")
        elif plan.skipped:
            self._plan_message(
                [f"{len(plan.skipped)} combination(s) will be left out:", *plan.skipped],
                Level.WARNING,
            )
        elif self._banner_from_plan:
            self.banner.clear()
        if plan.runs is not None:
            self.summary_label.setText(
                f"{len(plan.specs)} run(s) will be queued "
                f"({plan.runs.configurations} configuration(s) × {self.repeats_spin.value()} "
                "repeat(s)), one at a time."
            )
        if busy_checking:
            reason = "Checking the runs…"
        self.run_button.setEnabled(bool(plan.specs) and not busy_checking)
        self.run_button.setToolTip(reason or "Queue these runs (Ctrl+R)")
        self.run_reason = reason
        return plan

    def _plan_message(self, lines: list[str], level: Level) -> None:
        self.banner.show_message(lines, level)
        self._banner_from_plan = True

    def notify(self, text: str, level: Level = Level.INFO) -> None:
        """Show a one-off notice (kept until the choices become invalid or the next notice)."""
        self.banner.show_message(text, level)
        self._banner_from_plan = False

    # ------------------------------------------------------------------ launching
    def start_runs(self) -> int | None:
        """Queue what the page describes (after the engine's checks); the request id or None."""
        plan = self.update_plan()
        if plan.runs is None or self._request is not None:
            return None
        self.save_choices()
        self._request = self.controller.launch(plan.runs)
        return self._request

    def _on_checking(self, request: int) -> None:
        if request == self._request:
            self.update_plan()

    def _on_rejected(self, request: int, message: str) -> None:
        if request != self._request:
            return
        self._request = None
        self.update_plan()
        self.notify(f"Nothing was queued: {message}", Level.ERROR)

    def _on_launched(self, request: int, keys: list[int]) -> None:
        if request != self._request:
            return
        self._request = None
        self.update_plan()
        self.notify(f"Queued {len(keys)} run(s): see the Queue page.")


def _row(parent: QWidget, widgets: list[QCheckBox]) -> QWidget:
    holder = QWidget(parent)
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w)
    layout.addStretch(1)
    return holder


def _select_data(combo: QComboBox, value: object) -> None:
    index = combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)
