"""A list of finished runs to tick, with a filter box: which stored runs a page works on.

It is fed the controller's run listing (``set_summaries``) and the runs asked for elsewhere
(``set_checked``, e.g. what the runs browser sent); ``changed`` tells the page when the ticks
change. Runs ticked but not listed (yet) stay visible under their id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget
from wattbench.gui.widgets.runs_table import throughput_text


class RunPicker(QWidget):
    """Tick finished runs; ``checked_ids()`` in the order they were ticked."""

    changed = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._summaries: dict[str, Any] = {}  # run id -> RunSummary, finished runs only
        self._checked: list[str] = []
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter by model, device, runtime, tag…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.list = QListWidget(self)
        self.list.setAccessibleName(title)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.itemChanged.connect(self._on_item_changed)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(f"<b>{title}</b>", self))
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.status)
        self._fill()

    def summary(self, run_id: str) -> Any | None:
        """The listed summary of a run (None: not listed)."""
        return self._summaries.get(run_id)

    def checked_ids(self) -> list[str]:
        return list(self._checked)

    def set_summaries(self, summaries: Sequence[Any]) -> None:
        self._summaries = {s.id: s for s in summaries if s.status.value == "done"}
        if self._summaries:  # a ticked run no longer listed was deleted
            self._checked = [rid for rid in self._checked if rid in self._summaries]
        self._fill()
        self.changed.emit()

    def set_checked(self, run_ids: Sequence[str]) -> None:
        self._checked = list(dict.fromkeys(run_ids))
        self._fill()
        self.changed.emit()

    def _fill(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        unlisted = [rid for rid in self._checked if rid not in self._summaries]
        for rid in [*unlisted, *self._summaries]:
            s = self._summaries.get(rid)
            text = rid[:8]
            if s is not None:
                thr = throughput_text(s)
                text = f"{s.label.removeprefix('builtin:')}\n{thr} · {rid[:8]}"
                item = QListWidgetItem(text, self.list)
                item.setToolTip(f"{s.label}\n{rid}\ntags: {', '.join(s.tags) or '—'}")
            else:
                item = QListWidgetItem(text, self.list)
            item.setData(Qt.ItemDataRole.UserRole, rid)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = rid in self._checked
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._apply_filter(self.filter_edit.text())
        self._update_status()

    def _update_status(self) -> None:
        if not self._summaries and not self._checked:
            self.status.setText(
                "No finished runs yet: run something on the New run page, or import a bundle."
            )
        else:
            self.status.setText(f"{len(self._checked)} of {len(self._summaries)} runs ticked.")

    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.list.count()):
            item = self.list.item(i)
            s = self._summaries.get(item.data(Qt.ItemDataRole.UserRole))
            hay = (item.text() + " " + " ".join(s.tags if s else ())).lower()
            item.setHidden(bool(words) and not all(w in hay for w in words))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        rid = str(item.data(Qt.ItemDataRole.UserRole))
        ticked = item.checkState() == Qt.CheckState.Checked
        if ticked and rid not in self._checked:
            self._checked.append(rid)
        elif not ticked and rid in self._checked:
            self._checked.remove(rid)
        self._update_status()
        self.changed.emit()
