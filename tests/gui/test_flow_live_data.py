"""The live view's data path: the buffer the run thread fills and what the charts draw."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from wattbench.gui.live_buffer import LiveBuffer, peak_decimate, throughput_series


def test_peak_decimation_keeps_spikes_and_order() -> None:
    t_s = np.arange(100_003, dtype=np.float64) / 1000
    values = np.ones_like(t_s)
    values[41_234] = 50.0  # one spike
    values[77_777] = 0.01  # one dip
    t_out, v_out = peak_decimate(t_s, values, 500)
    assert len(t_out) <= 2 * 500 + 500
    assert v_out.max() == 50.0 and v_out.min() == 0.01
    assert np.all(np.diff(t_out) >= 0)
    short_t, short_v = peak_decimate(t_s[:900], values[:900], 500)
    assert len(short_t) == 900 and len(short_v) == 900  # short series are drawn whole


def test_throughput_over_time_from_latencies() -> None:
    # 4 s of calls of 2 ms each (batch 8): 4,000 items/s throughout
    t_s = np.arange(0, 4, 0.002)
    latency_ms = np.full(len(t_s), 2.0)
    centres, items_per_s = throughput_series(t_s, latency_ms, batch_size=8, bins=20)
    assert len(centres) == 20
    np.testing.assert_allclose(items_per_s, 4000.0, rtol=1e-9)


def test_buffer_snapshots_while_a_thread_writes() -> None:
    buffer = LiveBuffer()
    start_ns = time.perf_counter_ns()
    buffer.reset(7, "run", 1, start_ns)
    events = 400

    def write() -> None:
        for i in range(events):
            starts = [start_ns + (i * 100 + k) * 1_000_000 for k in range(100)]
            buffer.add(
                phase="measuring",
                message="",
                n=(i + 1) * 100,
                rho=1.0 / (i + 1),
                epsilon=0.01,
                fraction=None,
                elapsed_s=i / 10,
                latencies_ns=[1_000_000] * 100,
                starts_ns=starts,
                power_w={"package-0": 10.0 + i},
                now_ns=starts[-1],
            )

    writer = threading.Thread(target=write)
    writer.start()
    seen = 0
    while writer.is_alive() or seen < events * 100:
        snap = buffer.snapshot()
        assert len(snap.latency_t_s) == len(snap.latency_ms)
        assert np.all(snap.latency_ms == 1.0)  # never a half-written or moved sample
        seen = len(snap.latency_ms)
    writer.join()
    snap = buffer.snapshot()
    assert snap.run_key == 7 and snap.n == events * 100
    assert len(snap.latency_ms) == events * 100
    assert np.all(np.diff(snap.latency_t_s) > 0)
    t_power, watts = snap.power["package-0"]
    assert len(t_power) == len(watts) == events and watts[-1] == 10.0 + events - 1
    assert snap.phase_marks == ((snap.phase_marks[0][0], "measuring"),)


def test_live_latency_log_axis_is_labelled_in_1_2_5_steps(qtbot: Any) -> None:
    import pyqtgraph as pg
    from wattbench.gui.pages.live import GrowingRange

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.setLogMode(y=True)
    latency = GrowingRange(plot, "y", log=True)
    latency.include(0.15, 5.0)  # ms: a median near 0.2 with tails to 5
    axis = plot.getPlotItem().getAxis("left")
    levels = axis._tickLevels  # the ticks given to the axis (pyqtgraph has no getter)
    assert levels is not None
    labels = {text for level in levels for _pos, text in level}
    # pyqtgraph's own log ticks label 0.2, 0.3, …, 0.9, 1 printed over each other
    assert labels == {"0.1", "0.2", "0.5", "1", "2", "5", "10"}
    latency.reset()  # the next run: pyqtgraph's ticks until its range is known
    assert axis._tickLevels is None
