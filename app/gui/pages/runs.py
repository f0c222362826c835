"""Runs browser: every stored run, sortable and filterable, with tags, notes, deletion and details.

The table shows the store's run summaries (no arrays); selecting one run loads it in full
through the controller for the details pane (system description, spec, flags, latency
histogram). "Compare selected" hands the ids to the compare view (controller.request_compare).
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain import units
from wattbench.domain.codec import to_document
from wattbench.gui import (
    theme,
)
from wattbench.gui.banner import Banner, Level
from wattbench.gui.controller import Controller

log = logging.getLogger(__name__)

ANY = "Any"
HIST_BINS = 60
LOG_X_SPREAD = 20.0  # histogram on a log axis when p99.9 / min exceeds this
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

# (header, function of a RunSummary -> display text, function -> sort key)
_Index = QModelIndex | QPersistentModelIndex


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
    (
        "Throughput",
        lambda s: units.with_unit(s.throughput_items_per_s, "items/s"),
        lambda s: _num(s.throughput_items_per_s),
    ),
    ("p50", lambda s: units.duration_ns(s.p50_ns), lambda s: _num(s.p50_ns)),
    ("p99", lambda s: units.duration_ns(s.p99_ns), lambda s: _num(s.p99_ns)),
    (
        "Energy/inference",
        lambda s: _energy_text(s),
        lambda s: _num(s.energy_per_item_j),
    ),
    ("Inferences/J", lambda s: units.with_unit(s.items_per_j, "/J"), lambda s: _num(s.items_per_j)),
    ("Flags", lambda s: ", ".join(s.flags), lambda s: len(s.flags)),
    ("Tags", lambda s: ", ".join(s.tags), lambda s: ", ".join(s.tags)),
    ("Note", lambda s: s.note.splitlines()[0] if s.note else "", lambda s: s.note),
)
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
            return COLUMNS[index.column()][1](s)
        if role == SORT_ROLE:
            return COLUMNS[index.column()][2](s)
        if role == ID_ROLE:
            return s.id
        if role == Qt.ItemDataRole.ToolTipRole:
            if COLUMNS[index.column()][0] == "Status" and s.reason:
                return s.reason
            if COLUMNS[index.column()][0] == "Note" and s.note:
                return s.note
            return s.label
        if role == Qt.ItemDataRole.TextAlignmentRole and 9 <= index.column() <= 13:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if (
            role == Qt.ItemDataRole.ForegroundRole
            and COLUMNS[index.column()][0] == "Status"
            and s.status.value in ("failed", "interrupted")
        ):
            return QColor(theme.error_colours()[1] if theme.is_dark() else "#b00020")
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


class HistogramPlot(pg.PlotWidget):
    """Histogram of a run's per-call latencies with its p50 and p99."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        theme.watcher().register(self)
        item = self.getPlotItem()
        item.setLabel("bottom", "latency per call (ms)")
        item.setLabel("left", "calls")
        item.setMenuEnabled(False)
        self.counts: np.ndarray = np.zeros(0)
        self.log_x = False
        self._title("Latency histogram: select one run")
        self.setMinimumHeight(180)

    def _title(self, text: str) -> None:
        self.getPlotItem().setTitle(text, color=theme.foreground().name(), size="10pt")

    def set_latencies(
        self,
        latencies_ns: np.ndarray | None,
        p50_ns: float | None,
        p99_ns: float | None,
        why: str = "",
    ) -> None:
        item = self.getPlotItem()
        item.clear()
        if latencies_ns is None or len(latencies_ns) < 2:
            self.counts = np.zeros(0)
            self._title(f"Latency histogram: n/a — {why or 'no per-call latencies stored'}")
            return
        raw = np.asarray(latencies_ns, dtype=np.float64)
        raw = raw[np.isfinite(raw) & (raw > 0)]
        unit, scale = ("µs", 1e3) if float(np.median(raw)) < 1e6 else ("ms", 1e6)
        x = raw / scale
        hi = float(np.percentile(x, 99.9))  # a few far outliers would squash the histogram
        lo = float(x.min())
        if hi <= lo:
            hi = lo * 1.01 + 1e-9
        # a heavy tail (p99.9 far above the minimum) reads better on a log axis
        self.log_x = hi / lo > LOG_X_SPREAD
        axis = item.getAxis("bottom")
        axis.enableAutoSIPrefix(False)
        axis.setTicks(units.log_ticks(lo, hi) if self.log_x else None)
        item.setLabel("bottom", f"latency per call ({unit}{', log scale' if self.log_x else ''})")
        if self.log_x:
            edges = np.geomspace(lo, hi, HIST_BINS + 1)
            self.counts, _ = np.histogram(x, bins=edges)
            x0, x1 = np.log10(edges[:-1]), np.log10(edges[1:])
        else:
            self.counts, edges = np.histogram(x, bins=HIST_BINS, range=(lo, hi))
            x0, x1 = edges[:-1], edges[1:]
        item.addItem(
            pg.BarGraphItem(
                x0=x0,
                x1=x1,
                height=self.counts,
                brush=pg.mkBrush(theme.series_colour(0)),
                pen=pg.mkPen(None),
            )
        )
        for value, name in ((p50_ns, "p50"), (p99_ns, "p99")):
            if value is not None and value > 0:
                pos = math.log10(value / scale) if self.log_x else value / scale
                line = pg.InfiniteLine(
                    pos,
                    angle=90,
                    label=name,
                    pen=pg.mkPen(theme.series_colour(5), width=2),
                    labelOpts={"position": 0.9, "color": theme.foreground()},
                )
                item.addItem(line)
        x_ms = x
        beyond = int((x_ms > hi).sum())
        extra = f"; {beyond} calls beyond the range shown" if beyond else ""
        self._title(f"Latency histogram ({len(x_ms):,} calls{extra})")


