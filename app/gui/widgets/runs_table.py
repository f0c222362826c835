"""The runs browser's table: the store's run summaries as a Qt model, sorted and filtered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from wattbench.domain import units
from wattbench.domain.spec import Scenario
from wattbench.gui import (
    theme,
)
from wattbench.gui.controller import flag_words, unreliable_flags

log = logging.getLogger(__name__)

ANY = "Any"
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

# (header, function of a RunSummary -> display text, function -> sort key)
_Index = QModelIndex | QPersistentModelIndex


def throughput_text(s: Any) -> str:
    """A stored run's throughput in its items: tokens/s for a training run (a trained token)."""
    unit = "tokens/s" if s.scenario == Scenario.TRAINING.value else "items/s"
    return units.with_unit(s.throughput_items_per_s, unit)


def _energy_text(s: Any) -> str:
    text = units.energy_j(s.energy_per_item_j)
    if s.energy_per_item_j is not None and "estimate" in (s.energy_source or ""):
        return text + " (est.)"
    return text


def _flags_text(s: Any) -> str:
    """The flags in words, the ones that make a verdict unreliable first (short forms)."""
    return ", ".join(w.split(" (")[0] for w in flag_words(s.flags))


def _created(s: Any) -> datetime:
    t: datetime = s.created_at
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _num(value: float | None) -> float:
    return value if value is not None else float("-inf")


COLUMNS: tuple[tuple[str, Any, Any], ...] = (
    (
        "Created",
        lambda s: _created(s).astimezone().strftime("%Y-%m-%d %H:%M"),
        lambda s: _created(s).timestamp(),
    ),
    ("Model", lambda s: s.model_ref, lambda s: s.model_ref),
    ("Device", lambda s: s.device, lambda s: s.device),
    ("Runtime", lambda s: s.runtime, lambda s: s.runtime),
    ("Precision", lambda s: s.precision, lambda s: s.precision),
    ("Batch", lambda s: str(s.batch_size), lambda s: s.batch_size),
    ("Threads", lambda s: str(s.threads) if s.threads else "default", lambda s: s.threads or 0),
    ("Scenario", lambda s: s.scenario, lambda s: s.scenario),
    ("Status", lambda s: s.status.value, lambda s: s.status.value),
    ("Flags", lambda s: _flags_text(s), lambda s: len(s.flags)),
    (
        "Throughput",
        throughput_text,
        lambda s: _num(s.throughput_items_per_s),
    ),
    ("p50 per call", lambda s: units.duration_ns(s.p50_ns), lambda s: _num(s.p50_ns)),
    ("p99 per call", lambda s: units.duration_ns(s.p99_ns), lambda s: _num(s.p99_ns)),
    ("ρ", lambda s: units.rho(s.rho), lambda s: _num(s.rho)),
    (
        "Energy/inference",
        lambda s: _energy_text(s),
        lambda s: _num(s.energy_per_item_j),
    ),
    ("Inferences/J", lambda s: units.with_unit(s.items_per_j, "/J"), lambda s: _num(s.items_per_j)),
    ("Tags", lambda s: ", ".join(s.tags), lambda s: ", ".join(s.tags)),
    ("Note", lambda s: s.note.splitlines()[0] if s.note else "", lambda s: s.note),
)
_NUMERIC = frozenset(range(10, 16))  # throughput to inferences/J: right-aligned
FLAGS_COLUMN = 9
DATE_WINDOWS: tuple[tuple[str, timedelta | None], ...] = (
    ("Any time", None),
    ("Last 24 hours", timedelta(days=1)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
    ("Last 365 days", timedelta(days=365)),
)


class RunsModel(QAbstractTableModel):
    """The run summaries as a table (display text, sort keys, the run id)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.summaries: list[Any] = []

    def set_summaries(self, summaries: Sequence[Any]) -> None:
        self.beginResetModel()
        self.summaries = list(summaries)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.summaries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self.summaries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return units.printable(COLUMNS[index.column()][1](s))
        if role == SORT_ROLE:
            return COLUMNS[index.column()][2](s)
        if role == ID_ROLE:
            return s.id
        if role == Qt.ItemDataRole.ToolTipRole:
            if COLUMNS[index.column()][0] == "ρ":
                return f"precision: the {units.RHO_MEANING}"
            if COLUMNS[index.column()][0] == "Status" and s.reason:
                return units.printable(s.reason)
            if index.column() == FLAGS_COLUMN and s.flags:
                return "Quality flags:\n" + "\n".join(f"• {w}" for w in flag_words(s.flags))
            if COLUMNS[index.column()][0] == "Note" and s.note:
                return units.printable(s.note)
            return units.printable(s.label)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and COLUMNS[index.column()][0] == "Status"
            and s.status.value in ("failed", "interrupted")
        ):
            return QColor(theme.error_text())
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and index.column() == FLAGS_COLUMN
            and unreliable_flags(s.flags)
        ):
            return QColor(theme.warning_text())
        return None


class RunsFilter(QSortFilterProxyModel):
    """Sorts by the model's sort keys and keeps the rows matching every filter."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.model_ref = ""
        self.device = ""
        self.status = ""
        self.tag = ""
        self.since: datetime | None = None
        self.words: list[str] = []

    def set_filters(
        self,
        *,
        model: str = "",
        device: str = "",
        status: str = "",
        tag: str = "",
        since: datetime | None = None,
        text: str = "",
    ) -> None:
        self.beginFilterChange()
        self.model_ref, self.device, self.status, self.tag = model, device, status, tag
        self.since = since
        self.words = text.lower().split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def lessThan(self, left: _Index, right: _Index) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        source = self.sourceModel()
        assert isinstance(source, RunsModel)
        s = source.summaries[row]
        if self.model_ref and s.model_ref != self.model_ref:
            return False
        if self.device and s.device != self.device:
            return False
        if self.status and s.status.value != self.status:
            return False
        if self.tag and self.tag not in s.tags:
            return False
        if self.since is not None and _created(s) < self.since:
            return False
        if self.words:
            hay = " ".join(
                (
                    s.label,
                    s.id,
                    s.scenario,
                    s.status.value,
                    " ".join(s.tags),
                    s.note,
                    s.hostname or "",
                )
            ).lower()
            if not all(w in hay for w in self.words):
                return False
        return True
