"""The service layer without Qt and without torch: plan → check → queue → store → compare.

Runs go through the fake runtime and wall meter of tests/plugins, registered through the entry
point groups as a third-party plugin is; the supervisor, worker processes, sampler, store and
comparison are the real ones. One test repeats the whole flow in a fresh process where
importing torch, onnxruntime or Qt fails (its run workers too), to prove none is needed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from wattbench.backends.runtimes import registry
from wattbench.domain.errors import BadInputError, StoreError, UnknownRunError
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.service.plan import check_plan, plan_runs
from wattbench.service.queue import EventKind, ItemState, QueueEvent, RunQueue
from wattbench.service.request import RunRequest
from wattbench.service.workbench import Workbench

QUICK: dict[str, Any] = dict(
    preset="quick", t_max_s=1.5, idle_baseline=False, memory_pass=False, time_limit_s=120.0
)


def _request(**kw: Any) -> RunRequest:
    base: dict[str, Any] = dict(model="builtin:mlp-tiny", runtimes=("fake",), **QUICK)
    base.update(kw)
    return RunRequest(**base)


# -- planning ---------------------------------------------------------------------------------


def test_a_plan_is_every_combination_with_one_sweep_id(fake_plugins: Path) -> None:
    plan = plan_runs(_request(precisions=("fp32", "fp16"), batch_sizes=(1, 4), repeats=2))
    assert len(plan.specs) == 8 and plan.configurations == 4
    assert plan.sweep_id is not None and {s.sweep_id for s in plan.specs} == {plan.sweep_id}
    assert [s.repeat for s in plan.specs] == [0] * 4 + [1] * 4  # in rounds
    single = plan_runs(_request())
    assert len(single.specs) == 1 and single.sweep_id is None
    check_plan(plan)  # the engine's checks ask the fake runtime: fp32/fp16 on the cpu are fine


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"t_max_s": math.nan}, "t_max_s", "positive number"),
        ({"t_max_s": -1.0}, "t_max_s", "positive number"),
        ({"time_limit_s": math.inf}, "time_limit_s", "positive number"),
        ({"sample_hz": 0.0}, "sample_hz", "positive number"),
        ({"sample_hz": 5000.0}, "sample_hz", "at most 1000"),
        ({"new_tokens": 1, "scenario": "generation"}, "new_tokens", "at least 2 new tokens"),
        ({"ort_provider": "CPUExecutionProvider"}, "ort_provider", "onnxruntime runtime only"),
        ({"repeats": 0}, "repeat", "at least 1"),
        ({"runtimes": ("tensorflow",)}, "runtime", "Unknown runtime"),
    ],
)
def test_a_plan_refuses_what_cannot_work_and_names_the_input(
    fake_plugins: Path, changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(BadInputError, match=words) as caught:
        check_plan(plan_runs(_request(**changes)))
    assert caught.value.field == field
    assert "--" not in str(caught.value)  # no command-line flag in a service message


def test_the_runtime_follows_the_model_when_none_is_chosen(
    fake_plugins: Path, tmp_path: Path
) -> None:
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"not parsed by planning")
    assert plan_runs(RunRequest(model=str(onnx_file))).specs[0].runtime == "onnxruntime"
    assert plan_runs(RunRequest(model="builtin:mlp-tiny")).specs[0].runtime == "torch"
    assert "fake" in registry.runtime_names()  # registered, yet torch lists the format first


def test_a_bare_catalog_name_resolves_or_is_suggested() -> None:
    assert plan_runs(RunRequest(model="mlp-tiny")).specs[0].model == "builtin:mlp-tiny"
    with pytest.raises(BadInputError, match="Did you mean builtin:resnet-small"):
        check_plan(plan_runs(RunRequest(model="resnet-smal")))


def test_a_runtime_registered_by_a_plugin_is_accepted_and_listed(fake_plugins: Path) -> None:
    from wattbench.service.inventory import device_inventory

    inv = device_inventory()
    assert "fake" in inv.runtimes and inv.formats["fake"] == ("torch-module",)
    cpu = inv.device("cpu")
    assert cpu is not None and cpu.usable_with("fake") == (True, "spins the host CPU")
    assert any(d.source == "fakeplug" and d.ok for d in cpu.power)
    assert inv.problem("torch-module", "cpu", "fake", "bf16") is not None
    skipped = plan_runs(_request(precisions=("fp32", "bf16")), combinations=inv)
    assert [s.precision for s in skipped.specs] == ["fp32"]
    assert skipped.skipped and "bf16" in skipped.skipped[0]


# -- the queue --------------------------------------------------------------------------------


def test_plan_queue_store_compare(fake_plugins: Path, tmp_path: Path) -> None:
    events: list[QueueEvent] = []
    plan = plan_runs(_request(precisions=("fp32", "fp16"), repeats=2))
    check_plan(plan)
    with Workbench.open(str(tmp_path / "runs.sqlite")) as wb:
        queue = RunQueue(recorder=wb, listener=events.append)
        queue.submit(plan.specs)
        items = queue.run_all()
        assert [it.state for it in items] == [ItemState.DONE] * 4
        assert all(it.stored and it.result is not None for it in items)
        listed = wb.list_runs()
        assert {r.id for r in listed} == {it.run_id for it in items}
        assert {r.sweep_id for r in listed} == {plan.sweep_id}
        stored = wb.get_run(items[0].run_id)
        assert stored.status is RunStatus.DONE and stored.spec == plan.specs[0]
        # energy came from the plugin meter, measured (not the TDP estimate)
        plug = [e for e in stored.energy if e.source == "fakeplug.power"]
        assert plug and plug[0].avg_power_w == pytest.approx(42.0) and not plug[0].is_estimate
        fp32 = next(it for it in items if it.spec.precision == "fp32")  # rounds are shuffled
        view = wb.compare([it.run_id for it in items], baseline_id=fp32.run_id)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.QUEUED) == 4 and kinds.count(EventKind.FINISHED) == 4
    assert EventKind.PROGRESS in kinds
    progress = [e.progress for e in events if e.progress is not None]
    assert {p.run_count for p in progress} <= {1, 2, 3, 4} and progress[-1].run_index == 3
    comparison = view.comparison
    assert [g.replicates for g in comparison.groups] == [2, 2]
    ratio = comparison.rows[0].ratios["throughput"]
    # fp16 spins half as long per item: about twice the throughput, within noise
    assert ratio.value is not None and 1.5 < ratio.value < 2.6
    energy = comparison.rows[0].ratios["energy"]
    assert energy.value is not None and energy.value < 0.8  # the same 42 W, half the time


def test_the_queue_goes_on_after_a_failure_and_cancels(fake_plugins: Path) -> None:
    queue = RunQueue()
    failing = RunSpec(model="builtin:mlp-tiny", runtime="fake", **{**QUICK, "time_limit_s": 0.2})
    ok = RunSpec(model="builtin:mlp-tiny", runtime="fake", **QUICK)
    *_, third = queue.submit([failing, ok, ok])
    queue.cancel(third.key)
    items = queue.run_all()
    assert [it.state for it in items] == [ItemState.FAILED, ItemState.DONE]
    assert items[0].result is not None and items[0].result.error_kind == "time_limit"
    cancelled = queue.item(third.key)
    assert cancelled is not None and cancelled.state is ItemState.CANCELLED
    assert cancelled.result is None and cancelled.reason == "Cancelled before it started."
    assert not queue.busy


def test_a_store_that_fails_is_reported_not_silent(fake_plugins: Path) -> None:
    class BrokenStore:
        def begin_run(self, spec: RunSpec, run_id: str) -> None:
            raise StoreError("the database is locked")

        def finish_run(self, result: RunResult) -> None:
            raise StoreError("the database is locked")

    queue = RunQueue(recorder=BrokenStore())
    queue.submit([RunSpec(model="builtin:mlp-tiny", runtime="fake", **QUICK)])
    (item,) = queue.run_all()
    assert item.state is ItemState.DONE and item.result is not None  # measured, kept in memory
    assert not item.stored and item.unstored
    assert (item.store_error or "").startswith("the database is locked. It is kept aside in ")
    assert item.reason is not None and "Not stored" in item.reason


def test_unknown_ids_are_bad_input(tmp_path: Path) -> None:
    with Workbench.open(str(tmp_path / "empty.sqlite")) as wb, pytest.raises(UnknownRunError):
        wb.get_run("abcdef12")
    assert UnknownRunError.exit_code == 2


def test_a_store_in_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    where = tmp_path / "no-such-folder" / "runs.sqlite"
    with pytest.raises(StoreError, match="does not exist") as caught:
        Workbench.open(str(where))
    assert caught.value.exit_code == 2 and caught.value.field == "db"
    assert not where.parent.exists()


# -- no torch, no Qt --------------------------------------------------------------------------

FLOW = """
import json, sys
from wattbench.service.plan import check_plan, plan_runs
from wattbench.service.request import RunRequest
from wattbench.service.queue import RunQueue
from wattbench.service.workbench import Workbench

