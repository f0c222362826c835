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
    """A coloured, word-wrapped, selectable message; hidden while empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self._label = QLabel(self)
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._label.setTextFormat(Qt.TextFormat.RichText)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self._label)
        self._level = Level.INFO
        self._lines: list[str] = []
        self.hide()

    @property
    def text(self) -> str:
        """The plain text shown (for tests and accessibility)."""
        return "\n".join(self._lines)

    @property
    def level(self) -> Level:
        return self._level

    def show_message(self, text: str | list[str], level: Level = Level.INFO) -> None:
        lines = [text] if isinstance(text, str) else list(text)
        self._lines = [line for line in lines if line]
        self._level = level
        if not self._lines:
            self.clear()
            return
        if len(self._lines) == 1:
            body = html.escape(self._lines[0]).replace("\n", "<br>")
        else:
            body = (
                "<ul style='margin:0; -qt-list-indent:1'>"
                + "".join(f"<li>{html.escape(line)}</li>" for line in self._lines)
                + "</ul>"
            )
        self._label.setText(body)
        self._label.setAccessibleDescription(self.text)
        self.restyle()
        self.show()

    def clear(self) -> None:
        self._lines = []
        self._label.clear()
        self.hide()

    def restyle(self) -> None:
        if self._level is Level.ERROR:
            bg, fg = theme.error_colours()
        elif self._level is Level.WARNING:
            bg, fg = theme.warning_colours()
        else:
            bg, fg = ("#17324a", "#d6ecff") if theme.is_dark() else ("#e8f1fb", "#0b3a66")
        self.setStyleSheet(
            f"QFrame#banner {{ background: {bg}; border-radius: 6px; }}"
            f"QFrame#banner QLabel {{ color: {fg}; }}"
        )
