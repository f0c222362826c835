"""The app's comparison charts (pyqtgraph, offscreen) read as the report's do: plain-number
ticks (a batch axis reads 1, 8, 32), the Pareto view on the report's axes with the same front,
labels that stay apart and inside the plot, and a value axis one wide interval cannot flatten.
Tick labels are taken from what the axes would draw (``generateDrawSpecs``)."""

from __future__ import annotations

import os
import re
from itertools import combinations

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from pytestqt.qtbot import QtBot
from wattbench.gui.widgets.bar_charts import MetricBars
from wattbench.gui.widgets.compare_charts import BatchChart, CdfChart, ParetoChart
from wattbench.reports import series
from wattbench.reports.series import Bar, Point, Series

SCIENTIFIC = re.compile(r"\de[+-]?\d")


def shown(qtbot: QtBot, widget: pg.PlotWidget, w: int = 800, h: int = 420) -> None:
    qtbot.addWidget(widget)
    widget.resize(w, h)
    widget.show()
    qtbot.waitExposed(widget)
    widget.grab()  # lays out and paints once, as on screen


def settle(qtbot: QtBot, widget: pg.PlotWidget) -> None:
    """Let the chart take its new data in: auto-range and layout happen as it paints."""
    widget.grab()
    qtbot.wait(10)
    widget.grab()


