"""Where a chart has nothing to draw, one line that says why instead of an empty plot.

``ChartSlot`` holds a chart and a line of text and shows one of them. ``fold_empty`` does the
same for a grid of bar charts: the charts with figures fill the grid, two to a row, and the
ones without are named, each with its reason, in one line apiece above it; a chart alone on the
last row spans it.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from typing import cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QStackedWidget, QWidget
from wattbench.gui import theme

log = logging.getLogger(__name__)

LINE_CHARS = 120


def one_line(text: str, limit: int = LINE_CHARS) -> str:
    """A reason cut to one line (whole when it fits): its first clause and its last one
    ("no power sensor can be read here (amdsmi: …); the figures shown are a TDP × load
    estimate" reads "no power sensor can be read here … the figures shown are a TDP × load
    estimate"), or just the first when both do not fit."""
    whole = text.strip()
    if len(whole) <= limit:
        return whole
    first = re.split(r"(?<=\w)[.;]\s|\s\(|:\s", whole, maxsplit=1)[0].strip() or whole
    parts = re.split(r"[;:]\s|\)\s", whole)
    last = parts[-1].strip().rstrip(".") if len(parts) > 1 else ""
    if last and first not in last and last not in first and len(first) + len(last) + 3 <= limit:
        return f"{first} … {last}"
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def note_html(lines: Sequence[str]) -> str:
    """Lines of muted text, one per chart that is not drawn."""
    colour = theme.muted().name()
    return "".join(f"<div style='color:{colour}'>{html.escape(line)}</div>" for line in lines)


class ChartSlot(QStackedWidget):
    """A chart, or in its place one centred line saying why there is nothing to draw."""

    def __init__(self, chart: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart = chart
        self.note = QLabel(self)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addWidget(chart)
        self.addWidget(self.note)
        self._why = ""
        theme.watcher().on_change(self._recolour)

    @property
    def why(self) -> str:
        """The line shown instead of the chart ("" while the chart is shown)."""
        return self._why

    def show_chart(self) -> None:
        self._why = ""
        self.setCurrentWidget(self.chart)

    def show_note(self, text: str) -> None:
        self._why = text
        self._recolour()
        self.setCurrentWidget(self.note)

    def _recolour(self) -> None:
        self.note.setText(note_html([self._why]) if self._why else "")


def fold_empty(
    grid: QWidget, charts: Mapping[str, QWidget], drawn: Sequence[str], columns: int = 2
) -> None:
    """Lay the drawn charts (by name, in order) out in ``grid``'s QGridLayout, ``columns`` to
    a row, and hide the others."""
    layout = grid.layout()
    assert isinstance(layout, QGridLayout)
    wanted = {
        name: (
            i // columns,
            i % columns,
            1,
            columns if i == len(drawn) - 1 and i % columns == 0 else 1,
        )
        for i, name in enumerate(drawn)
    }
    if all(
        (name in wanted) == (not chart.isHidden())
        and (name not in wanted or _position(layout, chart) == wanted[name])
        for name, chart in charts.items()
    ):
        return  # laid out so already: moving charts about is what is slow
    for chart in charts.values():
        layout.removeWidget(chart)
        chart.setVisible(False)
    for name in drawn:  # the last row's only chart spans the row
        layout.addWidget(charts[name], *wanted[name])
        charts[name].setVisible(True)
    for col in range(columns):  # equal columns, whatever was laid out before
        layout.setColumnStretch(col, 1)
    for row in range(layout.rowCount()):
        layout.setRowStretch(row, 1 if row <= (len(drawn) - 1) // columns else 0)


def _position(layout: QGridLayout, widget: QWidget) -> tuple[int, int, int, int] | None:
    index = layout.indexOf(widget)
    if index < 0:
        return None
    # (row, column, row span, column span); the binding types it as a bare object
    position: object = layout.getItemPosition(index)
    return cast(tuple[int, int, int, int], tuple(cast(Sequence[int], position)))
