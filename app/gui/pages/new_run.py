"""The New run page: pick a model and devices, set how to run, and queue the runs.

Every choice is checked as it changes; what cannot work is explained in the banner above the
Run button, which stays disabled (with the reason as its tooltip) until something can run.
The form becomes a service ``RunRequest`` and the service plans it, exactly as it plans the
CLI's ``wattbench run``; its full checks run once more off the GUI thread when Run is pressed
(the controller's launch), and nothing is queued unless every run passes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import Scenario, new_order_seed
from wattbench.gui import icons
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.controller import Controller
from wattbench.gui.widgets import model_choice
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.run_form import RunForm
from wattbench.service.request import RunPlan

if TYPE_CHECKING:
    from wattbench.service.inventory import DeviceInventory

log = logging.getLogger(__name__)

CATALOG_DELAY_MS = 100
MODEL_FILE_FILTER = "Models (*.onnx *.pt *.pth *.ts);;ONNX (*.onnx);;All files (*)"


@dataclass(frozen=True)
class Plan:
    """What the page would queue now, and why not everything can run."""

    runs: RunPlan | None  # None while anything in errors stands
    errors: tuple[str, ...] = ()  # nothing can be queued while any is present
    skipped: tuple[str, ...] = ()  # combinations left out, each with its reason

    @property
    def specs(self) -> tuple[Any, ...]:
        return self.runs.specs if self.runs is not None else ()


class NewRunPage(RunForm):
    """Model, devices and options; Run queues the sweep they describe."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._settings = AppSettings()
        self._models: dict[str, Any] = {}  # ref -> ModelEntry
        self._opened: dict[str, Any] = {}  # the files and checkpoint folders opened, by ref
        self._shown_model: str | None = None  # the ref the form was last set for
        self._inventory: DeviceInventory | None = None
        self.catalog_loaded = False
        self.devices_loaded = False
        self._checking_file: str | None = None
        self._request: int | None = None
        self._catalog_error = ""
        self._banner_from_plan = False  # the banner explains the plan (vs. a one-off notice)
        self.run_reason = ""
        self.order_seed = new_order_seed()
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
        form = self._build_form()
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
        self.open_folder_button.clicked.connect(lambda: self.open_checkpoint_folder())
        self.run_button.clicked.connect(self.start_runs)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.changed.connect(self.update_plan)

    # ------------------------------------------------------------------ remembered choices
    def _restore(self) -> None:
        saved = self._settings.choices("new-run")
        self._saved_model = str(saved.get("model", "builtin:mlp-tiny"))
        self._saved_devices = [str(d) for d in saved.get("devices", ["cpu"])]
        self.restore_form(saved)

    def save_choices(self) -> None:
        """Remember the choices for the next session (called by the main window on close)."""
        choices = self.form_choices()
        choices["model"] = self.model_combo.currentData() or self._saved_model
        choices["devices"] = (
            self.device_list.checked() if self.devices_loaded else self._saved_devices
        )
        self._settings.set_choices("new-run", choices)

    # ------------------------------------------------------------------ catalog and devices
    def _on_catalog(self, entries: list[Any]) -> None:
        current = self.model_combo.currentData() or self._saved_model
        listed = model_choice.catalog_order(entries)
        self._models = {m.ref: m for m in listed}
        self._models.update(self._opened)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for m in listed:
            self._add_model_item(m)
        for m in self._opened.values():
            self._add_model_item(m, opened=True)
        self.model_combo.blockSignals(False)
        self.catalog_loaded = True
        self._catalog_error = ""
        if not self.select_model(str(current)) and self.model_combo.count():
            self.model_combo.setCurrentIndex(0)
        self._on_model_changed()

    def _add_model_item(self, model: Any, opened: bool = False) -> None:
        self.model_combo.addItem(model_choice.item_text(model, opened), model.ref)
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
            self.model_info.setText(model_choice.info_html(model))
            if self._shown_model is not None and model.ref != self._shown_model:
                self._match_scenario(model)  # a choice, not the last session's model restored
            self._shown_model = model.ref
        self.update_plan()

    def _match_scenario(self, model: Any) -> None:
        """A model that generates tokens is measured generating them; another model leaves
        the generation scenario for single stream. A training choice is left as it is."""
        scenario = Scenario(self.scenario_combo.currentData())
        if scenario is Scenario.TRAINING:
            return
        if model.generative and scenario is not Scenario.GENERATION:
            wanted = Scenario.GENERATION
        elif not model.generative and scenario is Scenario.GENERATION:
            wanted = Scenario.SINGLE_STREAM
        else:
            return
        self.scenario_combo.setCurrentIndex(self.scenario_combo.findData(wanted.value))

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

    def open_checkpoint_folder(self, path: str | None = None) -> None:
        """Check a Hugging Face checkpoint folder off the GUI thread (in a probe process, as
        a file); it joins the model list if it can run."""
        if path is None:
            path = QFileDialog.getExistingDirectory(self, "Open a Hugging Face checkpoint folder")
            if not path:
                return
        self._checking_file = path
        self.update_plan()
        self.controller.resolve_model_file(path)

    def _on_model_resolved(self, model: Any) -> None:
        self._checking_file = None
        if model.ref not in self._models:
            self._models[model.ref] = self._opened[model.ref] = model
            self._add_model_item(model, opened=True)
        self.select_model(model.ref)
        self.update_plan()
        self.notify(f"Opened {model.path or model.ref}.")

    def _on_model_rejected(self, path: str, message: str) -> None:
        self._checking_file = None
        self.update_plan()
        self.notify(
            f"This model cannot be used, so nothing was queued: {path}\n{message}", Level.ERROR
        )

    # ------------------------------------------------------------------ the plan
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
        self.set_generation_mode(scenario is Scenario.GENERATION)
        self.set_server_mode(scenario is Scenario.SERVER)
        self.set_training_mode(scenario is Scenario.TRAINING)
        errors = self._waiting()
        try:
            request = self.request()
        except BadInputError as exc:
            return Plan(None, (*errors, str(exc)))
        if errors:
            return Plan(None, tuple(errors))
        # imported once the catalog and the devices have arrived, not before the window shows:
        # the planner brings in the catalog and the runtime registry
        from wattbench.service.plan import entry_problems, plan_runs

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
                f"{len(plan.specs)} run(s) will be queued, one at a time: "
                f"{plan.runs.order_summary()}."
            )
            order = plan.runs.order_lines()
            self.summary_label.setToolTip("\n".join(["In this order:", *order]) if order else "")
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
        self.order_seed = new_order_seed()  # the next runs get an order of their own
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
