"""The compare view's verdict board: per question the best configuration, its figure, its ratio
to the baseline and the runner-up, in a compact table; the once-only "why" lines under it.

The board itself (who wins, on which basis) is the engine's, reached through the service's
ComparisonView; this widget only lays it out. Measured, estimated and hardware-only answers are
ranked apart by the engine and labelled here in their own column, estimates in italics.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from wattbench.gui import theme
from wattbench.gui.widgets.chart_slot import LINE_CHARS, one_line
from wattbench.gui.widgets.comparison_text import short_labels, shorten
from wattbench.service.workbench import ComparisonView

log = logging.getLogger(__name__)

HEADERS = ("Question", "Best", "Figure", "vs baseline", "Runner-up", "Basis")
COL_QUESTION, COL_BEST, COL_FIGURE, COL_RATIO, COL_RUNNER_UP, COL_BASIS = range(len(HEADERS))
SUPERSCRIPTS = "¹²³⁴⁵⁶⁷⁸⁹"  # the board's footnote marks
BASIS_TIPS = {
    "measured": "Ranked on measured figures.",
    "estimate": "Ranked on estimates (e.g. energy from a TDP × load model), apart from "
    "measured figures: indicative, not measured.",
    "hardware only": "Only the amortised hardware part of the cost: no energy figure was "
    "available, so electricity is left out.",
}


def short_line(line: str) -> str:
    """A why-line cut to one line: a footnote keeps its mark and first clause ("² no power
    sensor can be read here"); "Not ranked: …" keeps who, each with the first word of why."""
    if line.startswith("Not ranked: "):
        who = [part.split(" (")[0] for part in line.removeprefix("Not ranked: ").split("; ")]
        text = "Not ranked: " + "; ".join(w.rstrip(".") for w in who) + "."
        return text if len(text) <= 2 * LINE_CHARS else text[: 2 * LINE_CHARS - 1] + "…"
    mark = line[0] if line[:1] in SUPERSCRIPTS else ""
    return mark + " " + one_line(line[len(mark) :].strip()) if mark else one_line(line)


def _size_columns(header: QHeaderView) -> None:
    """Every column as wide as its text, but the runner-up: it takes the rest."""
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(COL_RUNNER_UP, QHeaderView.ResizeMode.Stretch)


class VerdictBoard(QWidget):
    """The board as a table sized to its rows, and the why-lines under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(HEADERS), self)
        self.table.setObjectName("verdict-board")
        self.table.setAccessibleName("Verdict board")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setWordWrap(False)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # never scrolled sideways: the runner-up column takes what is left, elided (in full
        # in its tooltip)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        header = self.table.horizontalHeader()
        _size_columns(header)
        self.why = QLabel(self)
        self.why.setObjectName("verdict-board-why")
        self.why.setWordWrap(True)
        self.why.setTextFormat(Qt.TextFormat.RichText)
        self.why.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.table)
        layout.addWidget(self.why)
        self.rows: list[tuple[str, ...]] = []  # the cells shown, as text (tests, accessibility)
        self._view: ComparisonView | None = None
        theme.watcher().on_change(self._recolour)

    def set_view(self, view: ComparisonView) -> None:
        """Show the view's board (hidden when the comparison has none)."""
        self._view = view
        board = view.board
        self.table.clearSpans()
        self.rows = []
        if board is None:
            self.table.setRowCount(0)
            self.why.clear()
            self.setVisible(False)
            return
        names = short_labels(view)  # the configurations named as the charts name them
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # sized once, at the end
        self.table.setRowCount(len(board.answers))
        for row, answer in enumerate(board.answers):
            question, *rest = answer.cells()
            cells = (answer.title, *(shorten(c, names) for c in rest), answer.basis)
            self.rows.append(cells)
            for col, text in enumerate(cells):
                # "n/a (baseline: no estimate figure)": n/a, the why in the tooltip
                shown = "n/a" if col == COL_RATIO and text.startswith("n/a (") else text
                item = QTableWidgetItem(shown)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
            first = self._cell(row, COL_QUESTION)
            bold = QFont(first.font())
            bold.setBold(True)
            first.setFont(bold)
            first.setToolTip(answer.note or question)
            self._cell(row, COL_BASIS).setToolTip(
                BASIS_TIPS.get(answer.basis, answer.note or answer.basis)
            )
            if answer.basis != "measured":  # estimates and lower bounds in italics
                for col in range(len(HEADERS)):
                    cell = self._cell(row, col)
                    italic = QFont(cell.font())
                    italic.setItalic(True)
                    cell.setFont(italic)
            if answer.winner is None:  # n/a with its footnote mark; the reason is said once
                for col in range(COL_BEST, len(HEADERS)):
                    self._cell(row, col).setToolTip(answer.na_reason or "n/a")
                self.table.setSpan(row, COL_FIGURE, 1, COL_BASIS - COL_FIGURE)
        self._recolour()
        _size_columns(header)
        lines = [shorten(line, names) for line in board.footnote_lines()]
        self.why.setText("".join(f"<div>{html.escape(short_line(line))}</div>" for line in lines))
        self.why.setToolTip("\n".join(lines))  # the lines in full
        self.why.setVisible(bool(lines))
        self._refit()
        self.setVisible(True)

    def _recolour(self) -> None:
        """The ratio column in the verdict's colour, for the palette now in use."""
        view = self._view
        if view is None:
            return
        board = view.board
        if board is None:
            return
        muted = QBrush(theme.muted())
        for row, answer in enumerate(board.answers):
            if answer.winner is None:
                for col in range(COL_BEST, len(HEADERS)):
                    self._cell(row, col).setForeground(muted)
                continue
            ratio = answer.winner.ratio
            colour = theme.verdict_colour(ratio.kind if ratio is not None else None)
            self._cell(row, COL_RATIO).setForeground(
                QBrush(QColor(colour)) if colour else QBrush(theme.foreground())
            )
        self.why.setStyleSheet(f"color: {theme.muted().name()};")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            QTimer.singleShot(0, self._refit)  # rows change height with the style

    def _refit(self) -> None:
        self.table.resizeRowsToContents()
        self._fit_height()

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.table.item(row, col)
        assert item is not None, (row, col)
        return item

    def _fit_height(self) -> None:
        """As tall as its rows: the board is read whole, never scrolled."""
        height = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(height)

    def ratio_colour(self, row: int) -> QColor:
        """The text colour of a row's ratio cell (tests check its contrast)."""
        return self._cell(row, COL_RATIO).foreground().color()
