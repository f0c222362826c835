"""The prepared GPU device check (tests/gpu) as far as a machine without a GPU allows: it stops
at once and says so; its steps are recorded one by one (a failing or hanging one loses none of
the others); the package layout it builds from the tree imports and finds its plugins; its
arithmetic (timing and energy agreement, throttle reasons) and its reading of the command
line's JSON, on made-up inputs; its energy step against a fake NVML.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

REPO = Path(__file__).resolve().parents[1]
GPU_DIR = REPO / "tests" / "gpu"
HAS_NVIDIA = Path("/proc/driver/nvidia").exists()


def _load(name: str) -> ModuleType:
    """The check's modules import each other by plain name, as scripts beside each other."""
    if str(GPU_DIR) not in sys.path:
        sys.path.insert(0, str(GPU_DIR))
    return importlib.import_module(name)


figures = _load("check_figures")
device_check = _load("device_check")


# -- without a GPU: a clear stop before anything runs ----------------------------------------


@pytest.mark.skipif(HAS_NVIDIA, reason="an NVIDIA driver is here: the check would really run")
def test_without_a_gpu_the_script_stops_at_once_and_says_so(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(GPU_DIR / "device-check.sh"), str(out), "--work", str(work)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == device_check.EXIT_NO_GPU == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("device-check: no NVIDIA GPU/driver found (")
    assert "nothing was measured" in lines[0]
    assert done.stdout == ""
    doc = json.loads((out / "device-check.json").read_text())
    assert doc["gpu_found"] is False and doc["ok"] is False and doc["steps"] == []
    assert doc["error"] in lines[0]
    assert "NOT RUN: no NVIDIA GPU/driver found" in (out / "device-check.txt").read_text()
    assert not work.exists()  # nothing installed, laid out or started
    assert sorted(p.name for p in out.iterdir()) == ["device-check.json", "device-check.txt"]


def test_the_script_without_an_output_folder_is_a_usage_error() -> None:
    done = subprocess.run(
        ["bash", str(GPU_DIR / "device-check.sh")], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.parametrize(
    ("nvml", "why"),
    [
        (FakeNvml(library_missing=True), "NVML: NVML Shared Library Not Found"),
        (FakeNvml([]), "NVML sees no GPU"),
    ],
)
def test_preflight_finds_no_gpu(nvml: FakeNvml, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert device_check.preflight() == (None, why)


def test_preflight_names_the_gpus_it_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    class WithDriver(FakeNvml):
        def nvmlSystemGetDriverVersion(self) -> str:
            return "580.159.03"

    monkeypatch.setitem(sys.modules, "pynvml", WithDriver([FakeGpu(name="NVIDIA H200")]))
    assert device_check.preflight() == ({"gpus": ["NVIDIA H200"], "driver": "580.159.03"}, None)


# -- steps: each recorded, none lost to another's failure --------------------------------------


def _ctx(tmp_path: Path, budget_s: float = 120.0) -> Any:
    (tmp_path / "work").mkdir(exist_ok=True)
    return device_check.Context(
        out=tmp_path, work=tmp_path / "work", python=sys.executable,
        deadline=time.monotonic() + budget_s, env=dict(os.environ),
    )  # fmt: skip


def _py(code: str) -> list[str]:
    return ["-c", code]


def test_a_failing_a_hanging_and_a_broken_step_lose_none_of_the_others(tmp_path: Path) -> None:
    def broken(ctx: Any, name: str, timeout_s: float) -> dict[str, Any]:
        raise KeyError("no such figure")

    def prints(doc: dict[str, Any]) -> list[str]:
        return _py(f"print({json.dumps(doc)!r})")

    read = lambda d: dict(d)  # noqa: E731
    json_step = device_check.json_step
    steps = [
        ("fails", 30.0, json_step(_py("import sys; sys.exit('it broke')"), read)),
        ("hangs", 1.0, json_step(_py("import time; time.sleep(60)"), read)),
        ("broken", 30.0, broken),
        ("saves", 30.0, json_step(prints({"ok": True, "x": 1}), read, "x.json")),
        ("says_no", 30.0, json_step(prints({"ok": False, "reason": "too hot"}), read)),
    ]
    ctx = _ctx(tmp_path)
    device_check.run_steps(ctx, steps)
    got = {s["name"]: s for s in ctx.steps}
    assert [s["name"] for s in ctx.steps] == ["fails", "hangs", "broken", "saves", "says_no"]
    assert got["fails"]["status"] == "failed"
    assert got["fails"]["reason"] == "exit code 1: it broke (no JSON on stdout)"
    assert got["hangs"]["status"] == "failed"
    assert got["hangs"]["reason"].startswith("timed out after 1 s")
    assert got["broken"] == got["broken"] | {
        "status": "failed",
        "reason": "KeyError: 'no such figure'",
    }
    assert got["saves"]["status"] == "ok" and got["saves"]["figures"] == {"x": 1}
    assert json.loads((tmp_path / "x.json").read_text()) == {"ok": True, "x": 1}
    assert got["says_no"]["status"] == "failed" and got["says_no"]["reason"] == "too hot"
    doc = json.loads((tmp_path / "device-check.json").read_text())  # written after each step
    assert [s["status"] for s in doc["steps"]] == ["failed", "failed", "failed", "ok", "failed"]
    assert doc["finished"] is False and doc["ok"] is False
    assert (
        "result: FAILED (fails, hangs, broken, says_no), UNFINISHED"
        in (tmp_path / "device-check.txt").read_text()
    )
    log = (tmp_path / "device-check.log").read_text()
    assert "== fails:" in log and "it broke" in log and "(timed out after 1 s)" in log


def test_steps_past_the_budget_are_skipped_not_started(tmp_path: Path) -> None:
    started = []

    def step(ctx: Any, name: str, timeout_s: float) -> dict[str, Any]:
        started.append((name, timeout_s))
        return {"ok": True}

    ctx = _ctx(tmp_path, budget_s=device_check.MIN_STEP_S + 20.0)
    device_check.run_steps(ctx, [("first", 300.0, step), ("second", 5.0, step)])
    assert [n for n, _ in started] == ["first", "second"]
    assert started[0][1] <= device_check.MIN_STEP_S + 20.0  # capped by the budget
    assert started[1][1] == 5.0
    ctx = _ctx(tmp_path, budget_s=device_check.MIN_STEP_S - 1.0)
    device_check.run_steps(ctx, [("late", 30.0, step)])
    assert ctx.steps[0]["status"] == "skipped" and "out of time" in ctx.steps[0]["reason"]
    assert [n for n, _ in started] == ["first", "second"]


# -- the package laid out from the tree, and the wheels it needs ------------------------------


def test_the_layout_imports_the_tree_and_finds_its_plugins(tmp_path: Path) -> None:
    dest = device_check.build_layout(tmp_path / "pkg")
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())
    for package in conf["tool"]["setuptools"]["packages"]:
        assert (dest.joinpath(*package.split(".")) / "__init__.py").is_file(), package
    assert (dest / "wattbench" / "db" / "migrations" / "script.py.mako").is_file()
    probe = (
        "import json, importlib.metadata as m, wattbench, wattbench.backends.sensors.nvml as n, "
        "wattbench.db as d; print(json.dumps([wattbench.__file__, n.__file__, d.__file__, "
        "sorted(e.name for e in m.entry_points(group='wattbench.runtimes') "
        f"if str(e.dist.locate_file('')).startswith({str(dest)!r}))]))"
    )
    env = dict(os.environ, PYTHONPATH=str(dest))
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    assert all(f.startswith(str(dest)) for f in files[:3])
    assert files[3] == sorted(conf["project"]["entry-points"]["wattbench.runtimes"])
    done = subprocess.run(
        [sys.executable, "-m", "wattbench.cli.main", "--version"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == f"wattbench {conf['project']['version']}"


def _dist(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return name.lower().replace("_", "-")


def test_every_runtime_dependency_says_how_it_reaches_the_gpu_machine() -> None:
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = {}
    for line in (GPU_DIR / "wheels.txt").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            listed[words[0]] = words[1]
    assert set(listed.values()) <= {"present", "wheel", "unused"}
    missing = {_dist(r) for r in conf["project"]["dependencies"]} - set(listed)
    assert not missing, f"add these to tests/gpu/wheels.txt: {sorted(missing)}"
    assert device_check.wheel_modules() == {
        "sqlalchemy": "sqlalchemy", "alembic": "alembic", "mako": "mako",
        "typing-extensions": "typing_extensions", "platformdirs": "platformdirs",
        "msgspec": "msgspec",
    }  # fmt: skip


def test_the_commands_the_check_runs_import_nothing_it_leaves_behind() -> None:
    """What wheels.txt calls unused (the GUI's Qt and charts, PDF reports) is not imported by
    the command line and the run path; so it need not travel."""
    modules = [
        "wattbench.cli.main", "wattbench.service.queue", "wattbench.engine.runner",
        "wattbench.engine.supervisor", "wattbench.engine.worker", "wattbench.db.store",
        "wattbench.energy.sampler", "wattbench.backends.runtimes.torch_rt",
        "wattbench.backends.runtimes.torch_loaded", "wattbench.backends.models.builtin",
    ]  # fmt: skip
    probe = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'PySide6', 'shiboken6', 'pyqtgraph', 'reportlab'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the arithmetic, on made-up figures ---------------------------------------------------------


def test_timing_agreement_is_one_percent_plus_ten_microseconds() -> None:
    events = [2_000_000.0] * 5
    limit = 0.01 * 2_000_000 + 10_000  # 30 µs at 2 ms
    inside = figures.timing_agreement([2_000_000.0 + limit] * 5, events)
    assert inside["ok"] is True and inside["tolerance_ns"] == limit
    assert inside["diff_ns"] == pytest.approx(limit)
    outside = figures.timing_agreement([2_000_000.0 + limit + 1] * 5, events)
    assert outside["ok"] is False and "30.0 µs allowed" in outside["reason"]
    faster = figures.timing_agreement([2_000_000.0 - limit - 1] * 5, events)
    assert faster["ok"] is False  # a host clock that reads less than the GPU is wrong too
    # medians: one descheduled host call does not decide it
    assert figures.timing_agreement([2_005_000.0] * 4 + [9e9], events)["ok"] is True


def test_timing_agreement_needs_a_workload_of_a_millisecond() -> None:
    short = figures.timing_agreement([900_000.0] * 5, [899_000.0] * 5)
    assert short["ok"] is False and "below the 1 ms" in short["reason"]
    assert figures.timing_agreement([1.0, 2.0], [1.0, 2.0, 3.0])["ok"] is False


def test_energy_agreement_is_five_percent() -> None:
    assert figures.energy_agreement(104.9, 100.0)["ok"] is True
    assert figures.energy_agreement(95.1, 100.0)["ok"] is True
    off = figures.energy_agreement(106.0, 100.0)
    assert off["ok"] is False and off["ratio"] == pytest.approx(1.06) and "1.0600" in off["reason"]
    assert figures.energy_agreement(None, 100.0)["ok"] is False
    assert figures.energy_agreement(100.0, 0.0)["ok"] is False


def test_throttle_reasons_are_named() -> None:
    assert figures.decode_throttle(0) == []
    assert figures.decode_throttle(0x1 | 0x4) == ["gpu_idle", "sw_power_cap"]
    assert figures.decode_throttle(0x40 | 0x800) == ["hw_thermal_slowdown", "unknown_0x800"]


# -- reading the command line's JSON ----------------------------------------------------------


def _run_doc(precision: str, **energy: Any) -> dict[str, Any]:
    figure = {
        "domain": "gpu0", "device": "cuda:0", "source": "nvml.total_energy",
        "method": "counter-difference", "energy_j": 40.0, "avg_power_w": 400.0, "flags": [],
    } | energy  # fmt: skip
    return {
        "spec": {"precision": precision, "device": "cuda:0", "model": "builtin:resnet50"},
        "status": "done",
        "latency": {"mean_ns": 3_200_000, "median_ns": 3_100_000, "rho": 0.012, "n": 900},
        "throughput_items_per_s": {"value": 2500.0},
        "converged": True,
        "flags": [],
        "energy": [figure, figure | {"domain": "device"}],
        "energy_summary": {"text": "0.16 J/item, 400 W [nvml.total_energy]"},
    }


def test_a_run_output_holds_up_when_every_precision_ran_on_nvml() -> None:
    doc = {"exit_code": 0, "error": None, "runs": [_run_doc("fp32"), _run_doc("bf16")]}
    got = figures.summarise_run_output(doc, ("fp32", "bf16"))
    assert got["ok"] is True
    assert [r["mean_ms"] for r in got["runs"]] == [3.2, 3.2]
    assert got["runs"][0]["energy"]["source"] == "nvml.total_energy"


def test_a_run_output_fails_on_an_estimate_a_mismatch_or_a_missing_precision() -> None:
    estimate = _run_doc("fp32", method="model", source="estimate.tdp", flags=["estimate"])
    mismatch = _run_doc("bf16", flags=["cross_check_mismatch"])
    got = figures.summarise_run_output(
        {"exit_code": 0, "runs": [estimate, mismatch]}, ("fp32", "bf16")
    )
    assert got["ok"] is False
    assert "fp32: GPU energy by model from estimate.tdp" in got["reason"]
    assert "bf16: the counter disagreed" in got["reason"]
    failed = _run_doc("bf16") | {"status": "failed", "reason": "out of memory"}
    got = figures.summarise_run_output({"exit_code": 3, "runs": [failed]}, ("fp32", "bf16"))
    assert got["reason"].startswith("no run in fp32; bf16: run failed: out of memory")


def test_sensors_and_devices_outputs() -> None:
    nvml = {"source": "nvml", "id": "nvml:0", "status": "ok", "method": "nvml.total_energy"}
    sensors = {"sensors": [{"source": "rapl", "id": "rapl", "status": "absent"}, nvml]}
    assert figures.summarise_sensors(sensors)["ok"] is True
    absent = {"sensors": [{"source": "nvml", "id": "nvml", "status": "absent", "why": "no driver"}]}
    assert (
        figures.summarise_sensors(absent)["reason"] == "no readable NVML power domain (no driver)"
    )
    gpu = {
        "id": "cuda:0", "kind": "cuda", "runtime": "torch", "usable": True, "name": "NVIDIA H200",
        "precisions": ["fp32", "fp16", "bf16"], "details": {"compute_capability": "9.0"},
    }  # fmt: skip
    got = figures.summarise_devices({"devices": [gpu]})
    assert got["ok"] is True and got["details"] == {"compute_capability": "9.0"}
    old = gpu | {"precisions": ["fp32", "fp16"]}
    assert "does not offer bf16" in figures.summarise_devices({"devices": [old]})["reason"]
    none = {"devices": [{"id": "cuda", "kind": "cuda", "runtime": "torch", "usable": False}]}
    assert figures.summarise_devices(none)["reason"] == "torch lists no cuda:0"


def test_the_summary_has_a_line_per_step() -> None:
    doc = {
        "started_at": "2026-11-30T07:00:00Z", "total_s": 212.0,
        "preflight": {"gpus": ["NVIDIA H200"], "driver": "580.159.03"},
        "steps": [
            {"name": "timing", "status": "ok", "seconds": 21.0, "figures": {"workloads": [
                {"workload": "w", "host_median_ns": 3_000_010.0, "event_median_ns": 3_000_000.0,
                 "diff_ns": 10.0, "tolerance_ns": 40_000.0}]}},
            {"name": "run", "status": "failed", "seconds": 90.0, "reason": "bf16: boom",
             "figures": figures.summarise_run_output({"runs": [_run_doc("fp32")]}, ("fp32",))},
            {"name": "energy", "status": "skipped", "reason": "out of time (3 s left)"},
        ],
    }  # fmt: skip
    text = figures.summary_text(doc)
    assert text.startswith("Wattbench device check, 2026-11-30T07:00:00Z: NVIDIA H200, driver")
    assert "result: FAILED (run, energy), 212 s in all" in text
    assert "w: host 3.0000 ms, CUDA events 3.0000 ms, diff 0.0 µs (allowed 40.0 µs)" in text
    assert "[failed] run (90.0 s): bf16: boom" in text
    assert "fp32: done, mean 3.200 ms (ρ 1.2 %), 2500 items/s" in text
    assert "[skipped] energy (n/a): out of time" in text


# -- the energy step against a fake NVML ----------------------------------------------------


def _sleep_load(seconds: float) -> int:
    time.sleep(seconds)
    return 1


def test_energy_step_on_a_fake_gpu(tmp_path: Path) -> None:
    gpu_energy = _load("gpu_energy")
    nvml = FakeNvml([FakeGpu(power_w=300.0, clock_event_reasons=0x4)])
    got = gpu_energy.measure_energy(
        nvml, _sleep_load, "cuda:0", sys_root=tmp_path, idle_window_s=0.3, idle_max_s=1.0,
        warm_s=0.2, window_s=0.6, tail_s=0.1,
    )  # fmt: skip
    assert got["ok"] is True, got.get("reason")
    assert got["figure"]["source"] == "nvml.total_energy"
    assert got["idle"]["sampler_w"]["nvml:0"] == pytest.approx(300.0, rel=0.02)
    assert got["loaded"]["power_usage_w"] == pytest.approx(300.0, rel=0.02)
    assert got["direct"]["ratio"] == pytest.approx(1.0, abs=0.02)
    assert got["product"]["ok"] is None  # a window under 5 s is not cross-checked
    assert got["throttle"]["loaded_reasons"] == ["sw_power_cap"]
    assert got["throttle"]["loaded_samples_slowed"] == got["throttle"]["loaded_samples"] > 0
    assert got["throttle"]["sampler_throttled_devices"] == ["cuda:0"]


def test_energy_step_fails_when_the_counter_and_the_power_disagree(tmp_path: Path) -> None:
    """A GPU whose power readings say 80 % of what its energy counter counts: both the run
    sampler's cross-check (≥ 5 s window) and the direct one find a ratio of 1.25."""
    gpu_energy = _load("gpu_energy")

    class Skewed(FakeNvml):
        def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
            return int(super().nvmlDeviceGetPowerUsage(h) * 0.8)

        def nvmlDeviceGetFieldValues(self, h: Any, field_ids: list[int]) -> list[Any]:
            out = super().nvmlDeviceGetFieldValues(h, field_ids)
            for v in out:
                v.value.uiVal = int(v.value.uiVal * 0.8)
            return out

    got = gpu_energy.measure_energy(
        Skewed([FakeGpu(power_w=300.0)]), _sleep_load, "cuda:0", sys_root=tmp_path,
        idle_window_s=0.3, idle_max_s=1.0, warm_s=0.1, window_s=5.2, tail_s=0.1,
    )  # fmt: skip
    assert got["ok"] is False
    assert got["product"]["ratio"] == pytest.approx(1.25, rel=0.03)
    assert got["direct"]["ratio"] == pytest.approx(1.25, rel=0.03)
    assert "sampler cross-check: counter / integrated power = 1.2" in got["reason"]
    assert "counter vs nvmlDeviceGetPowerUsage" in got["reason"]
    assert got["throttle"]["loaded_reasons"] == []


def test_env_step_on_a_fake_gpu_records_what_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fake NVML lacks some calls (driver version, default limit ...): each becomes an
    "error: ..." figure instead of ending the step; torch here has no CUDA, which fails it."""
    gpu_probe = _load("gpu_probe")
    monkeypatch.setitem(
        sys.modules,
        "pynvml",
        FakeNvml([FakeGpu(name="NVIDIA H200", power_w=90.0, clock_event_reasons=0x1)]),
    )
    got = gpu_probe.env()
    assert got["name"] == "NVIDIA H200"
    assert got["power_limit_w"] == 700.0 and got["power_usage_w"] == 90.0
    assert got["power_instant_w"] == 90.0
    assert got["nvml_driver"].startswith("error: AttributeError")
    assert got["throttle_reasons"] == ["gpu_idle"]
    assert got["ok"] is False and got["reason"] == "torch.cuda.is_available() is False"


def test_the_training_step_reads_its_mfu_against_the_h200s_documented_peak() -> None:
    run = _run_doc("bf16", energy_per_item_j=0.05) | {
        "throughput_items_per_s": {"value": 40_000.0},
        "training": {
            "micro_batch": 4, "grad_accum": 1, "seq_len": 1024, "parameters": 1_000_000_000,
            "flops_per_token": 6.5e9, "device_name": "NVIDIA H200",
            "loss_first": 10.4, "loss_last": 9.8,
        },
    }  # fmt: skip
    got = figures.summarise_training({"exit_code": 0, "runs": [run]})
    assert got["ok"] is True, got.get("reason")
    assert got["achieved_tflops"] == pytest.approx(260.0)
    assert got["mfu"] == pytest.approx(260.0 / 989.5, rel=1e-3) and "MFU" in got["mfu_words"]
    assert got["j_per_token"] == 0.05
    flat = run | {"training": run["training"] | {"loss_last": 10.5}}
    bad = figures.summarise_training({"exit_code": 0, "runs": [flat]})
    assert bad["ok"] is False and "did not fall" in bad["reason"]
