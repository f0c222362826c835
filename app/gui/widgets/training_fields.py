"""The training scenario's inputs on the New run page: sequence length (the request's prompt
tokens), gradient accumulation, activation checkpointing, the largest micro-batch that fits and
data-parallel ranks. Shown only while the training scenario is chosen.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSpinBox, QWidget

DEFAULT_SEQ_LEN = 128


class TrainingFields(QWidget):
    """One row of training inputs; ``changed`` fires when one changes."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.seq_spin = QSpinBox(self)
        self.seq_spin.setObjectName("train-seq-len")
        self.seq_spin.setRange(2, 32_768)
        self.seq_spin.setValue(DEFAULT_SEQ_LEN)
        self.seq_spin.setToolTip(
            "Tokens per training sequence (each predicts the next): the run's prompt tokens"
        )
        self.accum_spin = QSpinBox(self)
        self.accum_spin.setObjectName("train-grad-accum")
        self.accum_spin.setRange(1, 4096)
        self.accum_spin.setToolTip(
            "Micro-batches per optimizer step (gradient accumulation): a step trains "
            "batch × accumulation × sequence tokens"
        )
        self.ckpt_check = QCheckBox("Activation checkpointing", self)
        self.ckpt_check.setObjectName("train-ckpt")
        self.ckpt_check.setToolTip(
            "Recompute activations in the backward pass: less memory, more time (the "
            "recomputed FLOPs are not counted in the achieved TFLOP/s)"
        )
        self.find_check = QCheckBox("Largest micro-batch that fits", self)
        self.find_check.setObjectName("train-find-micro-batch")
        self.find_check.setToolTip(
            "Search the micro-batch from the batch size up, doubling until the device runs "
            "out of memory, and measure the largest that fits"
        )
        self.dp_spin = QSpinBox(self)
        self.dp_spin.setObjectName("train-data-parallel")
        self.dp_spin.setRange(1, 64)
        self.dp_spin.setToolTip(
            "Data-parallel ranks on this host, one process per device, each with the batch "
            "size per micro-batch"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for text, spin in (("Sequence length", self.seq_spin), ("Accumulation", self.accum_spin)):
            row.addWidget(QLabel(text, self))
            row.addWidget(spin)
            row.addSpacing(8)
        row.addWidget(self.ckpt_check)
        row.addWidget(self.find_check)
        row.addSpacing(8)
        row.addWidget(QLabel("Data-parallel ranks", self))
        row.addWidget(self.dp_spin)
        row.addStretch(1)
        for spin in (self.seq_spin, self.accum_spin, self.dp_spin):
            spin.valueChanged.connect(self.changed)
        for check in (self.ckpt_check, self.find_check):
            check.toggled.connect(self.changed)
        self.setVisible(False)

    def request_fields(self) -> dict[str, Any]:
        """The training fields of a run request (prompt_tokens is the sequence length)."""
        return {
            "prompt_tokens": self.seq_spin.value(),
            "grad_accum": self.accum_spin.value(),
            "activation_checkpointing": self.ckpt_check.isChecked(),
            "find_micro_batch": self.find_check.isChecked(),
            "data_parallel": self.dp_spin.value(),
        }

    def choices(self) -> dict[str, Any]:
        """What to remember for the next session."""
        return {"train_" + k: v for k, v in self.request_fields().items()}

    def restore(self, saved: dict[str, Any]) -> None:
        self.seq_spin.setValue(int(saved.get("train_prompt_tokens", DEFAULT_SEQ_LEN)))
        self.accum_spin.setValue(int(saved.get("train_grad_accum", 1)))
        self.ckpt_check.setChecked(bool(saved.get("train_activation_checkpointing", False)))
        self.find_check.setChecked(bool(saved.get("train_find_micro_batch", False)))
        self.dp_spin.setValue(int(saved.get("train_data_parallel", 1)))
