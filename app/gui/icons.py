"""Icons from the package's SVG resources, drawn in the palette's text colour.

The line icons use ``currentColor``; it is replaced with the current palette's text colour so
they stay visible in light and dark modes. Rendered icons are cached per colour.
"""

from __future__ import annotations

import functools
import logging
from importlib import resources

from PySide6.QtCore import QByteArray, QObject, QRectF, Qt
from PySide6.QtGui import QAction, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractButton, QApplication

log = logging.getLogger(__name__)

SIZES = (16, 24, 32, 48)


@functools.cache
def _svg_text(name: str) -> str:
    return (resources.files("wattbench.resources") / f"{name}.svg").read_text(encoding="utf-8")


@functools.cache
def _render(name: str, colour: str) -> QIcon:
    data = QByteArray(_svg_text(name).replace("currentColor", colour).encode("utf-8"))
    renderer = QSvgRenderer(data)
    icon = QIcon()
    if not renderer.isValid():
        log.warning("icon %s is not a valid SVG", name)
        return icon
    for size in SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        icon.addPixmap(pixmap)
    return icon


_names: dict[int, str] = {}  # QIcon.cacheKey() -> icon name, to draw it again in a new palette


def icon(name: str) -> QIcon:
    """The icon `name` (file resources/<name>.svg) in the palette's text colour."""
    colour = QApplication.palette().color(QPalette.ColorRole.WindowText).name()
    try:
        drawn = _render(name, colour)
    except (FileNotFoundError, OSError):
        log.warning("missing icon %s", name)
        return QIcon()
    _names[drawn.cacheKey()] = name
    return drawn


def recolour(root: QObject) -> None:
    """Draw the icons of every button and action under ``root`` again in the palette's
    text colour (after a palette change: icons are pictures, they do not follow it)."""
    holders: list[QAbstractButton | QAction] = [
        *root.findChildren(QAbstractButton),
        *root.findChildren(QAction),
    ]
    for holder in holders:
        name = _names.get(holder.icon().cacheKey())
        if name is not None:
            holder.setIcon(icon(name))


def app_icon() -> QIcon:
    try:
        return _render("wattbench", "#000000")
    except (FileNotFoundError, OSError):
        return QIcon()
