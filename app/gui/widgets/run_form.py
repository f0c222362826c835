"""The form of a run request: model, devices, runtimes, precisions, batch sizes, threads,
scenario and measurement settings, read as a service ``RunRequest``.

The New run page is this form plus what it does with it (the catalog, the devices, the plan,
Run); ``changed`` fires whenever an input changes, and the remembered choices come and go
through ``restore_form`` / ``form_choices``.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import PRECISIONS, PRESETS, TRAINING_PRECISIONS, Scenario
from wattbench.gui import icons
from wattbench.gui.widgets.device_list import DeviceList
from wattbench.gui.widgets.training_fields import TrainingFields
from wattbench.service.request import (
    COMPARISON_REPLICATES,
    RunRequest,
    parse_dims,
    parse_input_shapes,
    parse_ints,
    parse_slo,
    parse_threads,
)

log = logging.getLogger(__name__)

AUTO_REPLICATES = 0  # the replicates box's "auto": the service's default for the plan
BATCH_LABEL = "Batch sizes"
MICRO_BATCH_LABEL = "Micro-batch sizes"
CONCURRENCY_LABEL = "Concurrent sequences"


class RunForm(QWidget):
    """The inputs of a run request (see the module docstring)."""

    changed = Signal()  # any input changed

    # the seed that shuffles the rounds of the runs the form describes: kept while the form
    # changes (the order shown is the order queued), renewed once they are queued
    order_seed: int | None = None

    def _build_form(self) -> QWidget:
        """Make the inputs; the container that holds their four groups."""
        self._saved_runtimes: list[str] = ["torch"]
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
        self.open_folder_button = QPushButton(
            icons.icon("icon-open"), "Open checkpoint folder…", self
        )
        self.open_folder_button.setToolTip(
            "Benchmark a Hugging Face checkpoint folder (config.json + safetensors, as "
            "save_pretrained writes it), read without running its code, never downloaded"
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
        model_row.addWidget(self.open_folder_button)
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
        self.batch_label = QLabel(BATCH_LABEL, self)
        self.threads_edit = QLineEdit("default", self)
        self.threads_edit.setPlaceholderText("default, or e.g. 1, 4")
        self.scenario_combo = QComboBox(self)
        for scenario, text in (
            (Scenario.SINGLE_STREAM, "Single stream (latency)"),
            (Scenario.OFFLINE, "Offline (throughput)"),
            (Scenario.GENERATION, "Generation (TTFT, tokens/s)"),
            (Scenario.SERVER, "Server (Poisson load, latency SLO)"),
            (Scenario.TRAINING, "Training (tokens/s, step time, MFU)"),
        ):
            self.scenario_combo.addItem(text, scenario.value)
        self.prompt_spin = QSpinBox(self)
        self.prompt_spin.setRange(1, 32_768)
        self.prompt_spin.setValue(32)
        self.new_tokens_spin = QSpinBox(self)
        self.new_tokens_spin.setRange(1, 32_768)
        self.new_tokens_spin.setValue(16)
        self.prompt_spin.setToolTip("Tokens in each sequence's prompt (prefill)")
        self.new_tokens_spin.setToolTip(
            "Tokens generated for each sequence after its prompt (always this many: the end "
            "of sequence token is ignored)"
        )
        gen_row = QHBoxLayout()
        gen_row.addWidget(QLabel("Prompt tokens", self))
        gen_row.addWidget(self.prompt_spin)
        gen_row.addSpacing(12)
        gen_row.addWidget(QLabel("New tokens", self))
        gen_row.addWidget(self.new_tokens_spin)
        gen_row.addStretch(1)
        self.gen_widget = QWidget(self)
        self.gen_widget.setLayout(gen_row)
        gen_row.setContentsMargins(0, 0, 0, 0)
        self.rate_edit = QLineEdit("", self)
        self.rate_edit.setPlaceholderText("requests/s, e.g. 100")
        self.rate_edit.setToolTip(
            "Poisson arrivals per second; with an SLO, where the search for the highest rate "
            "meeting it starts"
        )
        self.streams_edit = QLineEdit("1", self)
        self.streams_edit.setPlaceholderText("e.g. 1, 2, 4")
        self.streams_edit.setToolTip(
            "Concurrent streams sharing the model; several values make a concurrency sweep"
        )
        self.slo_edit = QLineEdit("", self)
        self.slo_edit.setPlaceholderText("e.g. p99=100ms, tpot:p90=100ms")
        self.slo_edit.setToolTip(
            "Search the highest rate whose latency percentile meets this limit: its goodput"
        )
        server_row = QHBoxLayout()
        server_row.setContentsMargins(0, 0, 0, 0)
        for text, edit in (("Rate", self.rate_edit), ("Streams", self.streams_edit),
                           ("SLO", self.slo_edit)):  # fmt: skip
            server_row.addWidget(QLabel(text, self))
            server_row.addWidget(edit)
        self.server_widget = QWidget(self)
        self.server_widget.setLayout(server_row)
        self.server_widget.setVisible(False)
        self.instances_edit = QLineEdit("1", self)
        self.instances_edit.setPlaceholderText("e.g. 1, 2, 4")
        self.instances_edit.setToolTip(
            "CPU: copies of the model run together, each pinned to its own cores with the "
            "threads above; the throughput is their sum, the power measured once for all"
        )
        how_form = QFormLayout()
        how_form.addRow("Runtimes", self.runtime_row)
        how_form.addRow("Precisions", _row(self, list(self.precision_checks.values())))
        how_form.addRow("Scenario", self.scenario_combo)
        how_form.addRow("", self.gen_widget)
        how_form.addRow("", self.server_widget)
        self.training_widget = TrainingFields(self)
        self.training_widget.changed.connect(self.changed)
        how_form.addRow("", self.training_widget)
        how_form.addRow(self.batch_label, self.batch_edit)
        how_form.addRow("Threads", self.threads_edit)
        how_form.addRow("Instances", self.instances_edit)
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
        self.repeats_spin.setRange(AUTO_REPLICATES, 100)
        self.repeats_spin.setSpecialValueText(
            f"auto ({COMPARISON_REPLICATES} to compare, 1 for a single configuration)"
        )
        self.repeats_spin.setToolTip(
            "Runs of each configuration, for the variation between runs. They run in rounds: "
            "each round runs every configuration once, in a shuffled order, so that a drift of "
            "the machine does not land between the configurations being compared."
        )
        measure_form = QFormLayout()
        measure_form.addRow("Preset", self.preset_combo)
        measure_form.addRow("Max measuring time", self.t_max_spin)
        measure_form.addRow("Power sampling", self.sample_spin)
        measure_form.addRow("Replicates", self.repeats_spin)
        measure_form.addRow("", self.idle_check)
        measure_box = QGroupBox("Measurement", self)
        measure_box.setLayout(measure_form)

        form = QWidget(self)
        form_layout = QVBoxLayout(form)
        for box in (model_box, device_box, how_box, measure_box):
            form_layout.addWidget(box)
        form_layout.addStretch(1)
        self.device_list.selectionChanged.connect(self.changed)
        for check in (*self.precision_checks.values(), self.idle_check):
            check.toggled.connect(self.changed)
        for edit in (self.batch_edit, self.threads_edit, self.dims_edit, self.shapes_edit,
                     self.rate_edit, self.streams_edit, self.slo_edit,
                     self.instances_edit):  # fmt: skip
            edit.textChanged.connect(self.changed)
        for combo in (self.scenario_combo, self.preset_combo):
            combo.currentIndexChanged.connect(self.changed)
        for spin in (self.repeats_spin, self.prompt_spin, self.new_tokens_spin):
            spin.valueChanged.connect(self.changed)
        for dspin in (self.t_max_spin, self.sample_spin):
            dspin.valueChanged.connect(self.changed)
        return form

    def set_generation_mode(self, generation: bool) -> None:
        """Show the prompt and new token settings for the generation scenario, where the batch
        is the number of sequences generated together; hide them for the others."""
        self.gen_widget.setVisible(generation)
        self.batch_label.setText(CONCURRENCY_LABEL if generation else BATCH_LABEL)
        self.batch_edit.setToolTip(
            "Sequences generated together (batch = concurrent sequences); several values, "
            "e.g. 1, 8, 32, make a sweep"
            if generation
            else "Items per call; several values, e.g. 1, 8, 32, make a sweep"
        )

    def set_training_mode(self, training: bool) -> None:
        """Show the training inputs, the batch as the micro-batch, and only the precisions a
        training step runs in (fp32, bf16); hide them and free the precisions for the others."""
        self.training_widget.setVisible(training)
        if training:
            self.batch_label.setText(MICRO_BATCH_LABEL)
            self.batch_edit.setToolTip("Sequences per micro-batch; several values make a sweep")
        for name, check in self.precision_checks.items():
            allowed = not training or name in TRAINING_PRECISIONS
            if not allowed and check.isChecked():
                check.setChecked(False)
            check.setEnabled(allowed)
        if training and not any(c.isChecked() for c in self.precision_checks.values()):
            self.precision_checks[TRAINING_PRECISIONS[0]].setChecked(True)

    def set_server_mode(self, server: bool) -> None:
        """Show the rate, streams and SLO of the server scenario; hide them for the others."""
        self.server_widget.setVisible(server)

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
            check.toggled.connect(self.changed)
            self.runtime_checks[name] = check
            self.runtime_layout.addWidget(check)
        self.runtime_layout.addStretch(1)

    def restore_form(self, saved: dict[str, Any]) -> None:
        """Put back the choices of the last session."""
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
        self.repeats_spin.setValue(_saved_replicates(saved))
        self.idle_check.setChecked(bool(saved.get("idle_baseline", True)))
        self.prompt_spin.setValue(int(saved.get("prompt_tokens", 32)))
        self.new_tokens_spin.setValue(int(saved.get("new_tokens", 16)))
        self.rate_edit.setText(str(saved.get("rate", "")))
        self.streams_edit.setText(str(saved.get("streams", "1")))
        self.slo_edit.setText(str(saved.get("slo", "")))
        self.instances_edit.setText(str(saved.get("instances", "1")))
        self.training_widget.restore(saved)

    def form_choices(self) -> dict[str, Any]:
        """The choices to remember for the next session."""
        return {
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
            "replicates": self.repeats_spin.value(),
            "idle_baseline": self.idle_check.isChecked(),
            "prompt_tokens": self.prompt_spin.value(),
            "new_tokens": self.new_tokens_spin.value(),
            "rate": self.rate_edit.text(),
            "streams": self.streams_edit.text(),
            "slo": self.slo_edit.text(),
            "instances": self.instances_edit.text(),
            **self.training_widget.choices(),
        }

    def _dims(self) -> dict[str, int]:
        return parse_dims([self.dims_edit.text()])

    def _input_shapes(self) -> dict[str, str]:
        return parse_input_shapes([self.shapes_edit.text()])

    def _rate(self) -> float | None:
        text = self.rate_edit.text().strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise BadInputError(
                f"Cannot read the rate {text!r}: give requests per second, e.g. 100.",
                field="target_rate",
            ) from None

    def request(self) -> RunRequest:
        """The form as a service request (BadInputError for a value that cannot be read)."""
        scenario = Scenario(self.scenario_combo.currentData())
        server = scenario is Scenario.SERVER
        slo = parse_slo(self.slo_edit.text()) if server else None
        training = self.training_widget.request_fields() if scenario is Scenario.TRAINING else {}
        return RunRequest(  # training: the sequence length is the prompt tokens
            model=str(self.model_combo.currentData() or ""),
            devices=tuple(self.device_list.checked()),
            runtimes=tuple(n for n, c in self.runtime_checks.items() if c.isChecked()),
            precisions=tuple(n for n, c in self.precision_checks.items() if c.isChecked()),
            batch_sizes=tuple(
                parse_ints(self.batch_edit.text(), what="batch size", field="batch_size")
            ),
            threads=tuple(parse_threads(self.threads_edit.text())),
            repeats=self.repeats_spin.value() or None,
            order_seed=self.order_seed,
            scenario=scenario,
            preset=str(self.preset_combo.currentData()),
            t_max_s=self.t_max_spin.value() or None,
            dims=self._dims(),
            input_shapes=self._input_shapes(),
            prompt_tokens=training.pop("prompt_tokens", self.prompt_spin.value()),
            new_tokens=self.new_tokens_spin.value(),
            sample_hz=self.sample_spin.value(),
            idle_baseline=self.idle_check.isChecked(),
            target_rate=self._rate() if server else None,
            streams=(
                tuple(parse_ints(self.streams_edit.text(), what="streams", field="streams")) or (1,)
            )
            if server
            else (1,),
            slo_ms=None if slo is None else slo[1],
            slo_percentile=0.99 if slo is None else slo[0],
            slo_metric="latency" if slo is None else slo.metric,
            instance_counts=tuple(
                parse_ints(self.instances_edit.text(), what="instances", field="instances")
            )
            or (1,),
            **training,
        )


def _saved_replicates(saved: dict[str, Any]) -> int:
    """The replicates remembered (0: auto); a number kept by an older version is kept only
    when it asked for more than one run (1 was its default, not a choice)."""
    if "replicates" in saved:
        return int(saved["replicates"])
    older = int(saved.get("repeats", AUTO_REPLICATES))
    return older if older > 1 else AUTO_REPLICATES


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