def _energy_text(s: Any) -> str:
    text = units.energy_j(s.energy_per_item_j)
    if s.energy_per_item_j is not None and "estimate" in (s.energy_source or ""):
        return text + " (est.)"
    return text


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td style='padding-right:12px; vertical-align:top'><b>{html.escape(k)}</b></td>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='0' cellpadding='1'>{cells}</table>"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return [(prefix, ", ".join(str(v) for v in value))]
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(value, default=str))]
    return [(prefix, "n/a" if value is None else str(value))]


def run_summary_html(result: Any) -> str:
    """The details pane's first tab: status, figures, flags, energy, phases, note."""
    rows: list[tuple[str, str]] = [("Run", result.id), ("Status", result.status.value)]
    if result.reason:
        rows.append(("Reason", result.reason))
    rows += [
        ("Created", units.timestamp(result.created_at)),
        ("Finished", units.timestamp(result.finished_at) or "—"),
    ]
    if result.model is not None:
        rows.append(
            (
                "Model",
                f"{result.model.name} ({result.model.format}, sha256 {result.model.sha256[:12]}…)",
            )
        )
    thr = result.throughput_items_per_s
    if thr is not None:
        span = (
            f" [{units.number(thr.lo)}, {units.number(thr.hi)}]"
            if thr.lo is not None and thr.hi is not None
            else " (no interval)"
        )
        rows.append(("Throughput", units.with_unit(thr.value, "items/s") + span))
    lat = result.latency
    if lat is not None:
        rows.append(
            (
                "Latency mean",
                f"{units.duration_ns(lat.mean_ns)} "
                f"[{units.duration_ns(lat.mean_lo_ns)}, "
                f"{units.duration_ns(lat.mean_hi_ns)}]",
            )
        )
        for pe in lat.percentiles:
            span = (
                f" [{units.duration_ns(pe.lo_ns)}, {units.duration_ns(pe.hi_ns)}]"
                if pe.lo_ns is not None and pe.hi_ns is not None
                else " (no interval)"
            )
            rows.append((pe.name, units.duration_ns(pe.value_ns) + span))
        rows.append(
            (
                "ρ (rel. half-width)",
                f"{units.percent(lat.rho)} (target {units.percent(result.spec.target_epsilon)})",
            )
        )
        rows.append(("Samples", f"{lat.n:,} (n_eff {lat.n_eff:,.0f}, lag-1 r {lat.r1:.2f})"))
    rows.append(("Converged", "yes" if result.converged else "no"))
    rows.append(("Flags", ", ".join(result.flags) or "none"))
    if result.energy:
        for e in result.energy:
            est = " (estimate)" if e.is_estimate else ""
            rows.append(
                (
                    f"Energy {e.domain}{est}",
                    f"{units.energy_j(e.energy_per_item_j)}/inference, "
                    f"{units.number(e.items_per_j)} inferences/J, "
                    f"{units.power_w(e.avg_power_w)} avg — {e.source}, {e.scope}, "
                    f"{e.method}" + (f"; flags {', '.join(e.flags)}" if e.flags else ""),
                )
            )
    else:
        rows.append(("Energy", units.na(result.energy_na_reason)))
    ph = result.phases
    rows += [
        ("Worker start", units.duration_s(ph.worker_start_s)),
        ("Cold load", units.duration_s(ph.cold_load_s)),
        ("First call", units.duration_ns(ph.first_call_ns)),
        (
            "Warm-up",
            f"{ph.warmup_iterations} calls, {units.duration_s(ph.warmup_s)}, "
            f"{'steady' if ph.warmup_steady else 'not steady'}",
        ),
        ("Measurement", units.duration_s(ph.measure_s)),
        ("Harness efficiency η", units.percent(ph.harness_efficiency, 4)),
    ]
    tags = getattr(result, "tags", None)
    if tags:
        rows.append(("Tags", ", ".join(tags)))
    if result.notes:
        rows.append(("Note", result.notes))
    return _kv_table(rows)


