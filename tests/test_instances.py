"""Multi-instance CPU runs: core sets on a fake NUMA tree, each instance's affinity seen inside
its own worker, the aggregate as the sum of the instances, one power measurement for the
group, and `wattbench run --instances` stored and shown."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wattbench.backends.numa import numa_nodes, parse_cpulist
from wattbench.cli.main import main
from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.domain.events import CancelToken, Phase, ProgressEvent
from wattbench.domain.instances import FLAG_SHORT_COMMON_WINDOW
from wattbench.domain.result import Measurement, PhaseTimings, RunResult, RunStatus
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine import stats
from wattbench.engine.instances import combine
from wattbench.engine.measure import measure
from wattbench.engine.metrics import config_labels
from wattbench.engine.pinning import (
    CorePlan,
    CoreSet,
    GroupLink,
    check_instances,
    plan_core_sets,
)
from wattbench.engine.runner import run_one
from wattbench.service.plan import plan_runs
from wattbench.service.request import RunRequest

from tests.fakes.sysfs import FakeSysfs, live_counters
from tests.specs import quick_spec
from tests.test_engine_measure import SpinModel

PKG_W = 30.0


def _disjoint_cover(plan: CorePlan, instances: int, threads: int) -> set[int]:
    cpus = [c for s in plan.sets for c in s.cpus]
    assert len(plan.sets) == instances
    assert all(len(s.cpus) == threads for s in plan.sets)
    assert len(cpus) == len(set(cpus)), f"core sets overlap: {plan.sets}"
    return set(cpus)


# -- core sets ------------------------------------------------------------------------------


def test_core_sets_stay_inside_the_nodes_of_a_fake_numa_tree(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.numa_node(0, "0-3,8-11")
    fs.numa_node(1, "4-7,12-15")
    fs.numa_node(2, "")  # a memory-only node
    nodes = numa_nodes(str(tmp_path))
    assert nodes == {0: (0, 1, 2, 3, 8, 9, 10, 11), 1: (4, 5, 6, 7, 12, 13, 14, 15)}

    plan = plan_core_sets(range(16), nodes, 4, 4)
    assert _disjoint_cover(plan, 4, 4) == set(range(16))
    assert plan.nodes == 2 and not plan.note
    for s in plan.sets:
        assert s.node is not None and set(s.cpus) <= set(nodes[s.node])
    assert [s.node for s in plan.sets] == [0, 1, 0, 1]  # spread over the nodes in turn

    # only the CPUs this process may use (an affinity mask, a cgroup) are given out
    allowed = {1, 2, 3, 5, 6, 7, 9, 13}
    plan = plan_core_sets(allowed, nodes, 3, 2)
    assert _disjoint_cover(plan, 3, 2) <= allowed
    for s in plan.sets:
        assert s.node is not None and set(s.cpus) <= set(nodes[s.node])


def test_sets_that_cannot_stay_in_one_node_span_nodes_and_say_so() -> None:
    nodes = {0: (0, 1, 2), 1: (3, 4, 5)}
    plan = plan_core_sets(range(6), nodes, 3, 2)
    assert _disjoint_cover(plan, 3, 2) == set(range(6))
    assert "span nodes" in plan.note
    assert all(s.node is None for s in plan.sets)


def test_a_machine_without_nodes_is_one_node(tmp_path: Path) -> None:
    assert numa_nodes(str(tmp_path)) == {}
    plan = plan_core_sets({0, 1, 2, 3}, {}, 2, 2)
    assert _disjoint_cover(plan, 2, 2) == {0, 1, 2, 3}
    assert plan.nodes == 1


def test_unreadable_or_garbled_nodes_give_no_partial_map(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.numa_node(0, "0-3")
    fs.numa_node(1, "4-x")
    assert numa_nodes(str(tmp_path)) == {}
    assert parse_cpulist("0-2, 5,7-8\n") == (0, 1, 2, 5, 7, 8)
    with pytest.raises(ValueError):
        parse_cpulist("3-1")


def test_more_cores_than_the_process_may_use_are_refused() -> None:
    with pytest.raises(BadInputError) as err:
        plan_core_sets({0, 1}, {}, 2, 2)
    assert err.value.field == "instances"
    assert "4 CPU cores" in str(err.value) and "may use 2" in str(err.value)
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(BadInputError) as err:
        check_instances(RunSpec("builtin:mlp-small", instances=cores + 1, threads=1))
    assert err.value.field == "instances"


def test_what_cannot_work_is_refused_with_its_field() -> None:
    refused: list[dict[str, Any]] = [
        {"instances": 2, "device": "cuda:0"},
        {"instances": 2, "scenario": Scenario.GENERATION, "model": "builtin:gpt-small"},
        {"instances": 0},
        {"instances": 2, "cpu_set": (0,)},
    ]
    for kw in refused:
        with pytest.raises(BadInputError) as err:
            RunSpec(**{"model": "builtin:mlp-small", **kw})
        assert err.value.field in ("instances", "cpu_set"), kw
    with pytest.raises(BadInputError) as err:
        RunSpec("builtin:mlp-small", cpu_set=(1, 1))
    assert err.value.field == "cpu_set"


def test_a_sweep_over_instances_and_threads_plans_each_pair() -> None:
    plan = plan_runs(
        RunRequest("builtin:mlp-small", threads=(1, 2), instance_counts=(1, 2), repeats=1)
    )
    pairs = sorted((s.instances, s.threads) for s in plan.specs)
    assert pairs == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert plan.configurations == 4  # the instance count sets configurations apart
    with pytest.raises(BadInputError) as err:
        plan_runs(RunRequest("builtin:mlp-small", devices=("cuda:0",), instance_counts=(2,)))
    assert err.value.field == "instances"


def test_compare_names_configurations_by_their_instance_count() -> None:
    runs = [
        RunResult(spec=RunSpec("builtin:mlp-small", threads=1, instances=n), status=RunStatus.DONE)
        for n in (1, 2)
    ]
    assert config_labels(runs) == ["cpu · torch · i1", "cpu · torch · i2"]


# -- combining -------------------------------------------------------------------------------


def _measured(start_ns: int, call_ns: int, n: int, items_per_call: int = 1) -> Measurement:
    starts = start_ns + np.arange(n, dtype=np.int64) * call_ns
    lats = np.full(n, call_ns, dtype=np.int64) + (np.arange(n) % 3).astype(np.int64)
    summary = stats.summarize(lats, (0.5, 0.99))
    return Measurement(
        phases=PhaseTimings(measure_s=n * call_ns / 1e9),
        latency=summary,
        throughput_items_per_s=stats.throughput_interval(n, int(lats.sum()), summary.rho),
        converged=True,
        flags=(),
        items=n * items_per_call,
        window_ns=(int(starts[0]), int(starts[-1] + lats[-1])),
        arrays={"latencies_ns": lats, "starts_ns": starts},
    )


def test_the_aggregate_counts_the_common_window_and_is_the_sum_of_the_instances() -> None:
    spec = RunSpec("builtin:mlp-small", instances=2, threads=1, percentiles=(0.5, 0.99))
    plan = CorePlan((CoreSet((0,), None), CoreSet((1,), None)), 1)
    ms = 1_000_000
    a = _measured(0, ms, 2000)  # 0 → 2 s, 1 ms calls
    b = _measured(500 * ms, 2 * ms, 1000, items_per_call=4)  # 0.5 → 2.5 s, 2 ms calls of 4
    group, summary = combine(spec, plan, [a, b])
    assert group.window_ns == (500 * ms, a.window_ns[1])
    window_s = summary.window_s
    assert window_s == pytest.approx(1.5, rel=1e-3)
    first, second = summary.instances
    # ~1.5 s of each: 1,500 calls of 1 item, 750 calls of 4 items
    assert first.items == pytest.approx(1500, rel=2e-3)
    assert second.items == pytest.approx(3000, rel=2e-3)
    assert summary.throughput_items_per_s == pytest.approx(
        first.throughput_items_per_s + second.throughput_items_per_s
    )
    assert group.throughput_items_per_s.value == summary.throughput_items_per_s
    assert group.throughput_items_per_s.value == pytest.approx(3000, rel=3e-3)
    assert group.items == round(summary.items)
    assert group.latency.n == first.n + second.n  # pooled calls inside the window
    assert FLAG_SHORT_COMMON_WINDOW not in group.flags

    late = _measured(1900 * ms, ms, 500)  # overlaps the first for 0.1 s only
    group, summary = combine(spec, plan, [a, late])
    assert FLAG_SHORT_COMMON_WINDOW in group.flags
    with pytest.raises(BadInputError):
        combine(spec, plan, [a, _measured(3000 * ms, ms, 100)])


# -- starting and stopping together ----------------------------------------------------------


def test_the_group_link_counts_each_instance_once_and_stops_them_together() -> None:
    ctx = multiprocessing.get_context()
    first = GroupLink(2, ctx)
    second = copy.copy(first)  # the other instance's view: the same shared values
    assert not first.may_stop() and not first.may_stop()  # counted once, however often asked
    assert second.may_stop()  # the last one to get there releases the group
    assert first.may_stop()
    broken = GroupLink(2, ctx)
    broken.abort()  # an instance failed: the others leave the start line, the measuring stop
    with pytest.raises(WattbenchError):
        broken.wait_start()
    assert broken.may_stop()


def test_an_instance_whose_rule_is_met_measures_on_until_the_group_may_stop() -> None:
    # a very loose epsilon: the rule is met after its minimums (1 s) even on a busy machine
    spec = RunSpec("builtin:mlp-tiny", preset="quick", epsilon=0.5, t_max_s=3.0, memory_pass=False)
    ctx = multiprocessing.get_context()
    alone = measure(SpinModel(200_000), spec, lambda e: None, group=GroupLink(1, ctx))
    assert alone.converged, alone.notes
    assert alone.phases.measure_s < spec.measurement_t_max_s  # nobody to wait for
    # the other instance starts but never meets its rule: this one holds on to T_max, still
    # converged
    link = GroupLink(2, ctx)
    other = copy.copy(link)
    threading.Thread(target=other.wait_start, daemon=True).start()
    held = measure(SpinModel(200_000), spec, lambda e: None, group=link)
    assert held.converged and held.phases.stop_reason == "converged"
    assert held.phases.measure_s >= spec.measurement_t_max_s


def test_an_instance_that_fails_fails_the_group_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two instances of one thread need two CPUs")
    monkeypatch.setenv("WATTBENCH_TEST_FAULT", "raise")  # every worker fails before measuring
    result = run_one(quick_spec("builtin:mlp-tiny", instances=2, threads=1))
    assert result.status is RunStatus.FAILED and result.instances is None
    assert result.reason is not None and result.reason.startswith("Instance ")
    assert "test fault" in result.reason


def test_a_cancelled_group_stops_every_instance() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two instances of one thread need two CPUs")
    token = CancelToken()
    phases: list[str] = []

    def progress(event: ProgressEvent) -> None:
        phases.append(event.phase)
        if event.phase == Phase.WARMUP:  # instance 1 relays the group's progress
            token.cancel()

    result = run_one(quick_spec("builtin:mlp-tiny", instances=2, threads=1), progress, token)
    assert result.status is RunStatus.CANCELLED, result.reason
    assert Phase.WARMUP in phases and Phase.DONE not in phases


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_instance_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`wattbench run --instances 2 --threads 1` on a fake tree: two NUMA nodes over the two
    CPUs this process may use first, and one RAPL package at PKG_W."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("two instances of one thread need two CPUs")
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("an NVIDIA driver is present: NVML would join the fake tree's sensors")
    root = tmp_path_factory.mktemp("instances")
    fs = FakeSysfs(root / "sys")
    fs.numa_node(0, str(cpus[0]))
    fs.numa_node(1, str(cpus[1]))
    fs.rapl_zone("intel-rapl:0", "package-0", 0)
    data = root / "data"
    data.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("WATTBENCH_SYSFS_ROOT", str(fs.root))
    mp.setenv("WATTBENCH_DATA_DIR", str(data))
    argv = ["run", "--model", "builtin:mlp-small", "--instances", "2", "--threads", "1",
            "--preset", "quick", "--t-max", "2", "--no-idle", "--no-memory", "--json"]  # fmt: skip
    try:
        with live_counters(fs, {"intel-rapl:0": PKG_W}):
            yield {"argv": argv, "cpus": cpus[:2], "data": data}
    finally:
        mp.undo()


def _run_json(
    run: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("WATTBENCH_DATA_DIR", str(run["data"]))
    if "doc" not in run:
        code = main(run["argv"])
        out = capsys.readouterr().out
        assert code == 0, out
        run["doc"] = json.loads(out)
    doc: dict[str, Any] = run["doc"]
    return doc


def test_each_instance_runs_pinned_to_its_own_cores(
    two_instance_run: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (run,) = _run_json(two_instance_run, capsys, monkeypatch)["runs"]
    assert run["status"] == "done", run["reason"]
    inst = run["instances"]
    assert inst["count"] == 2 and inst["threads"] == 1 and inst["numa_nodes"] == 2
    first, second = two_instance_run["cpus"]
    assert [i["cpu_set"] for i in inst["instances"]] == [[first], [second]]
    assert [i["numa_node"] for i in inst["instances"]] == [0, 1]
    for i in inst["instances"]:  # read by os.sched_getaffinity(0) inside the worker
        assert i["affinity"] == i["cpu_set"]
    # they started together at the start line and held on for each other
    assert FLAG_SHORT_COMMON_WINDOW not in run["flags"]


def test_the_run_is_the_aggregate_under_one_power_measurement(
    two_instance_run: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (run,) = _run_json(two_instance_run, capsys, monkeypatch)["runs"]
    inst = run["instances"]
    parts = [i["throughput_items_per_s"] for i in inst["instances"]]
    assert run["throughput_items_per_s"]["value"] == pytest.approx(sum(parts), rel=1e-9)
    assert inst["throughput_items_per_s"] == run["throughput_items_per_s"]["value"]
    assert all(p > 0 for p in parts)
    assert run["latency"]["n"] == sum(i["n"] for i in inst["instances"])
    # one sampler for the group: one package figure, over the common window, for every item
    pkg = [f for f in run["energy"] if f["domain"] == "package-0"]
    assert len(pkg) == 1, run["energy"]
    (fig,) = pkg
    assert fig["source"] == "rapl.package-0" and fig["method"] == "counter-difference"
    assert fig["items"] == round(inst["items"])
    assert fig["duration_s"] == pytest.approx(inst["window_s"], rel=1e-6)
    # the package counted once: never above its power (the writer thread can fall behind when
    # two workers hold both CPUs, so only the upper side is certain; counted twice is ~2x)
    assert 0 < fig["avg_power_w"] <= PKG_W * 1.25


def test_the_group_is_stored_and_shown(
    two_instance_run: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (run,) = _run_json(two_instance_run, capsys, monkeypatch)["runs"]
    assert main(["show", run["id"][:8]]) == 0
    text = capsys.readouterr().out
    assert "instances: 2 × 1 thread" in text and "= the sum of the instances'" in text
    assert "instance 1: CPU" in text and "instance 2: CPU" in text
    assert "i2" in text.splitlines()[1]  # the label names the instance count
    assert main(["show", run["id"][:8], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["spec"]["instances"] == 2
    assert shown["instances"]["throughput_items_per_s"] == run["throughput_items_per_s"]["value"]
    assert "instance_index" in shown["arrays"]
