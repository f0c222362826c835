"""Colours that follow the light/dark palette, for widgets and pyqtgraph plots.

The palette is the system's, or a light or dark one the user chose (View ▸ Theme, `--theme`,
$WATTBENCH_THEME; ``apply_theme``). pyqtgraph draws with its own global background/foreground;
plots registered here are re-coloured whenever the application palette changes, so charts stay
readable in both modes. Every custom colour (verdicts, banners, states) has a light and a dark
variant chosen for a text contrast of at least 4.5:1 on the palette's background
(``contrast_ratio``).
"""

from __future__ import annotations

import inspect
import logging
import os
import weakref
from collections.abc import Callable, Iterator, Mapping

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

# verdict word -> (colour on a light palette, colour on a dark one)
_VERDICTS: dict[str, tuple[str, str]] = {
    "faster": ("#1a7f37", "#4cc38a"),
    "better": ("#1a7f37", "#4cc38a"),
    "slower": ("#c62828", "#ff7b72"),
    "worse": ("#c62828", "#ff7b72"),
    "equivalent": ("#2f5f9e", "#79b8ff"),
    "inconclusive": ("#5f6368", "#a8adb3"),
    "unreliable": ("#8a5a00", "#e3b341"),
}
WARNING_TEXT = ("#8a5a00", "#e3b341")  # a finished run whose figures carry a caveat

THEMES = ("system", "light", "dark")
THEME_ENV = "WATTBENCH_THEME"
MIN_TEXT_CONTRAST = 4.5  # WCAG AA for normal text

_LIGHT_ROLES = {
    "Window": "#f3f3f3", "WindowText": "#1b1b1b", "Base": "#ffffff", "AlternateBase": "#f4f6f9",
    "Text": "#1b1b1b", "Button": "#ececec", "ButtonText": "#1b1b1b", "BrightText": "#ffffff",
    "Highlight": "#2f6fb8", "HighlightedText": "#ffffff", "ToolTipBase": "#ffffdc",
    "ToolTipText": "#1b1b1b", "PlaceholderText": "#6b6f75", "Link": "#0b57b0",
    "LinkVisited": "#6b3fa0", "Light": "#ffffff", "Midlight": "#e3e3e3", "Mid": "#b8b8b8",
    "Dark": "#9f9f9f", "Shadow": "#767676",
}  # fmt: skip
_DARK_ROLES = {
    "Window": "#202124", "WindowText": "#e8eaed", "Base": "#17181a", "AlternateBase": "#26272a",
    "Text": "#e8eaed", "Button": "#2d2e31", "ButtonText": "#e8eaed", "BrightText": "#ffffff",
    "Highlight": "#3d6fb4", "HighlightedText": "#ffffff", "ToolTipBase": "#2d2e31",
    "ToolTipText": "#e8eaed", "PlaceholderText": "#9aa0a6", "Link": "#8ab4f8",
    "LinkVisited": "#c58af9", "Light": "#4a4b4f", "Midlight": "#3a3b3e", "Mid": "#2a2b2e",
    "Dark": "#111214", "Shadow": "#000000",
}  # fmt: skip
_DISABLED_TEXT = {"light": "#8e9297", "dark": "#6f7378"}  # greyed, as real themes do
_system: tuple[str, QPalette] | None = None  # the style and palette the app started with
_chosen = "system"


def is_dark(palette: QPalette | None = None) -> bool:
    pal = palette or QApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def _variant(pair: tuple[str, str]) -> str:
    return pair[1] if is_dark() else pair[0]


def verdict_colour(kind: str | None) -> str | None:
    """The text colour of a verdict word ("faster", "slower", …; "unreliable: why" counts as
    unreliable) on the current palette, or None for a word without one."""
    word = (kind or "").split(":", 1)[0].strip()
    pair = _VERDICTS.get(word)
    return _variant(pair) if pair is not None else None


class _VerdictColours(Mapping[str, str]):
    """The verdict colours of the current palette, looked up when read."""

    def __getitem__(self, key: str) -> str:
        return _variant(_VERDICTS[key])

    def __iter__(self) -> Iterator[str]:
        return iter(_VERDICTS)

    def __len__(self) -> int:
        return len(_VERDICTS)


VERDICT_COLOURS: Mapping[str, str] = _VerdictColours()


def warning_text() -> str:
    """Text colour of a caveat (a run that finished but did not converge, or is unreliable)."""
    return _variant(WARNING_TEXT)


def relative_luminance(colour: QColor | str) -> float:
    """WCAG 2 relative luminance of an opaque colour."""
    c = QColor(colour)

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def contrast_ratio(a: QColor | str, b: QColor | str) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (none) to 21 (black on white)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def theme_palette(name: str) -> QPalette:
    """The light or dark palette Wattbench draws with when one is chosen."""
    roles = _DARK_ROLES if name == "dark" else _LIGHT_ROLES
    pal = QPalette()
    for role, colour in roles.items():
        pal.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    disabled = QColor(_DISABLED_TEXT["dark" if name == "dark" else "light"])
    for text_role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, text_role, disabled)
    return pal


def theme_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The theme $WATTBENCH_THEME names, or None when it is unset or not one of THEMES."""
    value = (os.environ if environ is None else environ).get(THEME_ENV, "").strip().lower()
    if value and value not in THEMES:
        log.warning("ignoring %s=%r: use one of %s", THEME_ENV, value, ", ".join(THEMES))
    return value if value in THEMES else None


def current_theme() -> str:
    """The theme last applied ("system" until one is chosen)."""
    return _chosen


def apply_theme(name: str) -> None:
    """Draw with the system's palette ("system"), or Wattbench's light or dark one (Fusion
    style, so the palette is honoured everywhere). Widgets hear a palette change."""
    global _system, _chosen
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; themes: {', '.join(THEMES)}")
    app = QApplication.instance()
    assert isinstance(app, QApplication), "apply_theme needs the QApplication"
    if _system is None:
        _system = (app.style().name(), QPalette(app.palette()))
    _chosen = name
    if name == "system":
        app.setStyle(_system[0])
        app.setPalette(_system[1])
    else:
        app.setStyle("Fusion")
        app.setPalette(theme_palette(name))


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


def info_colours() -> tuple[str, str]:
    return ("#17324a", "#d6ecff") if is_dark() else ("#e8f1fb", "#0b3a66")


def error_text() -> str:
    """Text colour of a failure on the palette's background (not on a banner)."""
    return "#ff8a80" if is_dark() else "#b00020"


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
    legend = item.legend
    if legend is not None:  # made in the palette of its time: its fill and text follow
        fill = legend.brush().color()
        if fill.alpha() > 0:
            colour = background()
            colour.setAlpha(fill.alpha())
            legend.setBrush(pg.mkBrush(colour))
        legend.setLabelTextColor(fg)
        for _sample, label in legend.items:
            label.setText(label.text)
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
