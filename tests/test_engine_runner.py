"""The engine end to end: spawned workers, faults, time limit, cancel, both runtimes, generation.

Every run here is a real worker process measuring a real built-in model on the CPU; T_max is
kept short (preset quick, --t-max of a second or two) so the whole file takes well under a
minute or two on a busy two-core machine. Timings are never asserted tightly.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from wattbench.domain import codec
from wattbench.domain.errors import DeviceError, ModelError, ShapeError, UnsupportedOptionError
from wattbench.domain.events import CancelToken, Phase, ProgressEvent
from wattbench.domain.result import RunResult, RunStatus, result_document
from wattbench.domain.spec import RunSpec, Scenario, expand_sweep
from wattbench.engine import runner
from wattbench.service.queue import RunQueue

from tests.specs import quick_spec

FAULT_ENV = "WATTBENCH_TEST_FAULT"


def quick(model: str = "builtin:mlp-tiny", **kw: Any) -> RunSpec:
    return quick_spec(model, **{"t_max_s": 1.5, **kw})


def _check_done(r: RunResult) -> None:
    assert r.status is RunStatus.DONE, r.reason
    assert r.latency is not None and r.latency.n >= 30
    assert r.throughput_items_per_s is not None and r.throughput_items_per_s.value > 0
    assert r.model is not None and len(r.model.sha256) == 64
    assert r.arrays["latencies_ns"].size == r.latency.n
    assert r.arrays["window_ns"][1] > r.arrays["window_ns"][0]
    assert r.phases.worker_start_s is not None and r.phases.worker_start_s > 0
    assert r.phases.total_s is not None and r.phases.total_s >= r.phases.measure_s > 0
    assert r.system.get("worker_process", {}).get("pid")
    # energy is either measured or says why not (never a silent 0)
    assert r.energy or r.energy_na_reason


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_quick_run_on_each_runtime(runtime: str) -> None:
    events: list[ProgressEvent] = []
    r = runner.run_one(quick(runtime=runtime, memory_pass=runtime == "torch"), events.append)
    _check_done(r)
    assert r.phases.harness_efficiency is not None and r.phases.harness_efficiency > 0
    phases = [e.phase for e in events]
    for ph in (Phase.STARTING, Phase.LOADING, Phase.WARMUP, Phase.MEASURING, Phase.DONE):
        assert ph in phases
    assert phases.index(Phase.LOADING) < phases.index(Phase.MEASURING) < phases.index(Phase.DONE)
    measuring = [e for e in events if e.phase == Phase.MEASURING and e.recent_latencies_ns]
    assert measuring and all(e.run_count == 1 for e in events)
    if runtime == "torch":
        assert r.memory is not None and r.memory.peak_rss_bytes
    # the result survives its JSON document (store, bundles) and MessagePack unchanged
    back = codec.from_document(result_document(r), RunResult)
    assert back.latency == r.latency and back.phases == r.phases and back.spec == r.spec
    wire = codec.decode_msgpack(codec.encode_msgpack(r), RunResult)
    assert wire.latency == r.latency and wire.system == r.system
    np.testing.assert_array_equal(wire.arrays["latencies_ns"], r.arrays["latencies_ns"])


def test_generation_run_with_gpt_small() -> None:
    r = runner.run_one(
        quick("builtin:gpt-small", scenario=Scenario.GENERATION, new_tokens=4, prompt_tokens=8)
    )
    _check_done(r)
    g = r.generation
    assert g is not None and g.new_tokens == 4 and r.latency is not None
    assert 0 < g.ttft_ns.value < r.latency.mean_ns
    assert g.tpot_ns.value > 0 and g.decode_tokens_per_s.value > 0
    assert r.arrays["ttft_ns"].size == r.latency.n


def test_a_sweep_through_the_queue_counts_items_by_batch() -> None:
    specs = expand_sweep(quick(t_max_s=1.0), batch_sizes=[1, 4], sweep_id="s1")
    recorded: list[tuple[str, str]] = []

    class Recorder:
        def begin_run(self, spec: RunSpec, run_id: str) -> None:
            recorded.append(("begin", run_id))

        def finish_run(self, result: RunResult) -> None:
            recorded.append(("finish", result.id))

    queue = RunQueue(recorder=Recorder())
    queue.submit(specs)
    items = queue.run_all()
    results = [it.result for it in items]
    assert all(r is not None for r in results)
    assert [r.spec.batch_size for r in results if r] == [1, 4]
    ids = [r.id for r in results if r]
    assert recorded == [
        ("begin", ids[0]),
        ("finish", ids[0]),
        ("begin", ids[1]),
        ("finish", ids[1]),
    ]
    for r in results:
        assert r is not None
        _check_done(r)
    r4 = results[1]
    assert r4 is not None and r4.latency is not None and r4.throughput_items_per_s is not None
    per_item_ns = 1e9 / r4.throughput_items_per_s.value
    assert per_item_ns == pytest.approx(r4.latency.mean_ns / 4, rel=0.05)


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        ("crash", "crash", "crashed (SIGABRT)"),
        ("oom", "out_of_memory", "Out of memory"),
        ("oom-kill", "out_of_memory", "out-of-memory killer"),
        ("raise", "error", "simulated failure"),
    ],
)
def test_worker_faults_become_failed_runs(
    monkeypatch: pytest.MonkeyPatch, fault: str, kind: str, words: str
) -> None:
    monkeypatch.setenv(FAULT_ENV, fault)
    r = runner.run_one(quick())
    assert r.status is RunStatus.FAILED
    assert r.error_kind == kind
    assert r.reason is not None and words in r.reason
    assert r.latency is None and r.energy_na_reason
    if fault == "crash":  # the caller carries on: the next run (fault removed) works
        monkeypatch.delenv(FAULT_ENV)
        _check_done(runner.run_one(quick(t_max_s=1.0)))


def test_hang_hits_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "hang")
    r = runner.run_one(quick(time_limit_s=8.0))
    assert r.status is RunStatus.FAILED
    assert r.error_kind == "time_limit"
    assert r.reason is not None and "time limit of 8 s" in r.reason
    assert r.phases.total_s is not None and r.phases.total_s >= 8.0


def _run_in_thread(spec: RunSpec, token: CancelToken) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {"events": []}

    def target() -> None:
        box["result"] = runner.run_one(spec, box["events"].append, token)
        box["returned_at"] = time.monotonic()

    t = threading.Thread(target=target)
    t.start()
    return t, box


@pytest.mark.parametrize("fault", ["", "hang"])
def test_cancel_is_honoured_quickly(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    if fault:
        monkeypatch.setenv(FAULT_ENV, fault)
    token = CancelToken()
    t, box = _run_in_thread(quick(t_max_s=60.0, epsilon=1e-6), token)
    deadline = time.monotonic() + 90
    want = Phase.MEASURING if not fault else Phase.CALIBRATION
    while time.monotonic() < deadline and not any(e.phase == want for e in box["events"]):
        time.sleep(0.05)
    assert any(e.phase == want for e in box["events"]), "the run never reached " + want
    time.sleep(0.3 if not fault else 1.0)
    asked = time.monotonic()
    token.cancel()
    t.join(30)
    assert not t.is_alive()
    r: RunResult = box["result"]
    assert r.status is RunStatus.CANCELLED
    assert r.reason is not None and "Cancelled" in r.reason
    # loosely: the target is 1 s; a busy machine gets slack, but not the 60 s T_max
    assert box["returned_at"] - asked < 10.0
    assert box["events"][-1].phase == Phase.CANCELLED


@pytest.mark.parametrize(
    ("spec_kw", "exc", "words"),
    [
        ({"model": "/nonexistent/model.onnx"}, ModelError, "does not exist"),
        ({"model": "builtin:nope"}, ModelError, "Unknown built-in model"),
        ({"device": "cuda:7"}, DeviceError, "cuda:7"),
        ({"scenario": Scenario.GENERATION}, UnsupportedOptionError, "not a generative model"),
        ({"model": "builtin:bert-small", "dims": {"seq_len": 100000}}, ShapeError, "seq_len"),
    ],
)
def test_validate_refuses_bad_input_before_any_worker(
    spec_kw: dict[str, Any], exc: type[Exception], words: str
) -> None:
    with pytest.raises(exc, match=words):
        runner.run_one(quick(**spec_kw))


def test_worker_exits_are_described_for_the_user() -> None:
    from wattbench.engine.supervisor import describe_exit

    kind, reason = describe_exit(-9)
    assert kind == "out_of_memory" and "SIGKILL" in reason and "out-of-memory" in reason
    kind, reason = describe_exit(-11)
    assert kind == "crash" and "SIGSEGV" in reason
    kind, reason = describe_exit(1)
    assert kind == "crash" and "code 1" in reason


def test_cancel_during_the_idle_baseline_starts_no_worker() -> None:
    token = CancelToken()
    events: list[ProgressEvent] = []

    def progress(e: ProgressEvent) -> None:
        events.append(e)
        if e.phase == Phase.IDLE_BASELINE:
            token.cancel()

    r = runner.run_one(quick(idle_baseline=True), progress, token)
    phases = [e.phase for e in events]
    if Phase.IDLE_BASELINE not in phases:
        pytest.skip("no power source at all here: the run has no idle baseline phase")
    assert r.status is RunStatus.CANCELLED
    assert Phase.STARTING not in phases and phases[-1] == Phase.CANCELLED
