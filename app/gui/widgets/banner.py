"""A message strip (info, warning, error) shown in place, above or beside what it is about."""

from __future__ import annotations

import html
import logging
from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget
from wattbench.gui import theme

log = logging.getLogger(__name__)


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Banner(QFrame):
    """A coloured, word-wrapped, selectable message; hidden while empty.

    With ``fold`` set, a message of more lines than that shows its first ``fold`` lines and a
    link that unfolds the rest (and folds them again), so a long list never buries the page.
    """

    def __init__(self, parent: QWidget | None = None, *, fold: int | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self._label = QLabel(self)
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self._label.setTextFormat(Qt.TextFormat.RichText)
        self._label.linkActivated.connect(self._on_link)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self._label)
        self._level = Level.INFO
        self._lines: list[str] = []
        self.fold = fold
        self.unfolded = False
        theme.watcher().on_change(self.restyle)
        self.hide()

    @property
    def text(self) -> str:
        """The plain text shown (for tests and accessibility)."""
        return "\n".join(self._lines)

    @property
    def level(self) -> Level:
        return self._level

    @property
    def hidden_lines(self) -> int:
        """How many lines are folded away now."""
        if self.fold is None or self.unfolded or len(self._lines) <= self.fold + 1:
            return 0
        return len(self._lines) - self.fold

    def show_message(self, text: str | list[str], level: Level = Level.INFO) -> None:
        lines = [text] if isinstance(text, str) else list(text)
        self._lines = [line for line in lines if line]
        self._level = level
        self.unfolded = False
        if not self._lines:
            self.clear()
            return
        self._render()
        self._label.setAccessibleDescription(self.text)
        self.restyle()
        self.show()

    def _render(self) -> None:
        hidden = self.hidden_lines
        shown = self._lines[: len(self._lines) - hidden]
        if len(self._lines) == 1:
            body = html.escape(self._lines[0]).replace("\n", "<br>")
        else:
            body = (
                "<ul style='margin:0; -qt-list-indent:1'>"
                + "".join(f"<li>{html.escape(line)}</li>" for line in shown)
                + "</ul>"
            )
        _bg, fg = self._colours()
        link = f"<a href='{{}}' style='color:{fg}'><b>{{}}</b></a>"
        if hidden:
            body += link.format("unfold", f"Show {hidden} more…")
        elif self.fold is not None and len(self._lines) > self.fold + 1:
            body += link.format("fold", "Show fewer")
        self._label.setText(body)

    def _on_link(self, href: str) -> None:
        self.unfolded = href == "unfold"
        self._render()

    def clear(self) -> None:
        self._lines = []
        self._label.clear()
        self.hide()

    def _colours(self) -> tuple[str, str]:
        if self._level is Level.ERROR:
            return theme.error_colours()
        if self._level is Level.WARNING:
            return theme.warning_colours()
        return theme.info_colours()

    def restyle(self) -> None:
        bg, fg = self._colours()
        if self._lines:
            self._render()  # the link takes the text colour
        self.setStyleSheet(
            f"QFrame#banner {{ background: {bg}; border-radius: 6px; }}"
            f"QFrame#banner QLabel {{ color: {fg}; }}"
        )
