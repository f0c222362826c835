"""The worker-side timed phases (measure.py) and the pipe codec (ipc.py), in this process.

The workloads are real code with a known cost: a Python spin loop of a set duration stands in
for an inference, so the figures measure() reports can be checked against what was spun.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from wattbench.backends.runtimes.base import DeviceMemory
from wattbench.domain import codec
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.domain.result import FLAG_BLOCK_TIMING
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine import ipc
from wattbench.engine import measure as m
from wattbench.engine.memory import memory_pass


def _spin(ns: int) -> None:
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


class SpinModel:
    """A 'model' whose run_once spins for call_ns."""

    def __init__(self, call_ns: int, items_per_call: int = 1) -> None:
        self.call_ns = call_ns
        self.items_per_call = items_per_call
        self.calls = 0

    def run_once(self) -> None:
        self.calls += 1
        if self.call_ns:
            _spin(self.call_ns)

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass

    def settings(self) -> dict[str, Any]:
        return {}

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> DeviceMemory:
        return DeviceMemory(notes=("device memory: n/a (a CPU spin loop)",))


class SpinGenerator(SpinModel):
    """A 'decoder': prefill spins prefill_ns, each decode step spins step_ns."""

    def __init__(self, prefill_ns: int, step_ns: int) -> None:
        super().__init__(0)
        self.prefill_ns, self.step_ns = prefill_ns, step_ns
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def prefill(self) -> None:
        _spin(self.prefill_ns)

    def decode_step(self) -> None:
        _spin(self.step_ns)


def _spec(**kw: Any) -> RunSpec:
    base: dict[str, Any] = dict(
        model="builtin:mlp-tiny", preset="quick", t_max_s=3.0, memory_pass=False
    )
    base.update(kw)
    return RunSpec(**base)


def test_ipc_round_trip_and_rejects_malformed_frames() -> None:
    model = SpinModel(50_000)
    out = m.measure(model, _spec(epsilon=0.2, t_max_s=1.0, memory_pass=False), lambda e: None)
    frame = ipc.encode(ipc.Measured(out))
    back = ipc.decode(frame)
    assert isinstance(back, ipc.Measured)
    assert back.measurement.latency == out.latency and back.measurement.phases == out.phases
    np.testing.assert_array_equal(
        back.measurement.arrays["latencies_ns"], out.arrays["latencies_ns"]
    )
    event = MeasureProgress(Phase.MEASURING, "m", n=3, recent_latencies_ns=(1, 2, 3))
    assert ipc.decode(ipc.encode(ipc.Progress(event))) == ipc.Progress(event)
    with pytest.raises(codec.CodecError):
        ipc.decode(frame[:-3])  # truncated
    with pytest.raises(codec.CodecError):
        ipc.decode(b"\x93garbage")
    bad = frame.replace(b"<i8", b"|O8", 1)  # an object dtype must never be decoded
    with pytest.raises(codec.CodecError, match="not allowed"):
        ipc.decode(bad)
    with pytest.raises(codec.CodecError):
        codec.encode_msgpack({"o": np.array([object()])})


def test_a_host_that_changes_speed_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bare loop runs after the window: if the machine got 2x faster in between (a shared
    host freeing its cores), η is not a harness figure and the run says so."""
    model = SpinModel(200_000)
    real_bare_loop = m.bare_loop_throughput

    def host_speeds_up(*args: Any, **kw: Any) -> float:
        model.call_ns //= 2
        return real_bare_loop(*args, **kw)

    monkeypatch.setattr(m, "bare_loop_throughput", host_speeds_up)
    out = m.measure(model, _spec(epsilon=0.2, t_max_s=3.0), lambda e: None, load_s=0.1)
    assert out.phases.harness_efficiency < 0.9
    assert "host_unsteady" in out.flags


