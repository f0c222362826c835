"""Report charts drawn with matplotlib (Agg, never Qt), returned as SVG text or PNG bytes.

Each chart draws the plain data ``reports.series`` builds (the same the GUI's charts draw), so
it can be tested without runs. matplotlib is imported inside functions: importing this module
costs nothing.
"""

from __future__ import annotations

import io
import logging
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from wattbench.domain import units
from wattbench.reports.chart_style import (
    NA_COLOUR,
    PALETTE,
    WIDTH_IN,
    legend,
    legend_height,
    log_axis,
    mpl_text,
    new_figure,
    plain_numbers,
    text_renderer,
    wrap_label,
)
from wattbench.reports.placement import Box, place_labels
from wattbench.reports.series import (
    PARETO_BETTER,
    PARETO_X,
    PARETO_Y,
    Bar,
    Point,
    Series,
    ValueAxis,
    pareto_front,
    pareto_range,
    value_axis,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

log = logging.getLogger(__name__)

MAX_CURVE_POINTS = 600
MAX_TRACE_POINTS = 1500
LABEL_PT = 6.5  # the Pareto view's point labels


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
    """Horizontal bars with 95 % interval error bars; n/a bars say why instead of drawing 0.
    An interval far wider than the bars runs off the axis (an arrow) rather than flatten them;
    the value labels are measured, and the axis made long enough to hold them."""
    height = max(1.6, 0.55 + 0.34 * len(bars))
    fig = new_figure(height)
    ax = fig.add_subplot()
    ys = np.arange(len(bars))[::-1]
    axis = value_axis(bars)
    texts: list[tuple[Bar, Text]] = []
    for y, b, runs_off in zip(ys, bars, axis.runs_off, strict=True):
        if b.value is None:
            why = textwrap.shorten(f"n/a — {b.na_reason or 'not measured'}", 120, placeholder="…")
            note = ax.text(
                0.01,
                y,
                textwrap.fill(mpl_text(why, 130), 70),
                va="center",
                ha="left",
                color="#555555",
                fontstyle="italic",
                fontsize=7,
                transform=ax.get_yaxis_transform(),
            )
            note.set_in_layout(False)
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
        if b.lo is not None and b.hi is not None and not runs_off:
            ax.errorbar(
                b.value,
                y,
                xerr=[[max(0.0, b.value - b.lo)], [max(0.0, b.hi - b.value)]],
                fmt="none",
                ecolor="#222222",
                elinewidth=1.0,
                capsize=3,
            )
        text = _fmt(b.value) + (" (estimate)" if b.estimate else "")
        start = b.hi if b.hi is not None and not runs_off else b.value
        if runs_off and b.hi is not None:
            text += f" · interval to {_fmt(b.hi)}"
        label = ax.text(start, y, " " + text, va="center", ha="left", fontsize=7.5)
        if runs_off:  # written over the interval's line, which runs on past the axis
            label.set_bbox({"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none"})
        label.set_in_layout(False)
        texts.append((b, label))
    ax.set_yticks(ys, [wrap_label(b.label) + ("  [baseline]" if b.baseline else "") for b in bars])
    ax.set_xlim(0, axis.top * 1.04)
    ax.set_ylim(-0.6, len(bars) - 0.4)
    ax.set_xlabel(unit)
    plain_numbers(ax.xaxis)
    better = "higher is better" if higher_is_better else "lower is better"
    ax.set_title(f"{title} ({better})", loc="left")
    ax.grid(axis="y", visible=False)
    _room_for_labels(fig, ax, axis, texts)
    right = ax.get_xlim()[1]
    for y, b, runs_off in zip(ys, bars, axis.runs_off, strict=True):
        if runs_off and b.value is not None and b.lo is not None:  # an open end: an arrow
            ax.plot([b.lo, right], [y, y], color="#222222", lw=1.0, zorder=1.5)
            ax.plot([b.lo, b.lo], [y - 0.12, y + 0.12], color="#222222", lw=1.0)
            ax.plot(right, y, marker=">", ms=5, color="#222222", clip_on=False)
    caption = f"{title} in {unit}; error bars are 95 % confidence intervals; {better}."
    if any(axis.runs_off):
        caption += " An arrow: the interval runs on past the axis (its end is written out)."
    if any(b.estimate for b in bars):
        caption += " Hatched grey bars are estimates, not measurements."
    return _finish(fig, key, title, caption, png_dpi)


def _room_for_labels(
    fig: Figure, ax: Axes, axis: ValueAxis, texts: Sequence[tuple[Bar, Text]]
) -> None:
    """Lengthen the value axis until every bar's label fits beside its bar (measured on the
    laid-out figure); a label that would need the axis over three times longer goes inside
    its bar instead."""
    if not texts:
        return
    renderer = text_renderer(fig)
    for _ in range(3):  # the axis' length in pixels settles after a layout or two
        fig.draw_without_rendering()
        width_px = ax.get_window_extent(renderer).width
        need = axis.top * 1.04
        for b, label in texts:
            if label.get_horizontalalignment() == "right":
                continue  # already inside its bar
            room = width_px - label.get_window_extent(renderer).width - 4
            if room > width_px / 3:
                need = max(need, label.get_position()[0] * width_px / room)
            elif b.value is not None:
                label.set_text(label.get_text().strip() + " ")
                label.set_x(b.value)
                label.set_horizontalalignment("right")
                label.set_color("white")
        if math.isclose(need, ax.get_xlim()[1], rel_tol=1e-3):
            return
        ax.set_xlim(0, need)


def _thin(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(np.int64))
    return x[idx], y[idx]


def cdf_chart(series: Sequence[tuple[str, np.ndarray]], *, png_dpi: int = 250) -> Chart:
    """Empirical CDFs of per-call latency (ms), overlaid, log-scaled when the range is wide."""
    fig = new_figure(3.2 + legend_height(len(series)))
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
        log_axis(ax, "x", min(lows) / 1.1, max(highs) * 1.1)
    else:
        plain_numbers(ax.xaxis)
    ax.axhline(0.5, color="#888888", lw=0.6, ls=":")
    ax.axhline(0.99, color="#888888", lw=0.6, ls=":")
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("latency per call (ms)")
    ax.set_ylabel("fraction of calls ≤ x")
    ax.set_title("Latency distribution (CDF)", loc="left")
    legend(fig, ax, len(series), "lower right")
    caption = (
        "Empirical cumulative distribution of every timed call; dotted lines mark the "
        "median and p99."
    )
    return _finish(fig, "latency_cdf", "Latency distribution", caption, png_dpi)


def timeline_chart(series: Sequence[Series], *, png_dpi: int = 250) -> Chart:
    """Power (W) over time (s), aligned so that 0 is the start of each run's measurement."""
    fig = new_figure(3.2 + legend_height(len(series)))
    ax = fig.add_subplot()
    for i, s in enumerate(series):
        x, y = _thin(np.asarray(s.x), np.asarray(s.y), MAX_TRACE_POINTS)
        ax.plot(x, y, color=PALETTE[i % len(PALETTE)], lw=1.1, label=mpl_text(s.label, 64))
    ax.axvline(0.0, color="#444444", lw=0.8, ls="--")
    ax.set_xlabel("time from start of measurement (s)")
    ax.set_ylabel("power (W)")
    plain_numbers(ax.yaxis)
    ax.set_ylim(bottom=0)
    ax.set_title("Power during the runs", loc="left")
    legend(fig, ax, len(series), "lower right")
    caption = (
        "Sampled power of each domain; time 0 (dashed) is the first timed call of each "
        "run, earlier samples are idle baseline and warm-up."
    )
    return _finish(fig, "power_timeline", "Power timeline", caption, png_dpi)


def batch_chart(series: Sequence[Series], *, png_dpi: int = 250) -> Chart:
    """Throughput vs batch size, one line per device configuration, with interval bands."""
    fig = new_figure(3.2 + legend_height(len(series)))
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
        log_axis(ax, "x", min(batches) / 1.3, max(batches) * 1.3, sorted(batches))
    elif batches:
        ticks = sorted(batches)
        ax.set_xticks(ticks, [units.tick_label(t) for t in ticks])
    plain_numbers(ax.yaxis)
    ax.set_xlabel("batch size")
    ax.set_ylabel("throughput (inferences/s)")
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput vs batch size", loc="left")
    legend(fig, ax, len(series), "best")
    caption = "Throughput of each device configuration at each batch size, with 95 % intervals."
    return _finish(fig, "throughput_vs_batch", "Throughput vs batch size", caption, png_dpi)


def pareto_chart(points: Sequence[Point], colour_unit: str, *, png_dpi: int = 250) -> Chart:
    """p99 latency (x) against throughput (y), coloured by energy per inference, the Pareto
    front joined: the same axes, scales and front as the app's Pareto view (``series``)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = new_figure(3.8)
    ax = fig.add_subplot()
    cvals = [p.energy for p in points if p.energy is not None]
    norm = (
        Normalize(min(cvals), max(cvals) if max(cvals) > min(cvals) else min(cvals) * 1.01 + 1e-12)
        if cvals
        else None
    )
    cmap = colormaps["viridis"]
    for p in points:
        if p.energy is None or norm is None:
            ax.scatter(
                p.p99_ms,
                p.throughput,
                s=46,
                facecolors="none",
                edgecolors=NA_COLOUR,
                linewidths=1.2,
                zorder=3,
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
                zorder=3,
            )
    front = pareto_front(points)
    if len(front) > 1:
        ax.plot(
            [p.p99_ms for p in front],
            [p.throughput for p in front],
            color="#555555",
            lw=0.9,
            ls="--",
            zorder=2,
            label="Pareto front",
        )
    for which, values in (("x", [p.p99_ms for p in points]), ("y", [p.throughput for p in points])):
        lo, hi, log = pareto_range(values)
        if log:
            log_axis(ax, which, lo, hi)
        else:
            (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)
            plain_numbers(ax.xaxis if which == "x" else ax.yaxis)
    if norm is not None:
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.9, pad=0.02)
        cb.set_label(f"energy per inference ({colour_unit})")
        plain_numbers(cb.ax.yaxis)
    ax.set_xlabel(PARETO_X)
    ax.set_ylabel(PARETO_Y)
    ax.set_title(f"Throughput vs p99 latency ({PARETO_BETTER})", loc="left")
    if len(front) > 1:
        ax.legend(loc="best", handlelength=1.6)
    _label_points(fig, ax, points)
    caption = (
        f"Each configuration's throughput against its p99 latency ({PARETO_BETTER}), "
        "coloured by energy per inference; hollow grey: energy not measured; diamonds with "
        "an orange edge: energy estimated; dashed: the Pareto front (the configurations no "
        "other beats on both latency and throughput)."
    )
    return _finish(fig, "pareto", "Pareto view", caption, png_dpi)


def _label_points(fig: Figure, ax: Axes, points: Sequence[Point]) -> None:
    """Each point's label where ``placement`` puts it, measured on the laid-out figure, so
    labels neither cover each other nor leave the plot; one moved off its point in a crowd
    gets a thin leader line to it."""
    fig.draw_without_rendering()
    renderer = text_renderer(fig)
    frame = ax.get_window_extent(renderer)
    texts = [mpl_text(p.label, 34) for p in points]
    sizes = []
    for text in texts:
        probe = ax.text(0, 0, text, fontsize=LABEL_PT)
        box = probe.get_window_extent(renderer)
        sizes.append((box.width, box.height))
        probe.remove()
    xy = ax.transData.transform([(p.p99_ms, p.throughput) for p in points])
    spots = [(float(x - frame.x0), float(y - frame.y0)) for x, y in xy]
    avoid = []
    if (key := ax.get_legend()) is not None:
        box = key.get_window_extent(renderer)
        avoid.append(
            Box(box.x0 - frame.x0, box.y0 - frame.y0, box.x1 - frame.x0, box.y1 - frame.y0)
        )
    places = place_labels(spots, sizes, (frame.width, frame.height), marker=9.0, avoid=avoid)
    to_pt = 72.0 / fig.dpi
    for p, text, spot, place in zip(points, texts, spots, places, strict=True):
        offset = ((place.box.x0 - spot[0]) * to_pt, (place.box.y0 - spot[1]) * to_pt)
        leader = {"arrowstyle": "-", "lw": 0.5, "color": "#888888", "shrinkA": 1, "shrinkB": 4}
        label = ax.annotate(
            text,
            (p.p99_ms, p.throughput),
            xytext=offset,
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=LABEL_PT,
            color="#333333",
            arrowprops=leader if place.shift else None,
        )
        label.set_in_layout(False)
