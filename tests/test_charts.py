"""Charts that read well: plain-number ticks on log axes, the Pareto front, an axis one wide
interval cannot flatten, and report charts (matplotlib) whose text all lies inside the figure
with no two labels over each other, measured on the rendered figures."""

from __future__ import annotations

import re
from itertools import combinations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from wattbench.domain import units
from wattbench.reports import charts
from wattbench.reports.placement import Box, place_labels
from wattbench.reports.series import (
    WIDE_INTERVAL,
    Bar,
    Point,
    Series,
    pareto_front,
    pareto_range,
    value_axis,
)

SCIENTIFIC = re.compile(r"\de[+-]?\d")


def labels(ticks: list[tuple[float, str]]) -> list[str]:
    return [text for _, text in ticks]


# ---------------------------------------------------------------- ticks


def test_a_batch_axis_is_ticked_at_its_batch_sizes() -> None:
    major, minor = units.log_tick_values(1, 32, [32, 1, 8, 8])
    assert major == [(1.0, "1"), (8.0, "8"), (32.0, "32")] and minor == []
    # pyqtgraph's log mode: the same ticks at log10 of the value
    (pg_major, _) = units.log_ticks(1, 32, [1, 8, 32])
    assert [(round(p, 6), t) for p, t in pg_major] == [(0.0, "1"), (0.90309, "8"), (1.50515, "32")]


def test_a_continuous_log_axis_steps_1_2_5_in_plain_numbers() -> None:
    major, minor = units.log_tick_values(0.3, 4000)
    assert labels(major) == ["1", "10", "100", "1,000"]
    assert labels(minor) == ["0.5", "2", "5", "20", "50", "200", "500", "2,000"]
    # too many distinct values (or values bunched together) fall back to 1-2-5
    many = units.log_tick_values(1, 2000, list(range(1, 2001, 100)))
    assert labels(many[0]) == ["1", "10", "100", "1,000"]
    bunched = units.log_tick_values(1, 1000, [1, 1.1, 1000])
    assert labels(bunched[0]) == ["1", "10", "100", "1,000"]


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(1e-3, 0.2), (0.05, 0.09), (3, 4.5), (3.1, 3.4), (900, 2.5e6), (1, 1e9), (0.12, 0.12)],
)
def test_log_ticks_are_plain_and_inside_the_span(lo: float, hi: float) -> None:
    major, minor = units.log_tick_values(lo, hi)
    assert len(major) >= 1 and (len(major) >= 2 or lo == hi)
    for value, text in major + minor:
        assert lo <= value <= hi
        assert not SCIENTIFIC.search(text), text
        assert float(text.replace(",", "")) == pytest.approx(value, rel=0.01)


def test_tick_labels_use_only_the_decimals_they_need() -> None:
    assert [units.tick_label(v) for v in (1000, 2e6, 0.25, 0.1 + 0.2, 128, 0, 1.5e-5)] == [
        "1,000",
        "2,000,000",
        "0.25",
        "0.3",
        "128",
        "0",
        "1.5e-05",  # far outside everyday sizes, as units.number
    ]


# ---------------------------------------------------------------- Pareto front


def pt(label: str, p99_ms: float, throughput: float) -> Point:
    return Point(label, throughput, p99_ms, None)


def test_the_pareto_front_keeps_only_the_configurations_nothing_beats() -> None:
    points = [
        pt("gpu b32", 12.0, 3000.0),  # highest throughput
        pt("cpu b1", 1.0, 900.0),  # lowest latency
        pt("gpu b8", 4.0, 2200.0),  # between the two: on the front
        pt("cpu b8", 5.0, 1500.0),  # beaten by gpu b8 on both counts
        pt("npu", 12.0, 2500.0),  # as slow as gpu b32, less throughput: beaten
        pt("cpu b32", 15.0, 2900.0),  # beaten by gpu b32
    ]
    front = pareto_front(points)
    assert [p.label for p in front] == ["cpu b1", "gpu b8", "gpu b32"]
    assert pareto_front([]) == []
    twins = pareto_front([pt("a", 2.0, 100.0), pt("b", 2.0, 100.0), pt("c", 3.0, 90.0)])
    assert [p.label for p in twins] == ["a", "b"]


def test_pareto_axes_go_log_only_over_a_wide_spread() -> None:
    lo, hi, log = pareto_range([2.0, 3.0, 5.0])
    assert not log and lo < 2.0 and hi > 5.0 and lo >= 0
    lo, hi, log = pareto_range([0.5, 400.0])
    assert log and lo < 0.5 and hi > 400.0


# ---------------------------------------------------------------- value axis


def test_one_wide_interval_does_not_flatten_the_p50_axis() -> None:
    bars = [
        Bar("cpu", 4.2, 4.0, 4.5, baseline=True),
        Bar("gpu", 1.1, 1.0, 1.2),
        Bar("npu", 0.8, 0.5, 60.0),  # a wide interval (few samples)
        Bar("n/a", None, na_reason="no sensor"),
    ]
    axis = value_axis(bars)
    assert axis.top == pytest.approx(4.2 * WIDE_INTERVAL)
    assert axis.runs_off == (False, False, True, False)
    assert axis.end(bars[2]) == axis.top and axis.end(bars[0]) == 4.5
    # without the wide one, every interval fits
    tame = value_axis(bars[:2])
    assert tame.top == pytest.approx(4.5) and not any(tame.runs_off)
    assert value_axis([Bar("x", None)]).top == 1.0