def test_measure_spin_workload_converges_with_known_latency() -> None:
    events: list[MeasureProgress] = []
    model = SpinModel(200_000, items_per_call=4)  # 0.2 ms per call, batch 4
    # a loose ε: the spin ends at its wall-clock deadline, so only preemptions at its very end
    # lengthen a sample; the rule must stop this well before T_max even on a busy machine
    spec = _spec(batch_size=4, epsilon=0.2, t_max_s=10.0)
    out = m.measure(model, spec, events.append, load_s=0.5)
    lat = out.latency
    assert out.converged is True, out.notes
    assert lat.n >= 30 and lat.rho <= 0.2
    # the spin lasts at least 200 µs; the timing adds only clock reads on top
    assert 200_000 <= lat.median_ns < 400_000
    assert out.items == lat.n * 4
    thr = out.throughput_items_per_s.value
    assert thr == pytest.approx(4e9 / lat.mean_ns, rel=1e-6)
    ph = out.phases
    assert ph.block_size == 1 and ph.cold_load_s == 0.5
    assert ph.warmup_iterations >= 2 and ph.gc_disabled is True
    assert 0.5 < ph.harness_efficiency < 1.5
    arrays = out.arrays
    assert arrays["latencies_ns"].dtype == np.int64 and arrays["latencies_ns"].size == lat.n
    starts = arrays["starts_ns"]
    assert np.all(np.diff(starts) > 0)
    t0, t1 = out.window_ns
    assert t0 == starts[0] and t1 >= starts[-1] + arrays["latencies_ns"][-1]
    phases = [e.phase for e in events]
    assert phases.index(Phase.WARMUP) < phases.index(Phase.CALIBRATION)
    assert phases.index(Phase.CALIBRATION) < phases.index(Phase.MEASURING)
    assert "not_converged" not in out.flags
    assert ("host_unsteady" in out.flags) == (not 0.9 <= ph.harness_efficiency <= 1.1)


def test_measure_times_very_fast_calls_in_blocks() -> None:
    model = SpinModel(0)  # a bare Python call: far below 100 × the loop's own cost
    out = m.measure(model, _spec(), lambda e: None)
    ph = out.phases
    assert ph.block_size > 1
    assert FLAG_BLOCK_TIMING in out.flags
    # the loop's own cost is ≤ 0.1 % of a block (METHOD.md calibration rule), within noise
    assert ph.null_call_ns <= 0.01 * np.median(out.arrays["block_latencies_ns"])
    per_call = out.arrays["latencies_ns"]
    assert per_call.size == out.latency.n
    assert out.items == per_call.size * ph.block_size


def test_measure_stops_at_t_max_and_says_why() -> None:
    model = SpinModel(100_000)
    out = m.measure(model, _spec(epsilon=1e-6, t_max_s=1.2), lambda e: None)
    assert out.converged is False
    assert "not_converged" in out.flags
    assert "T_max" in out.notes
    assert out.phases.measure_s >= 1.2


def test_measure_generation_splits_ttft_and_tpot() -> None:
    gen = SpinGenerator(prefill_ns=2_000_000, step_ns=500_000)
    spec = _spec(scenario=Scenario.GENERATION, new_tokens=5, model="builtin:gpt-small")
    out = m.measure(gen, spec, lambda e: None)
    g = out.generation
    assert g is not None and g.new_tokens == 5
    # at least what was spun (a busy machine only adds: no upper bound)
    assert g.ttft_ns.value >= 2_000_000 and g.tpot_ns.value >= 500_000
    assert g.e2e_latency_ns is not None  # TTFT + (n − 1)·TPOT is the latency, by construction
    assert g.ttft_ns.value + 4 * g.tpot_ns.value == pytest.approx(g.e2e_latency_ns.value)
    assert out.arrays["decode_step_ns"].shape == (out.latency.n, 4)
    assert g.decode_tokens_per_s.value == pytest.approx(1e9 / g.tpot_ns.value)
    assert out.arrays["ttft_ns"].size == out.latency.n
    assert out.phases.harness_efficiency is None  # no bare loop for generation
    assert gen.resets >= out.latency.n


def test_measure_refuses_generation_on_a_non_generative_model() -> None:
    from wattbench.domain.errors import UnsupportedOptionError

    with pytest.raises(UnsupportedOptionError, match="not a generative model"):
        m.measure(SpinModel(1000), _spec(scenario=Scenario.GENERATION), lambda e: None)


def test_memory_pass_reports_peak_rss_and_says_what_is_na() -> None:
    model = SpinModel(10_000)
    mem = memory_pass(model, lambda k: 0)
    assert mem.peak_rss_bytes is not None and mem.peak_rss_bytes > 10_000_000
    assert mem.torch_allocated_peak_bytes is None
    assert any("peak RSS" in n for n in mem.notes)
    assert "device memory: n/a (a CPU spin loop)" in mem.notes  # the runtime says why


def test_documents_drop_non_finite_and_numpy_scalars() -> None:
    dropped: list[str] = []
    out = codec.to_document({"a": np.float64(1.5), "b": (1, float("inf")), "c": np.int64(3)},
                            dropped=dropped)  # fmt: skip
    assert out == {"a": 1.5, "b": [1, None], "c": 3} and dropped == ["b[1]"]