plan = plan_runs(RunRequest(model="builtin:mlp-tiny", runtimes=("fake",),
                            precisions=("fp32", "fp16"), repeats=1, **json.loads(sys.argv[2])))
check_plan(plan)
with Workbench.open(sys.argv[1]) as wb:
    queue = RunQueue(recorder=wb)
    queue.submit(plan.specs)
    items = queue.run_all()
    fp32 = next(it.run_id for it in items if it.spec.precision == "fp32")
    view = wb.compare([it.run_id for it in items], baseline_id=fp32)
    worker = wb.get_run(items[0].run_id).system["runtime_settings"]["torch_importable"]
heavy = sorted(m for m in ("torch", "onnxruntime", "PySide6") if m in sys.modules)
try:
    import torch  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
print(json.dumps({"states": [it.state.value for it in items], "stored": [it.stored for it in items],
                  "verdict": view.comparison.rows[0].ratios["throughput"].kind,
                  "imported": heavy, "blocked": blocked, "worker_torch_importable": worker}))
"""


def test_the_whole_flow_needs_no_torch_and_no_qt(tmp_path: Path) -> None:
    plugins = Path(__file__).parent / "plugins"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(plugins / "no_heavy_imports"), str(plugins), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(FLOW),
            str(tmp_path / "r.sqlite"),
            json.dumps(QUICK),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "states": ["done", "done"],
        "stored": [True, True],
        "verdict": out["verdict"],
        "imported": [],
        "blocked": True,  # the test process could not have imported torch...
        "worker_torch_importable": False,  # ...nor could the run's worker
    }
    # a busy host may leave the runs unconverged or contended: then the verdict says so
    assert out["verdict"] in ("faster", "inconclusive", "unreliable")