# ---------------------------------------------------------------- rendered geometry


_FIGURES: dict[str, Figure] = {}


def render(chart: charts.Chart) -> tuple[Figure, list[Text]]:
    """The chart's figure drawn again: every text it shows, to be measured."""
    fig = _FIGURES[chart.key]
    fig.canvas.draw()
    hidden = set()  # labels of ticks outside the axis' range: matplotlib does not draw them
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - abs(lo) * 1e-9 <= tick.get_loc() <= hi + abs(hi) * 1e-9:
                    hidden.update((tick.label1, tick.label2))
    texts = [
        t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and t not in hidden
    ]
    return fig, texts


@pytest.fixture(autouse=True)
def keep_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep each figure a chart function finishes, to measure it after drawing."""
    finish = charts._finish

    def keeping(fig: Figure, key: str, *args: object, **kwargs: object) -> charts.Chart:
        _FIGURES[key] = fig
        return finish(fig, key, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(charts, "_finish", keeping)


def extent(fig: Figure, text: Text) -> Bbox:
    """Where the text itself is drawn (an annotation's leader line left out)."""
    return Text.get_window_extent(text, fig.canvas.get_renderer())  # type: ignore[attr-defined]


def assert_inside(fig: Figure, texts: list[Text]) -> None:
    frame = fig.bbox
    for t in texts:
        box = extent(fig, t)
        assert (
            box.x0 >= frame.x0 - 0.5
            and box.y0 >= frame.y0 - 0.5
            and box.x1 <= frame.x1 + 0.5
            and box.y1 <= frame.y1 + 0.5
        ), f"{t.get_text()!r} at {box} leaves the figure {frame}"


def assert_apart(fig: Figure, texts: list[Text]) -> None:
    for a, b in combinations(texts, 2):
        assert not extent(fig, a).overlaps(extent(fig, b)), (
            f"{a.get_text()!r} overlaps {b.get_text()!r}"
        )


LONG = "ResNet-50 · cuda:1 · tensorrt · int8 · b32 · t16 · offline · host gpu-box-7"
BARS = [
    Bar("ResNet-50 · cpu · torch · fp32 · b32 · t8", 4.2, 4.0, 4.5, baseline=True),
    Bar(LONG, 1.1, 1.05, 1.2, verdict="faster", ratio=3.8),
    Bar("ResNet-50 · cuda:0 · onnxruntime · fp16", 0.8, 0.5, 60.0, verdict="unclear", ratio=5.2),
    Bar("npu", None, na_reason="no power sensor readable on this host: " + "x " * 60),
    Bar("cpu · estimate", 3.9, estimate=True),
    Bar("tiny", 0.0004, 0.0003, 0.0005),
]


def test_bar_labels_fit_in_the_figure_and_stay_apart() -> None:
    chart = charts.bar_chart("p50", "Latency p50", "ms", BARS, higher_is_better=False, png_dpi=0)
    fig, texts = render(chart)
    assert_inside(fig, texts)
    ax = fig.axes[0]
    values = [t for t in ax.texts if not t.get_text().startswith("n/a")]
    assert len(values) == 5
    assert_apart(fig, values)
    # each value label sits right of its bar's end (or inside it), within the plot
    plot = ax.get_window_extent(fig.canvas.get_renderer())  # type: ignore[attr-defined]
    for t in values:
        box = extent(fig, t)
        assert plot.x0 <= box.x0 and box.x1 <= plot.x1 + 0.5, t.get_text()
    assert_apart(fig, [t for t in ax.get_yticklabels() if t.get_text()])
    # the wide interval is cut and said in words, not drawn to 60 ms
    assert ax.get_xlim()[1] < 15
    assert any("interval to 60.0" in t.get_text() for t in values)
    assert "runs on past the axis" in chart.caption


def test_pareto_labels_and_colour_bar_fit_and_stay_apart() -> None:
    rng = np.random.default_rng(3)
    points = [
        Point(
            f"config {i} · cuda:{i % 2} · b{2**i}",
            float(1000 + rng.normal(0, 40)),
            float(5 + rng.normal(0, 0.3)),
            float(i),
        )
        for i in range(9)
    ] + [Point("far away · cpu · b1", 50.0, 200.0, 3.0, estimate=True)]
    chart = charts.pareto_chart(points, "mJ", png_dpi=0)
    fig, texts = render(chart)
    assert_inside(fig, texts)
    ax = fig.axes[0]
    point_labels = [t for t in ax.texts]
    assert len(point_labels) == len(points)
    assert_apart(fig, point_labels)
    # p99 latency across, throughput up (as in the app), log-scaled for a 40× spread
    assert ax.get_xlabel() == "p99 latency per call (ms)" and ax.get_xscale() == "log"
    assert ax.get_ylabel() == "throughput (items/s)" and ax.get_yscale() == "linear"
    ticks = [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels() if t.get_text()]
    assert ticks and not any(SCIENTIFIC.search(t) or "$" in t for t in ticks), ticks
    colour_bar = fig.axes[1]
    assert colour_bar.get_ylabel() == "energy per inference (mJ)"


def test_pareto_front_is_drawn_and_labels_keep_off_its_legend() -> None:
    points = [
        Point(f"configuration {i} · cpu · b{2**i}", 500.0 + 400 * i, 1.0 + 1.5 * i, 10.0 + i)
        for i in range(6)
    ] + [Point("dominated · npu", 600.0, 8.0, 3.0)]
    chart = charts.pareto_chart(points, "mJ", png_dpi=0)
    fig, _ = render(chart)
    ax = fig.axes[0]
    front = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert len(front) == 1
    assert list(front[0].get_xdata()) == [1.0 + 1.5 * i for i in range(6)]
    legend = ax.get_legend()
    assert legend is not None
    key = legend.get_window_extent(fig.canvas.get_renderer())  # type: ignore[attr-defined]
    for label in ax.texts:
        assert not extent(fig, label).overlaps(key), label.get_text()
    assert_apart(fig, list(ax.texts))


def test_batch_and_cdf_axes_read_as_plain_numbers() -> None:
    curve = Series("cpu", np.array([1.0, 8.0, 32.0]), np.array([900.0, 2e6, 3.1e6]))
    fig, texts = render(charts.batch_chart([curve], png_dpi=0))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == ["1", "8", "32"]
    y_ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "3,000,000" in y_ticks and not any(SCIENTIFIC.search(t) for t in y_ticks)
    assert not any(t.get_text().startswith("1e") for t in texts)
    rng = np.random.default_rng(1)
    samples = [(f"config {i}", rng.lognormal(np.log(10.0**i), 0.2, 500)) for i in range(-1, 3)]
    fig, texts = render(charts.cdf_chart(samples, png_dpi=0))
    x_ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert {"0.1", "1", "10", "100"} <= set(x_ticks), x_ticks
    assert not any(SCIENTIFIC.search(t) or "$" in t for t in x_ticks)
    assert_inside(fig, texts)


def test_label_placement_moves_labels_off_each_other_and_into_the_plot() -> None:
    spots = [(10.0, 10.0), (12.0, 11.0), (14.0, 9.0), (195.0, 95.0)]
    sizes = [(60.0, 10.0)] * 4
    placed = place_labels(spots, sizes, (200.0, 100.0))
    for a, b in combinations(placed, 2):
        assert a.box.overlap(b.box) == 0
    for p in placed:
        assert p.box.x0 >= 0 and p.box.x1 <= 200 and p.box.y0 >= 0 and p.box.y1 <= 100
    assert placed[3].side[0] == -1  # at the right edge: to the left of its point
    legend = Box(0.0, 12.0, 100.0, 40.0)  # right over where the first label would go
    kept_clear = place_labels(spots[:1], sizes[:1], (200.0, 100.0), avoid=[legend])
    assert kept_clear[0].box.overlap(legend) == 0
    assert place_labels(spots[:1], sizes[:1], (200.0, 100.0))[0].box.overlap(legend) > 0


def test_large_figures_read_in_full_without_crowding_the_axis() -> None:
    bars = [
        Bar("cpu", 2_500_000.0, 2_400_000.0, 2_600_000.0, baseline=True),
        Bar("gpu", 31_000_000.0, 30_000_000.0, 32_000_000.0, verdict="faster", ratio=12.4),
    ]
    chart = charts.bar_chart("big", "Throughput", "items/s", bars, higher_is_better=True, png_dpi=0)
    fig, texts = render(chart)
    assert_inside(fig, texts)
    lo, hi = fig.axes[0].get_xlim()
    ticks = [
        t for t in fig.axes[0].get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi
    ]
    assert any(t.get_text() == "10,000,000" for t in ticks), [t.get_text() for t in ticks]
    assert_apart(fig, ticks)


def test_batch_curves_keep_configurations_apart_that_differ_in_more_than_batch() -> None:
    import dataclasses

    from wattbench.engine.compare import compare_runs
    from wattbench.reports.series import batch_series

    from tests.report_fixtures import make_run

    def grouped(run, instances: int):  # type: ignore[no-untyped-def]
        return run.with_(spec=dataclasses.replace(run.spec, instances=instances))

    runs = [
        grouped(make_run(seed=1, batch=8, mean_ms=4), 1),
        grouped(make_run(seed=2, batch=32, mean_ms=10), 1),
        grouped(make_run(seed=3, batch=8, mean_ms=5), 2),  # same batch, two instances
        grouped(make_run(seed=4, batch=32, mean_ms=12), 2),
    ]
    series = batch_series(compare_runs(runs, metrics=("throughput",)))
    assert sorted(s.label for s in series) == ["cpu · torch · fp32", "cpu · torch · fp32 · i2"]
    for s in series:
        assert list(s.x) == [8.0, 32.0]
