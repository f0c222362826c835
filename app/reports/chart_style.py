"""The look of the report's charts (matplotlib, Agg): style, figures, axes that read well.

Log axes are ticked by ``units.log_tick_values``, the rule the app's charts use too; linear
axes are labelled as plain numbers; long labels are wrapped; legends of many entries go
below the plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from wattbench.domain import units

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.figure import Figure

# Colour-blind-safe palette (Okabe–Ito), dark enough on white paper.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#8C564B",
)
NA_COLOUR = "#9a9a9a"
WIDTH_IN = 7.0
MAX_LABEL_CHARS = 48
MAX_LOG_LABELS = 10  # a log axis labels its 2s and 5s too while it has no more ticks than this
INSIDE_LEGEND = 3  # a legend of more entries goes below the plot
WRAP_CHARS = 30  # a bar's label longer than this goes on two lines
LegendPlace = Literal["best", "lower right"]


def mpl_text(s: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A user string made safe for matplotlib: no mathtext, no hidden '_' legend labels."""
    s = " ".join(str(s).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("\\", "\\\\").replace("$", r"\$")
    if s.startswith("_"):
        s = "\u200b" + s  # matplotlib hides legend entries whose label starts with "_"
    return s


def setup() -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays <text>, escaped by matplotlib's XML writer
            "svg.hashsalt": "wattbench",  # stable ids run to run
            "font.family": "DejaVu Sans",
            "font.size": 8.5,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#dddddd",
            "grid.linewidth": 0.6,
            "legend.fontsize": 7.5,
            "legend.frameon": False,
        }
    )


def new_figure(height_in: float) -> Figure:
    setup()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    FigureCanvasAgg(fig)  # a canvas that can measure text before the figure is saved
    return fig


def text_renderer(fig: Figure) -> RendererAgg:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    assert isinstance(fig.canvas, FigureCanvasAgg)
    return fig.canvas.get_renderer()


def plain_numbers(axis: Axis) -> None:
    """Tick labels of a linear axis as plain numbers: '20,000', never '2e4' or an offset."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: units.tick_label(v)))


def log_axis(ax: Axes, which: str, lo: float, hi: float, values: Sequence[float] = ()) -> None:
    """A log axis from ``lo`` to ``hi`` ticked by ``units.log_tick_values`` (the app's rule):
    at the data ``values`` when they are a few (a batch axis reads 1, 8, 32), else 1-2-5."""
    from matplotlib.ticker import NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)
    major, minor = units.log_tick_values(lo, hi, values)
    axis.set_ticks([v for v, _ in major], [t for _, t in major])
    if minor and len(major) + len(minor) <= MAX_LOG_LABELS:
        axis.set_ticks([v for v, _ in minor], [t for _, t in minor], minor=True)
    else:
        axis.set_ticks([v for v, _ in minor], minor=True)
        axis.set_minor_formatter(NullFormatter())


def wrap_label(label: str, width: int = WRAP_CHARS) -> str:
    """A long configuration label on two lines, broken between its ' · ' parts."""
    text = mpl_text(label, width * 2)
    if len(text) <= width:
        return text
    parts, lines = text.split(" · "), [""]
    for part in parts:
        joined = f"{lines[-1]} · {part}" if lines[-1] else part
        if len(joined) <= width or not lines[-1]:
            lines[-1] = joined
        else:
            lines.append(part)
    if len(lines) > 2:
        lines = [lines[0], mpl_text(" · ".join(lines[1:]), width)]
    return "\n".join(lines)


def legend_height(entries: int) -> float:
    """The extra figure height (in) a legend below the plot takes (``_legend``)."""
    return 0.0 if entries <= INSIDE_LEGEND else 0.2 + 0.16 * math.ceil(entries / 2)


def legend(fig: Figure, ax: Axes, entries: int, inside: LegendPlace) -> None:
    """A few entries in the plot (at ``inside``); more below it in two columns, where they
    cannot cover the curves."""
    if entries == 0:
        return
    if entries <= INSIDE_LEGEND:
        ax.legend(loc=inside)
    else:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2)
