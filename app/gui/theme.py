"""Colours that follow the system's light/dark palette, for widgets and pyqtgraph plots.

pyqtgraph draws with its own global background/foreground; plots registered here are
re-coloured whenever the application palette changes, so charts stay readable in both modes.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QObject
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

log = logging.getLogger(__name__)

# Colour-blind-safe series colours (Okabe–Ito), readable on light and dark backgrounds.
SERIES_COLOURS = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#CC79A7",  # purple
    "#56B4E9",  # sky
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#999999",  # grey
)
DARK_SERIES_COLOURS = (
    "#56B4E9",
    "#E69F00",
    "#2BD19A",
    "#E58FC3",
    "#8FD0FF",
    "#FF7A33",
    "#F0E442",
    "#BBBBBB",
)

VERDICT_COLOURS = {
    "faster": "#1a9850",
    "better": "#1a9850",
    "slower": "#d73027",
    "worse": "#d73027",
    "equivalent": "#4575b4",
    "inconclusive": "#8c8c8c",
}


def is_dark(palette: QPalette | None = None) -> bool:
    pal = palette or QApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def series_colour(index: int) -> QColor:
    colours = DARK_SERIES_COLOURS if is_dark() else SERIES_COLOURS
    return QColor(colours[index % len(colours)])


def background() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.Base)


def foreground() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.WindowText)


def muted() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.PlaceholderText)


def warning_colours() -> tuple[str, str]:
    """(background, text) of a warning banner for the current palette."""
    return ("#5a4a12", "#ffe9a8") if is_dark() else ("#fff4ce", "#5c4400")


def error_colours() -> tuple[str, str]:
    return ("#5c1f1f", "#ffd6d6") if is_dark() else ("#fde7e9", "#8a1c1c")


def ok_colour() -> str:
    return "#4cc38a" if is_dark() else "#1a7f4b"


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options taken from the palette (before plots are created)."""
    pg.setConfigOptions(
        antialias=True,
        background=background(),
        foreground=foreground(),
        useOpenGL=False,
    )


def style_plot(plot: pg.PlotWidget | pg.PlotItem) -> None:
    """Apply the palette to one plot: background, axes, text, grid."""
    fg = foreground()
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    if isinstance(plot, pg.PlotWidget):
        plot.setBackground(background())
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
        if axis.label.isVisible():
            axis.labelStyle["color"] = fg.name()
            axis.setLabel(axis.labelText, axis.labelUnits, **axis.labelStyle)
    item.showGrid(x=True, y=True, alpha=0.18)
    title = item.titleLabel
    if title is not None and title.text:
        title.setText(title.text, color=fg.name())


class ThemeWatcher(QObject):
    """Re-styles registered plots and calls hooks when the application palette changes.

    The main window calls refresh() on its PaletteChange event (no application-wide event
    filter: that would run Python on every event and slow the event loop).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plots: weakref.WeakSet[pg.PlotWidget] = weakref.WeakSet()
        self._hooks: list[Callable[[], Callable[[], None] | None]] = []
        self._dark: bool | None = None

    def register(self, plot: pg.PlotWidget) -> None:
        self._plots.add(plot)
        style_plot(plot)

    def on_change(self, hook: Callable[[], None]) -> None:
        """Call hook() after a palette change; a bound method is held weakly (pages come and
        go), and a hook whose widget was deleted is dropped."""
        if inspect.ismethod(hook):
            self._hooks.append(weakref.WeakMethod(hook))
        else:
            self._hooks.append(lambda: hook)

    def refresh(self, *, force: bool = False) -> None:
        dark = is_dark()
        if dark == self._dark and not force:
            return
        self._dark = dark
        configure_pyqtgraph()
        for plot in list(self._plots):
            try:
                style_plot(plot)
            except RuntimeError:  # the C++ side is gone
                continue
        alive: list[Callable[[], Callable[[], None] | None]] = []
        for ref in self._hooks:
            hook = ref()
            if hook is None:
                continue
            try:
                hook()
            except RuntimeError:  # its widget's C++ side is gone
                log.debug("dropping a theme hook of a deleted widget")
                continue
            alive.append(ref)
        self._hooks = alive


_watcher: ThemeWatcher | None = None


def watcher() -> ThemeWatcher:
    """The application's one theme watcher."""
    global _watcher
    if _watcher is None:
        _watcher = ThemeWatcher(QApplication.instance())
    return _watcher


def make_plot(
    parent: QWidget | None = None, *, title: str = "", left: str = "", bottom: str = ""
) -> pg.PlotWidget:
    """A PlotWidget styled from the palette and re-styled when it changes."""
    plot = pg.PlotWidget(parent=parent)
    item = plot.getPlotItem()
    if title:
        item.setTitle(title)
    if left:
        item.setLabel("left", left)
    if bottom:
        item.setLabel("bottom", bottom)
    item.setMenuEnabled(True)
    watcher().register(plot)
    return plot