class RunsPage(QWidget):
    """Every stored run: filter, sort, tag, note, delete, inspect, send to compare."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = RunsModel(self)
        self.proxy = RunsFilter(self)
        self.proxy.setSourceModel(self.model)
        self._detail_id: str | None = None
        self._loaded_once = False
        self._build()
        controller.runsListed.connect(self._on_runs_listed)
        controller.runsChanged.connect(self.refresh)
        controller.runLoaded.connect(self._on_run_loaded)
        controller.failed.connect(self._on_failed)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        filters = QHBoxLayout()
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search runs (model, device, tag, note, id)…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filters)
        filters.addWidget(self.search, 2)
        self.model_combo = self._combo("Model", filters)
        self.device_combo = self._combo("Device", filters)
        self.status_combo = self._combo("Status", filters)
        self.tag_combo = self._combo("Tag", filters)
        filters.addWidget(QLabel("Date:"))
        self.date_combo = QComboBox(self)
        for name, _span in DATE_WINDOWS:
            self.date_combo.addItem(name)
        self.date_combo.currentIndexChanged.connect(self._apply_filters)
        filters.addWidget(self.date_combo)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _i: self.edit_note())

        actions = QHBoxLayout()
        self.count_label = QLabel("", self)
        actions.addWidget(self.count_label, 1)
        self.tag_button = self._button("Add tag…", self.add_tag, actions)
        self.untag_button = self._button("Remove tag…", self.remove_tag, actions)
        self.note_button = self._button("Note…", self.edit_note, actions)
        self.delete_button = self._button("Delete…", self.delete_selected, actions)
        self.compare_button = self._button("Compare selected", self.compare_selected, actions)
        self.refresh_button = self._button("Refresh", self.refresh, actions)
        QShortcut(QKeySequence.StandardKey.Delete, self.table, self.delete_selected)

        self.banner = Banner(self)
        self.details_tabs = QTabWidget(self)
        self.summary_view = QTextBrowser(self.details_tabs)
        self.spec_view = QTextBrowser(self.details_tabs)
        self.system_view = QTextBrowser(self.details_tabs)
        self.details_tabs.addTab(self.summary_view, "Run")
        self.details_tabs.addTab(self.spec_view, "Spec")
        self.details_tabs.addTab(self.system_view, "System")
        self.histogram = HistogramPlot(self)
        details = QSplitter(Qt.Orientation.Horizontal, self)
        details.addWidget(self.details_tabs)
        details.addWidget(self.histogram)
        details.setSizes([600, 500])

        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(filters)
        tl.addWidget(self.table, 1)
        tl.addLayout(actions)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(top)
        splitter.addWidget(details)
        splitter.setSizes([480, 320])
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        self._show_empty_details()
        self._update_buttons()

    def _combo(self, name: str, layout: QHBoxLayout) -> QComboBox:
        layout.addWidget(QLabel(f"{name}:"))
        combo = QComboBox(self)
        combo.setAccessibleName(f"{name} filter")
        combo.addItem(ANY, "")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.currentIndexChanged.connect(self._apply_filters)
        layout.addWidget(combo)
        return combo

    def _button(self, text: str, slot: Any, layout: QHBoxLayout) -> QPushButton:
        button = QPushButton(text, self)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    # ------------------------------------------------------------------ listing
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded_once:
            self.refresh()

    def refresh(self) -> None:
        self.controller.refresh_runs()

    def _on_runs_listed(self, summaries: list[Any]) -> None:
        self._loaded_once = True
        selected = set(self.selected_ids())
        self.model.set_summaries(summaries)
        self._fill_combo(self.model_combo, sorted({s.model_ref for s in summaries}))
        self._fill_combo(self.device_combo, sorted({s.device for s in summaries}))
        self._fill_combo(self.status_combo, sorted({s.status.value for s in summaries}))
        self._fill_combo(self.tag_combo, sorted({t for s in summaries for t in s.tags}))
        self._apply_filters()
        if selected:
            self.select_ids(selected)
        self.table.resizeColumnsToContents()
        for col in range(len(COLUMNS)):
            if self.table.columnWidth(col) > 260:
                self.table.setColumnWidth(col, 260)

    @staticmethod
    def _fill_combo(combo: QComboBox, values: list[str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(ANY, "")
        for v in values:
            combo.addItem(v, v)
        index = combo.findData(current)
        combo.setCurrentIndex(max(0, index))
        combo.blockSignals(False)

    def _apply_filters(self, *_args: Any) -> None:
        span = DATE_WINDOWS[max(0, self.date_combo.currentIndex())][1]
        self.proxy.set_filters(
            model=self.model_combo.currentData() or "",
            device=self.device_combo.currentData() or "",
            status=self.status_combo.currentData() or "",
            tag=self.tag_combo.currentData() or "",
            since=datetime.now(UTC) - span if span is not None else None,
            text=self.search.text(),
        )
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == 0:
            self.count_label.setText("No runs stored yet: start one on the New run page.")
        elif shown == total:
            self.count_label.setText(f"{total} runs")
        else:
            self.count_label.setText(f"{shown} of {total} runs match the filters")
        self._update_buttons()

    # ------------------------------------------------------------------ selection
    def selected_ids(self) -> list[str]:
        rows = self.table.selectionModel().selectedRows()
        return [str(self.proxy.data(i, ID_ROLE)) for i in sorted(rows, key=lambda i: i.row())]

    def select_ids(self, ids: Sequence[str] | set[str]) -> None:
        wanted = set(ids)
        selection = self.table.selectionModel()
        selection.clearSelection()
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if self.proxy.data(index, ID_ROLE) in wanted:
                selection.select(
                    index, selection.SelectionFlag.Select | selection.SelectionFlag.Rows
                )

    def _on_selection(self, *_args: Any) -> None:
        ids = self.selected_ids()
        self._update_buttons()
        if len(ids) == 1:
            self._detail_id = ids[0]
            self.summary_view.setHtml("<p>Loading…</p>")
            self.controller.load_run(ids[0])
        else:
            self._detail_id = None
            self._show_empty_details(len(ids))

    def _update_buttons(self) -> None:
        n = len(self.selected_ids())
        for button in (self.tag_button, self.untag_button, self.delete_button):
            button.setEnabled(n >= 1)
        self.note_button.setEnabled(n == 1)
        self.compare_button.setEnabled(n >= 2)
        self.compare_button.setToolTip(
            "Select two or more runs (Ctrl+click) to compare them."
            if n < 2
            else "Open these runs in the compare view."
        )

    # ------------------------------------------------------------------ details
    def _show_empty_details(self, n: int = 0) -> None:
        text = f"{n} runs selected." if n > 1 else "Select a run to see its details."
        for view in (self.summary_view, self.spec_view, self.system_view):
            view.setHtml(f"<p>{text}</p>")
        self.histogram.set_latencies(None, None, None, "select one run")

    def _on_run_loaded(self, result: Any) -> None:
        if result.id != self._detail_id:
            return
        self.summary_view.setHtml(run_summary_html(result))
        self.spec_view.setHtml(_kv_table(_flatten(to_document(result.spec))))
        system = dict(result.system)
        self.system_view.setHtml(
            _kv_table(_flatten(system))
            if system
            else "<p>n/a — no system description was stored with this run.</p>"
        )
        lats = result.arrays.get("latencies_ns")
        lat = result.latency
        p50 = lat.percentile(0.5) if lat is not None else None
        p99 = lat.percentile(0.99) if lat is not None else None
        self.histogram.set_latencies(
            lats,
            p50.value_ns if p50 else None,
            p99.value_ns if p99 else None,
            result.reason or "no per-call latencies stored",
        )

    # ------------------------------------------------------------------ actions
    def add_tag(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        tag, ok = QInputDialog.getText(self, "Add tag", f"Tag for {len(ids)} run(s):")
        tag = tag.strip()
        if ok and tag:
            self.controller.add_tag(ids, tag)

    def remove_tag(self) -> None:
        ids = self.selected_ids()
        tags = sorted({t for s in self.model.summaries if s.id in ids for t in s.tags})
        if not ids:
            return
        if not tags:
            self.banner.show_message("The selected runs have no tags.", Level.INFO)
            return
        tag, ok = QInputDialog.getItem(self, "Remove tag", "Tag to remove:", tags, 0, False)
        if ok and tag:
            self.controller.remove_tag(ids, tag)

    def edit_note(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        current = next((s.note for s in self.model.summaries if s.id == ids[0]), "")
        text, ok = QInputDialog.getMultiLineText(self, "Note", "Note for this run:", current)
        if ok and text != current:
            self.controller.set_note(ids[0], text)

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        answer = QMessageBox.question(
            self,
            "Delete runs",
            f"Delete {len(ids)} run(s) with their measurements? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.delete_runs(ids)
            self.banner.show_message(f"Deleted {len(ids)} run(s).", Level.INFO)

    def selected_run_ids(self) -> list[str]:
        """The selected runs (the main window's compare shortcut reads this)."""
        return self.selected_ids()

    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) >= 2:
            self.controller.request_compare(ids)

    def _on_failed(self, what: str, message: str) -> None:
        if what in (
            "list runs",
            "load a run",
            "tag runs",
            "untag runs",
            "save a note",
            "delete runs",
        ):
            self.banner.show_message(f"Could not {what}: {message}", Level.ERROR)
