"""Report charts drawn with matplotlib (Agg, never Qt), returned as SVG text or PNG bytes.

Each chart draws the plain data ``reports.series`` builds (the same the GUI's charts draw), so
it can be tested without runs. matplotlib is imported inside functions: importing this module
costs nothing.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from wattbench.reports.series import Bar, Point, Series

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

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
MAX_CURVE_POINTS = 600
MAX_TRACE_POINTS = 1500


@dataclass
class Chart:
    """A drawn chart: its title, a caption in words, and the figure in both formats."""

    key: str
    title: str
    caption: str
    svg: str
    png: bytes = field(repr=False)
    width_in: float = WIDTH_IN
    height_in: float = 3.0


def mpl_text(s: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A user string made safe for matplotlib: no mathtext, no hidden '_' legend labels."""
    s = " ".join(str(s).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("\\", "\\\\").replace("$", r"\$")
    if s.startswith("_"):
        s = "\u200b" + s  # matplotlib hides legend entries whose label starts with "_"
    return s


def _setup() -> None:
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


def _new_figure(height_in: float) -> Figure:
    _setup()
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def _finish(fig: Figure, key: str, title: str, caption: str, png_dpi: int) -> Chart:
    """SVG always; PNG at `png_dpi` (0: no PNG, for renderings that only embed SVG)."""
    svg_buf = io.StringIO()
    fig.savefig(svg_buf, format="svg", metadata={"Date": None})
    png_buf = io.BytesIO()
    if png_dpi > 0:
        fig.savefig(png_buf, format="png", dpi=png_dpi, metadata={"Software": None})
    svg = svg_buf.getvalue()
    start = svg.find("<svg")
    w, h = fig.get_size_inches()
    return Chart(key, title, caption, svg[start:], png_buf.getvalue(), float(w), float(h))


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    mag = math.floor(math.log10(abs(v)))
    digits = max(0, 2 - mag)
    return f"{v:,.{digits}f}"


def bar_chart(
    key: str,
    title: str,
    unit: str,
    bars: Sequence[Bar],
    *,
    higher_is_better: bool,
    png_dpi: int = 250,
) -> Chart:
    """Horizontal bars with 95 % interval error bars; n/a bars say why instead of drawing 0."""
    height = max(1.6, 0.55 + 0.32 * len(bars))
    fig = _new_figure(height)
    ax = fig.add_subplot()
    ys = np.arange(len(bars))[::-1]
    known = [b for b in bars if b.value is not None]
    xmax = max([(b.hi if b.hi is not None else b.value) or 0.0 for b in known] + [0.0])
    xmax = xmax * 1.28 if xmax > 0 else 1.0
    for y, b in zip(ys, bars, strict=True):
        if b.value is None:
            ax.text(
                xmax * 0.01,
                y,
                mpl_text(f"n/a — {b.na_reason or 'not measured'}", 90),
                va="center",
                ha="left",
                color="#555555",
                fontstyle="italic",
                fontsize=7.5,
            )
            continue
        colour = NA_COLOUR if b.estimate else (PALETTE[1] if b.baseline else PALETTE[0])
        ax.barh(
            y,
            b.value,
            height=0.62,
            color=colour,
            hatch="///" if b.estimate else None,
            edgecolor="white" if not b.estimate else "#555555",
            linewidth=0.5,
        )
        if b.lo is not None and b.hi is not None:
            ax.errorbar(
                b.value,
                y,
                xerr=[[max(0.0, b.value - b.lo)], [max(0.0, b.hi - b.value)]],
                fmt="none",
                ecolor="#222222",
                elinewidth=1.0,
                capsize=3,
            )
        end = b.hi if b.hi is not None else b.value
        text = _fmt(b.value) + (" (estimate)" if b.estimate else "")
        ax.text(end + xmax * 0.012, y, text, va="center", ha="left", fontsize=7.5)
    ax.set_yticks(ys, [mpl_text(b.label) + ("  [baseline]" if b.baseline else "") for b in bars])
    ax.set_xlim(0, xmax)
    ax.set_ylim(-0.6, len(bars) - 0.4)
    ax.set_xlabel(unit)
    better = "higher is better" if higher_is_better else "lower is better"
    ax.set_title(f"{title} ({better})", loc="left")
    ax.grid(axis="y", visible=False)
    caption = f"{title} in {unit}; error bars are 95 % confidence intervals; {better}."
    if any(b.estimate for b in bars):
        caption += " Hatched grey bars are estimates, not measurements."
    return _finish(fig, key, title, caption, png_dpi)


def _thin(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(np.int64))
    return x[idx], y[idx]


def cdf_chart(series: Sequence[tuple[str, np.ndarray]], *, png_dpi: int = 250) -> Chart:
    """Empirical CDFs of per-call latency (ms), overlaid, log-scaled when the range is wide."""
    fig = _new_figure(3.2)
    ax = fig.add_subplot()
    lows: list[float] = []
    highs: list[float] = []
    for i, (label, lat_ms) in enumerate(series):
        xs = np.sort(np.asarray(lat_ms, dtype=np.float64))
        if xs.size == 0:
            continue
        ys = np.arange(1, xs.size + 1) / xs.size
        xs_t, ys_t = _thin(xs, ys, MAX_CURVE_POINTS)
        ax.step(
            xs_t, ys_t, where="post", color=PALETTE[i % len(PALETTE)], lw=1.4, label=mpl_text(label)
        )
        lows.append(float(xs[0]))
        highs.append(float(xs[-1]))
    if lows and min(lows) > 0 and max(highs) / min(lows) > 20:
        ax.set_xscale("log")
    ax.axhline(0.5, color="#888888", lw=0.6, ls=":")
    ax.axhline(0.99, color="#888888", lw=0.6, ls=":")
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("latency per call (ms)")
    ax.set_ylabel("fraction of calls ≤ x")
    ax.set_title("Latency distribution (CDF)", loc="left")
    if series:
        ax.legend(loc="lower right")
    caption = (
        "Empirical cumulative distribution of every timed call; dotted lines mark the "
        "median and p99."
    )
    return _finish(fig, "latency_cdf", "Latency distribution", caption, png_dpi)


def timeline_chart(series: Sequence[Series], *, png_dpi: int = 250) -> Chart:
    """Power (W) over time (s), aligned so that 0 is the start of each run's measurement."""
    fig = _new_figure(3.2)
    ax = fig.add_subplot()
    for i, s in enumerate(series):
        x, y = _thin(np.asarray(s.x), np.asarray(s.y), MAX_TRACE_POINTS)
        ax.plot(x, y, color=PALETTE[i % len(PALETTE)], lw=1.1, label=mpl_text(s.label, 64))
    ax.axvline(0.0, color="#444444", lw=0.8, ls="--")
    ax.set_xlabel("time from start of measurement (s)")
    ax.set_ylabel("power (W)")
    ax.set_ylim(bottom=0)
    ax.set_title("Power during the runs", loc="left")
    if series:
        ax.legend(loc="lower right", ncols=2 if len(series) > 4 else 1)
    caption = (
        "Sampled power of each domain; time 0 (dashed) is the first timed call of each "
        "run, earlier samples are idle baseline and warm-up."
    )
    return _finish(fig, "power_timeline", "Power timeline", caption, png_dpi)


def batch_chart(series: Sequence[Series], *, png_dpi: int = 250) -> Chart:
    """Throughput vs batch size, one line per device configuration, with interval bands."""
    fig = _new_figure(3.2)
    ax = fig.add_subplot()
    batches: set[float] = set()
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(s.x, s.y, marker="o", ms=4, color=colour, lw=1.4, label=mpl_text(s.label, 64))
        if s.lo is not None and s.hi is not None:
            yerr = [np.maximum(0, s.y - s.lo), np.maximum(0, s.hi - s.y)]
            ax.errorbar(s.x, s.y, yerr=yerr, fmt="none", ecolor=colour, capsize=3, lw=1)
        batches.update(float(b) for b in s.x)
    if batches and max(batches) / max(min(batches), 1.0) >= 8:
        ax.set_xscale("log", base=2)
    if batches:
        ticks = sorted(batches)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel("batch size")
    ax.set_ylabel("throughput (inferences/s)")
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput vs batch size", loc="left")
    if series:
        ax.legend(loc="best")
    caption = "Throughput of each device configuration at each batch size, with 95 % intervals."
    return _finish(fig, "throughput_vs_batch", "Throughput vs batch size", caption, png_dpi)


def pareto_chart(points: Sequence[Point], colour_unit: str, *, png_dpi: int = 250) -> Chart:
    """Throughput vs p99 latency, coloured by energy per inference; the Pareto front joined."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    fig = _new_figure(3.6)
    ax = fig.add_subplot()
    measured = [p for p in points if p.energy is not None]
    cvals = [p.energy for p in measured if p.energy is not None]
    norm = (
        Normalize(
            vmin=min(cvals),
            vmax=max(cvals) if max(cvals) > min(cvals) else min(cvals) * 1.01 + 1e-12,
        )
        if cvals
        else None
    )
    cmap = colormaps["viridis"]
    for i, p in enumerate(points):
        if p.energy is None or norm is None:
            ax.scatter(
                p.p99_ms,
                p.throughput,
                s=46,
                facecolors="none",
                edgecolors=NA_COLOUR,
                linewidths=1.2,
            )
        else:
            ax.scatter(
                p.p99_ms,
                p.throughput,
                s=46,
                color=cmap(norm(p.energy)),
                edgecolors="#333333" if not p.estimate else "#D55E00",
                linewidths=0.6 if not p.estimate else 1.4,
                marker="o" if not p.estimate else "D",
            )
        # Staggered offsets keep labels of nearby points apart.
        ax.annotate(
            mpl_text(p.label, 30),
            (p.p99_ms, p.throughput),
            xytext=(6, 4 - 9 * (i % 3)),
            textcoords="offset points",
            fontsize=6.5,
            color="#333333",
        )
    front = _pareto_front(points)
    if len(front) > 1:
        ax.plot(
            [p.p99_ms for p in front],
            [p.throughput for p in front],
            color="#555555",
            lw=0.8,
            ls="--",
            zorder=0,
        )
    if norm is not None:
        from matplotlib.cm import ScalarMappable

        sm = ScalarMappable(norm=norm, cmap=cmap)
        cb = fig.colorbar(sm, ax=ax, shrink=0.9)
        cb.set_label(f"energy per inference ({colour_unit})")
    ax.set_xlabel("p99 latency per call (ms)")
    ax.set_ylabel("throughput (inferences/s)")
    ax.set_title("Throughput vs p99 latency", loc="left")
    ax.margins(0.12)
    caption = (
        "Each configuration's throughput against its p99 latency (upper left is "
        "better), coloured by energy per inference; hollow grey: energy not measured; "
        "diamonds with an orange edge: energy estimated; dashed: the Pareto front."
    )
    return _finish(fig, "pareto", "Pareto view", caption, png_dpi)


def _pareto_front(points: Sequence[Point]) -> list[Point]:
    """Points no other point beats on both lower p99 (x) and higher throughput (y)."""
    ordered = sorted(points, key=lambda p: (p.p99_ms, -p.throughput))
    front: list[Point] = []
    best_y = -math.inf
    for p in ordered:
        if p.throughput > best_y:
            front.append(p)
            best_y = p.throughput
    return front