def drawn_ticks(axis: pg.AxisItem) -> list[tuple[QRectF, str]]:
    """The tick labels the axis draws at its current size: (rectangle, text)."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(QRectF(rect), text) for rect, _flags, text in texts]


def assert_readable(axis: pg.AxisItem) -> list[str]:
    ticks = drawn_ticks(axis)
    for (a, ta), (b, tb) in combinations(ticks, 2):
        assert not a.intersects(b), f"{ta!r} overlaps {tb!r}"
    inside = axis.boundingRect().adjusted(-1, -1, 1, 1)
    for rect, text in ticks:
        assert not SCIENTIFIC.search(text), text
        assert inside.contains(rect), f"{text!r} clipped: {rect} outside {inside}"
    return [text for _, text in ticks]


def test_batch_axis_reads_its_batch_sizes(qtbot: QtBot) -> None:
    chart = BatchChart()
    shown(qtbot, chart)
    chart.set_series(
        [
            Series("cpu", np.array([1.0, 8.0, 32.0]), np.array([900.0, 20_000.0, 1.5e6])),
            Series("gpu", np.array([1.0, 32.0]), np.array([500.0, 2.5e6])),
        ]
    )
    settle(qtbot, chart)
    item = chart.getPlotItem()
    assert assert_readable(item.getAxis("bottom")) == ["1", "8", "32"]
    left = assert_readable(item.getAxis("left"))
    assert "2,000,000" in left or "1,000,000" in left, left


def test_cdf_log_axis_steps_1_2_5(qtbot: QtBot) -> None:
    chart = CdfChart()
    shown(qtbot, chart)
    rng = np.random.default_rng(0)
    chart.set_series([(f"c{i}", rng.lognormal(np.log(10.0**i), 0.2, 400)) for i in (-1, 0, 2)])
    settle(qtbot, chart)
    labels = assert_readable(chart.getPlotItem().getAxis("bottom"))
    assert {"0.1", "1", "10", "100"} <= set(labels), labels


POINTS = [
    Point("gpu · b32", 3000.0, 12.0, 5.0),
    Point("cpu · b1", 900.0, 1.0, 30.0),
    Point("gpu · b8", 2200.0, 4.0, 7.5),
    Point("cpu · b8", 1500.0, 5.0, 20.0),  # beaten by gpu · b8
    Point("npu · b32", 2500.0, 12.0, None),  # beaten by gpu · b32
    Point("cpu · b32 (estimate)", 2950.0, 12.3, 25.0, estimate=True),
]


def test_pareto_view_uses_the_report_axes_and_draws_the_front(qtbot: QtBot) -> None:
    chart = ParetoChart()
    shown(qtbot, chart)
    chart.set_points(POINTS)
    settle(qtbot, chart)
    item = chart.getPlotItem()
    assert item.getAxis("bottom").labelText == series.PARETO_X
    assert item.getAxis("left").labelText == series.PARETO_Y
    assert chart.front is not None
    xs, ys = chart.front.getData()
    assert list(zip(xs, ys, strict=True)) == [(1.0, 900.0), (4.0, 2200.0), (12.0, 3000.0)]
    for name in ("bottom", "left"):
        assert_readable(item.getAxis(name))
    # labels: apart from each other and inside the plot, at this size and a smaller one
    for size in ((800, 420), (520, 300)):
        chart.resize(*size)
        settle(qtbot, chart)
        chart.place_labels()
        frame = item.getViewBox().sceneBoundingRect().adjusted(-1, -1, 1, 1)
        boxes = [label.sceneBoundingRect() for label in chart.labels]
        assert len(boxes) == len(POINTS)
        for a, b in combinations(boxes, 2):
            assert not a.intersects(b)
        legend = chart.legend.sceneBoundingRect()
        for box in boxes:
            assert frame.contains(box), (box, frame)
            assert not box.intersects(legend), "a point label under the legend"
    assert chart.colour_bar is not None
    assert_readable(chart.colour_bar.axis)


def test_pareto_view_goes_log_on_a_wide_spread(qtbot: QtBot) -> None:
    chart = ParetoChart()
    shown(qtbot, chart)
    chart.set_points([Point("a", 50.0, 0.5, 0.0002), Point("b", 5000.0, 400.0, 0.0009)])
    settle(qtbot, chart)
    assert chart.log_x and chart.log_y
    labels = assert_readable(chart.getPlotItem().getAxis("bottom"))
    assert {"1", "10", "100"} <= set(labels), labels
    assert chart.colour_bar is not None  # tiny energies: still plain numbers
    assert "0.0004" in assert_readable(chart.colour_bar.axis)


def test_one_wide_interval_does_not_flatten_the_p50_bars(qtbot: QtBot) -> None:
    chart = MetricBars("Latency p50", "ms")
    shown(qtbot, chart, 600, 260)
    chart.set_bars(
        [
            Bar("cpu · torch · fp32 · b32", 4.2, 4.0, 4.5, baseline=True),
            Bar("cuda:0 · onnxruntime · fp16", 1.1, 1.05, 1.2, verdict="faster", ratio=3.8),
            Bar("cuda:1 · tensorrt · int8", 0.8, 0.5, 60.0, verdict="inconclusive", ratio=5.2),
        ]
    )
    settle(qtbot, chart)
    item = chart.getPlotItem()
    (_, right), _ = item.getViewBox().viewRange()
    assert right < 20, right  # not stretched to 60 ms
    assert len(chart._arrows.data) == 1  # the interval running off is marked
    assert "interval to 60.0" in chart.verdict_items[2].toPlainText()
    frame = item.getViewBox().sceneBoundingRect().adjusted(-1, -1, 1, 1)
    boxes = [label.sceneBoundingRect() for label in chart.verdict_items]
    for box in boxes:
        assert frame.contains(box), (box, frame)
    for a, b in combinations(boxes, 2):
        assert not a.intersects(b)
    for name in ("bottom", "left"):
        assert_readable(item.getAxis(name))


@pytest.mark.parametrize("width", [420, 900])
def test_bar_labels_fit_beside_their_bars(qtbot: QtBot, width: int) -> None:
    chart = MetricBars("Throughput", "items/s")
    shown(qtbot, chart, width, 240)
    chart.set_bars(
        [
            Bar("cpu", 2_500_000.0, 2_400_000.0, 2_600_000.0, baseline=True),
            Bar("gpu", 3_100_000.0, 3_000_000.0, 3_200_000.0, verdict="faster", ratio=1.24),
        ]
    )
    settle(qtbot, chart)
    frame = chart.getPlotItem().getViewBox().sceneBoundingRect().adjusted(-1, -1, 1, 1)
    for label in chart.verdict_items:
        assert frame.contains(label.sceneBoundingRect()), label.toPlainText()
    assert_readable(chart.getPlotItem().getAxis("bottom"))


def test_a_narrow_chart_shortens_labels_rather_than_clip_them(qtbot: QtBot) -> None:
    chart = MetricBars("Throughput", "items/s")
    shown(qtbot, chart, 330, 200)
    chart.set_bars(
        [
            Bar("torch · b1 · t1 · mlp-tiny", 180.0, 170.0, 190.0, baseline=True),
            Bar("onnxruntime · b8", 4779.0, 3700.0, 6500.0, verdict="unreliable", ratio=26.56),
            Bar("torch · b8 · t2", 101.0, 90.0, 110.0, verdict="unreliable", ratio=0.561),
        ]
    )
    settle(qtbot, chart)
    box = chart.getPlotItem().getViewBox()
    frame = box.sceneBoundingRect().adjusted(-1, -1, 1, 1)
    for label in chart.verdict_items:
        assert frame.contains(label.sceneBoundingRect()), label.toPlainText()
    texts = [label.toPlainText() for label in chart.verdict_items]
    assert texts == ["180 (baseline)", "4,779 · unreliable", "101 · 0.561× unreliable"], texts
    assert chart.verdict_items[1].toolTip() == "4,779 · 26.6× unreliable"
