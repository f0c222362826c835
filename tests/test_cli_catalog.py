"""`wattbench models` and `wattbench devices`: table and --json output, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wattbench.cli.main import main


def test_models_table_lists_builtins_and_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["MODEL", "FORMAT", "PARAMS"]
    assert "builtin:mlp-small" in out and "onnx-zoo:squeezenet" in out
    assert "input_ids[batchxseq_len]:int64" in out
    assert "--dim" in out


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    models = {m["ref"]: m for m in json.loads(capsys.readouterr().out)}
    gpt = models["builtin:gpt-small"]
    assert gpt["generative"] is True and gpt["default_dims"] == {"seq_len": 128}
    assert gpt["inputs"] == [{"name": "input_ids", "shape": ["batch", "seq_len"], "dtype": "int64"}]
    assert models["onnx-zoo:squeezenet"]["inputs"][0]["shape"] == [1, 3, 224, 224]


def test_models_describes_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wattbench.backends.models import catalog

    root = catalog.zoo_dir()
    assert root is not None
    assert main(["models", str(root / "light_squeezenet.onnx"), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["family"] == "file" and entry["format"] == "onnx"


def test_models_bad_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.onnx"
    path.write_text("nope")
    assert main(["models", str(path)]) == 2
    assert "is not an ONNX file" in capsys.readouterr().err
    assert main(["models", str(tmp_path / "missing.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_devices_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ")
    assert "runtime torch:" in out and "runtime onnxruntime:" in out
    # the CPU line: sockets, cores, threads and ISA features read from this machine
    from wattbench.backends import system

    cpu = system.cpu_summary()
    cpu_line = out.splitlines()[0]
    assert f"threads {cpu['logical_cpus']}" in cpu_line
    assert f"sockets {cpu.get('sockets') or '?'}" in cpu_line
    assert f"cores {cpu.get('physical_cores') or '?'}" in cpu_line
    assert "ISA " + (" ".join(cpu.get("isa") or []) or "unknown") in cpu_line
    # every execution provider this onnxruntime build offers is named
    import onnxruntime as ort

    ort_line = next(line for line in out.splitlines() if line.startswith("runtime onnxruntime:"))
    for provider in ort.get_available_providers():
        assert provider in ort_line
    rows = [line.split() for line in out.splitlines() if line.lstrip().startswith(("cpu ", "cuda"))]
    assert any(r[0] == "cpu" and "yes" in r for r in rows)


def test_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runtimes"]["torch"]["available"] is True
    assert data["cpu"]["logical_cpus"] >= 1
    assert {"sockets", "physical_cores", "isa", "model"} <= set(data["cpu"])
    ort_cpu = [d for d in data["devices"] if d["id"] == "cpu" and d["runtime"] == "onnxruntime"]
    assert "CPUExecutionProvider" in ort_cpu[0]["details"]["providers"]
    cpu_rows = [d for d in data["devices"] if d["id"] == "cpu"]
    assert {d["runtime"] for d in cpu_rows} == {"torch", "onnxruntime", "ortgenai"}
    if not torch.cuda.is_available():
        cuda = [d for d in data["devices"] if d["kind"] == "cuda"]
        assert cuda and all(not d["usable"] and d["reason"] for d in cuda)


def test_devices_for_one_runtime_and_unknown_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json", "--runtime", "onnxruntime"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["runtime"] for d in data["devices"]} == {"onnxruntime"}
    assert main(["devices", "--runtime", "tensorflow"]) == 2
    assert "Unknown runtime" in capsys.readouterr().err


def test_models_checks_a_fixed_batch_file_at_the_batch_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, "seq"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "fixed4.onnx"
    onnx.save(model, str(path))
    # checking the dynamic dimension alone uses the file's own batch
    assert main(["models", str(path), "--dim", "seq=7"]) == 0
    capsys.readouterr()
    # another batch is refused, and told to use --batch 4
    assert main(["models", str(path), "--dim", "seq=7", "--batch", "2"]) == 2
    assert "--batch: " in (err := capsys.readouterr().err) and "Run it at batch size 4" in err
    assert main(["models", str(path), "--dim", "seq=7", "--batch", "4", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["ref"] == str(path)
