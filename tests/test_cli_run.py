"""``wattbench run`` through the real CLI entry point: bad inputs, exit codes, JSON, the store."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from wattbench.cli.main import main

QUICK = ["--preset", "quick", "--t-max", "1", "--threads", "1", "--no-idle", "--no-memory"]


def _zoo_file(name: str = "squeezenet") -> Path:
    from wattbench.backends.models import catalog

    entry = catalog.resolve_model(f"onnx-zoo:{name}")
    assert entry.path is not None
    return Path(entry.path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def not_onnx(tmp_path: Path) -> Path:
    p = tmp_path / "notes.onnx"
    p.write_text("this is a text file, not a model\n")
    return p


@pytest.fixture
def corrupt_onnx(tmp_path: Path) -> Path:
    data = _zoo_file().read_bytes()
    p = tmp_path / "corrupt.onnx"
    p.write_bytes(data[: len(data) // 3])
    return p


@pytest.mark.parametrize(
    ("case", "extra", "words"),
    [
        ("missing file", ["--model", "/nonexistent/dir/model.onnx"], "does not exist"),
        ("unknown device", ["--model", "builtin:mlp-tiny", "--device", "tpu:0"], "tpu"),
        ("absent gpu", ["--model", "builtin:mlp-tiny", "--device", "cuda:7"], "cuda:7"),
        (
            "indexed cpu",
            ["--model", "builtin:mlp-tiny", "--device", "cpu:1"],
            "--device: Device 'cpu:1'",
        ),
        ("bad index", ["--model", "builtin:mlp-tiny", "--device", "cuda:x"], "must be a number"),
        ("wrong shape", ["--model", "onnx-zoo:squeezenet", "--batch", "3"], "fixed batch"),
        (
            "wrong input shape",
            ["--model", "builtin:mlp-tiny", "--input-shape", "x=1x7:float32"],
            "does not fit input 'x'",
        ),
        (
            "unknown input name",
            ["--model", "builtin:mlp-tiny", "--input-shape", "y=1x256:float32"],
            "no input named y",
        ),
        (
            "unknown runtime",
            ["--model", "builtin:mlp-tiny", "--runtime", "tf"],
            "--runtime: Unknown runtime 'tf': choose one of onnxruntime, ortgenai, torch",
        ),
        (
            "onnx on torch",
            ["--model", "onnx-zoo:squeezenet", "--runtime", "torch"],
            "--runtime: onnx-zoo:squeezenet is an ONNX model: run it on the onnxruntime runtime",
        ),
        ("bad batch list", ["--model", "builtin:mlp-tiny", "--batch", "1,x"], "--batch"),
        ("bad dim", ["--model", "builtin:bert-small", "--dim", "seq_len"], "NAME=SIZE"),
        ("unknown precision", ["--model", "builtin:mlp-tiny", "--precision", "fp8"], "fp8"),
        (
            "provider on torch",
            ["--model", "builtin:mlp-tiny", "--provider", "X"],
            "--provider: The execution provider applies to the onnxruntime runtime only",
        ),
        (
            "graph-opt on torch",
            ["--model", "builtin:mlp-tiny", "--graph-opt", "basic"],
            "--graph-opt",
        ),
        ("zero sample rate", ["--model", "builtin:mlp-tiny", "--sample-hz", "0"], "--sample-hz"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(
    capsys: pytest.CaptureFixture[str], case: str, extra: list[str], words: str
) -> None:
    code, out, err = _run(capsys, "run", *extra, *QUICK, "--no-store")
    assert code == 2, (case, err)
    assert "error:" in err and words in err, err
    assert "Traceback" not in err and out == ""


def test_non_onnx_and_corrupt_onnx_files_are_refused(
    capsys: pytest.CaptureFixture[str], not_onnx: Path, corrupt_onnx: Path
) -> None:
    cases = ((not_onnx, "is not an ONNX file"), (corrupt_onnx, "is corrupt"))
    for (path, words), runtime in itertools.product(cases, ("onnxruntime", "torch")):
        code, out, err = _run(
            capsys, "run", "--model", str(path), "--runtime", runtime, *QUICK, "--no-store"
        )
        assert code == 2, err
        assert str(path.name) in err and words in err, err
        assert "Traceback" not in err and out == ""
    # a good copy of the same file passes validation (the error was about the content)
    good = not_onnx.parent / "good.onnx"
    shutil.copy(_zoo_file(), good)
    from wattbench.domain.spec import RunSpec
    from wattbench.engine.validate import validate

    validate(RunSpec(model=str(good), runtime="onnxruntime"))


def test_bad_input_with_json_prints_a_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "run", "--model", "builtin:nope", *QUICK, "--json", "--no-store")
    assert code == 2
    doc = json.loads(out)
    assert doc["exit_code"] == 2 and doc["runs"] == []
    assert doc["error"]["type"] == "ModelError" and "builtin:nope" in doc["error"]["message"]


def test_run_json_and_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    code, out, err = _run(
        capsys,
        "--db",
        str(db),
        "run",
        "--model",
        "builtin:mlp-tiny",
        "--batch",
        "1,2",
        "--repeat",
        "1",
        *QUICK,
        "--tag",
        "cli-test",
        "--json",
    )
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["format"] == "wattbench.run-output" and doc["format_version"] == 1
    assert doc["store"]["saved"] == 2 and doc["store"]["warning"] is None
    runs = doc["runs"]
    runs.sort(key=lambda r: r["spec"]["batch_size"])  # in a shuffled order: see test_interleave
    assert [r["spec"]["batch_size"] for r in runs] == [1, 2]
    assert (
        runs[0]["spec"]["sweep_id"] and runs[0]["spec"]["sweep_id"] == runs[1]["spec"]["sweep_id"]
    )
    for r in runs:
        assert r["status"] == "done"
        assert r["latency"]["n"] >= 30 and r["throughput_items_per_s"]["value"] > 0
        assert "arrays" not in r
        assert r["energy_summary"]["text"]
        assert r["phases"]["worker_start_s"] > 0
    from wattbench.db.store import open_store

    with open_store(str(db)) as store:
        got = store.get_run(runs[1]["id"])
        assert got.status.value == "done" and got.spec.batch_size == 2
        assert "cli-test" in got.spec.tags
        assert got.arrays["latencies_ns"].size == runs[1]["latency"]["n"]


def test_table_output_and_failed_run_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _run(capsys, "run", "--model", "builtin:mlp-tiny", *QUICK, "--no-store")
    assert code == 0, err
    for words in ("throughput", "p99", "ρ", "energy:", "harness efficiency"):
        assert words in out
    monkeypatch.setenv("WATTBENCH_TEST_FAULT", "crash")
    code, out, err = _run(capsys, "run", "--model", "builtin:mlp-tiny", *QUICK, "--no-store")
    assert code == 3
    assert "failed: The worker process crashed" in out


def test_no_readable_sensor_says_na_and_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("an NVIDIA driver is present: NVML is a readable sensor on this machine")
    empty = tmp_path / "sys"
    empty.mkdir()
    monkeypatch.setenv("WATTBENCH_SYSFS_ROOT", str(empty))  # no powercap, no hwmon
    code, out, err = _run(capsys, "run", "--model", "builtin:mlp-tiny", *QUICK, "--no-store")
    assert code == 0, err
    energy = " ".join(out[out.index("1. energy:") :].split())
    assert energy.startswith("1. energy: measured n/a (‡1)")
    assert "estimate" in energy  # the estimate beside it is labelled as one
    why = " ".join(out[out.index("‡1 measured energy n/a:") :].split())  # once, below
    assert why.startswith("‡1 measured energy n/a: no power sensor can be read here")
    assert "powercap" in why  # the reason names what is missing


def test_exit_code_tells_bad_input_from_failure_and_cancel() -> None:
    from wattbench.cli.cmd_run import exit_code_for
    from wattbench.domain.result import RunResult, RunStatus
    from wattbench.domain.spec import RunSpec
    from wattbench.service.queue import ItemState, QueueItem

    spec = RunSpec(model="builtin:mlp-tiny")

    def item(state: ItemState, status: RunStatus | None, kind: str | None = None) -> QueueItem:
        result = None if status is None else RunResult(spec, status, error_kind=kind)
        return QueueItem(key=1, spec=spec, run_id="r", state=state, result=result)

    done = item(ItemState.DONE, RunStatus.DONE)
    bad = item(ItemState.FAILED, RunStatus.FAILED, "bad_input")
    crash = item(ItemState.FAILED, RunStatus.FAILED, "crash")
    cancelled = item(ItemState.CANCELLED, RunStatus.CANCELLED)
    never_started = item(ItemState.CANCELLED, None)
    assert exit_code_for([done, done]) == 0
    assert exit_code_for([done, bad]) == 2
    assert exit_code_for([bad, crash]) == 3
    assert exit_code_for([done, cancelled]) == 4
    assert exit_code_for([done, never_started]) == 4


def test_run_flags_and_comma_lists_expand_into_the_sweep() -> None:
    """Every flag of the issue's command line reaches the specs; comma lists multiply."""
    from wattbench.cli.cmd_run import request_from
    from wattbench.cli.main import build_parser
    from wattbench.domain.spec import Scenario
    from wattbench.service.plan import plan_runs

    args = build_parser().parse_args(
        [
            "run",
            "--model",
            "builtin:bert-small",
            "--device",
            "cpu",
            "--runtime",
            "torch,onnxruntime",
            "--batch",
            "1,8,32",
            "--precision",
            "fp32,bf16",
            "--threads",
            "1,2",
            "--scenario",
            "offline",
            "--preset",
            "rigorous",
            "--dim",
            "seq_len=64",
            "--sample-hz",
            "20",
            "--json",
        ]
    )
    assert args.json is True
    specs = plan_runs(request_from(args)).specs
    combos = {(s.runtime, s.batch_size, s.precision, s.threads) for s in specs}
    assert len(combos) == 2 * 3 * 2 * 2
    assert len(specs) == 2 * len(combos)  # a comparison: 2 replicates of each by default
    assert combos == set(
        itertools.product(("torch", "onnxruntime"), (1, 8, 32), ("fp32", "bf16"), (1, 2))
    )
    assert {s.scenario for s in specs} == {Scenario.OFFLINE}
    assert {s.preset for s in specs} == {"rigorous"}
    assert all(s.dims == {"seq_len": 64} for s in specs)
    assert {s.sample_hz for s in specs} == {20.0}
    assert len({s.sweep_id for s in specs}) == 1 and specs[0].sweep_id
    # defaults: one run, the runtime's own thread count, single-stream, default preset
    (one,) = plan_runs(
        request_from(build_parser().parse_args(["run", "--model", "builtin:mlp-tiny"]))
    ).specs
    assert (one.runtime, one.batch_size, one.precision, one.threads) == ("torch", 1, "fp32", None)
    assert one.scenario is Scenario.SINGLE_STREAM and one.preset == "default"
    assert one.sweep_id is None and one.sample_hz == 10.0


def test_offline_sweep_over_both_runtimes_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys,
        "run",
        "--model",
        "builtin:mlp-tiny",
        "--runtime",
        "torch,onnxruntime",
        "--scenario",
        "offline",
        "--batch",
        "4",
        "--repeat",
        "1",
        *QUICK,
        "--no-store",
        "--json",
    )
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert sorted(r["spec"]["runtime"] for r in runs) == ["onnxruntime", "torch"]
    for r in runs:
        assert r["status"] == "done", r["reason"]
        assert r["spec"]["scenario"] == "offline" and r["spec"]["batch_size"] == 4
        assert r["spec"]["threads"] == 1 and r["spec"]["preset"] == "quick"
        assert r["latency"]["n"] >= 30 and r["throughput_items_per_s"]["value"] > 0


def _fixed_batch_onnx(path: Path, batch: int | str, width: int | str = 8) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_batch_is_checked_against_the_runs_batch_not_batch_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A fixed-batch model with the matching --batch, and an --input-shape whose leading
    dimension is the --batch, are accepted; a mismatch names the batch that was asked for."""
    from wattbench.domain.errors import ShapeError
    from wattbench.domain.spec import RunSpec
    from wattbench.engine.validate import validate

    fixed4 = str(_fixed_batch_onnx(tmp_path / "fixed4.onnx", 4))
    validate(RunSpec(model=fixed4, runtime="onnxruntime", batch_size=4))
    validate(RunSpec(model="builtin:mlp-tiny", batch_size=2, input_shapes={"x": "2x256:float32"}))
    with pytest.raises(ShapeError, match="batch 2 does not fit"):
        validate(RunSpec(model=fixed4, runtime="onnxruntime", batch_size=2))
    # described before a batch is chosen (the GUI's "Open file…" with dims typed): its own batch
    from wattbench.backends.models.catalog import resolve_model

    assert resolve_model(fixed4, dims={}).ref.endswith("fixed4.onnx")
    with pytest.raises(ShapeError, match="batch 1 does not fit"):
        resolve_model(fixed4, dims={"batch": 1})
    code, _, err = _run(
        capsys,
        "run",
        "--model",
        "builtin:mlp-tiny",
        "--batch",
        "4",
        "--input-shape",
        "x=2x256:float32",
        *QUICK,
        "--no-store",
    )
    assert code == 2 and "differs from the batch size 4" in err, err
    # and the worker, which resolves the model again, runs the fixed-batch model at batch 4
    code, out, err = _run(
        capsys, "run", "--model", fixed4, "--runtime", "onnxruntime", "--batch", "4", *QUICK,
        "--no-store", "--json",
    )  # fmt: skip
    assert code == 0, err
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "done" and run["model"]["inputs"] == [["x", [4, 8], "float32"]]


def test_missing_dynamic_dimension_is_named_with_its_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = str(_fixed_batch_onnx(tmp_path / "dyn.onnx", "N", "seq"))
    code, out, err = _run(
        capsys, "run", "--model", path, "--runtime", "onnxruntime", *QUICK, "--no-store"
    )
    assert code == 2 and out == "" and "Traceback" not in err
    assert "--dim: " in err and "dynamic dimension 'seq'" in err and "seq=SIZE" in err, err
    from wattbench.domain.spec import RunSpec
    from wattbench.engine.validate import validate

    validate(RunSpec(model=path, runtime="onnxruntime", batch_size=3, dims={"seq": 5}))


def test_ctrl_c_cancels_the_run_cleanly_with_exit_4() -> None:
    """SIGINT to a real `wattbench run` process: the run is cancelled, the worker stopped, and
    the JSON still comes out, with exit code 4."""
    import signal
    import subprocess
    import sys
    import time

    cmd = [
        sys.executable, "-m", "wattbench", "-v", "run", "--model", "builtin:mlp-tiny",
        "--preset", "quick", "--t-max", "60", "--epsilon", "0.000001", "--threads", "1",
        "--no-idle", "--no-memory", "--no-store", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the runner logs each run as it starts it (handler set)
            if "wattbench.engine.runner: run " in line:
                break
        else:
            raise AssertionError("the run never started")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        asked = time.monotonic()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 4, err
    assert time.monotonic() - asked < 15.0  # loosely: the target is 1 s on a quiet machine
    assert "cancelling" in err and "Traceback" not in err
    doc = json.loads(out)
    assert doc["exit_code"] == 4
    (run,) = doc["runs"]
    assert run["status"] == "cancelled" and "Cancelled" in run["reason"]


def test_the_table_names_the_saved_run_so_it_can_be_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, "run", "--model", "builtin:mlp-tiny", *QUICK)
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("saved 1 run in"))
    short_id = line.rsplit(": ", 1)[1].strip()
    code, out, err = _run(capsys, "show", short_id)
    assert code == 0, err
    assert "builtin:mlp-tiny" in out


def test_the_readmes_onnx_file_example_runs_on_onnxruntime(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`wattbench run --model path/to/model.onnx` with no --runtime: the file's own runtime."""
    path = str(_fixed_batch_onnx(tmp_path / "model.onnx", "N", 8))
    code, out, err = _run(capsys, "run", "--model", path, *QUICK, "--no-store", "--json")
    assert code == 0, err
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "done" and run["spec"]["runtime"] == "onnxruntime"


def test_a_bare_catalog_name_runs_or_is_corrected(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "run", "--model", "mlp-tiny", *QUICK, "--no-store", "--json")
    assert code == 0, err
    assert json.loads(out)["runs"][0]["spec"]["model"] == "builtin:mlp-tiny"
    code, out, err = _run(capsys, "run", "--model", "resnet-smal", *QUICK, "--no-store")
    assert code == 2 and "Did you mean builtin:resnet-small?" in err and out == ""
