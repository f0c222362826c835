"""Both runtimes on the CPU with the small models, ONNX export round trips, and refusals."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from wattbench.backends.models import catalog, onnx_export
from wattbench.backends.runtimes import registry
from wattbench.backends.runtimes.base import LoadedModel, Runtime, RuntimeOptions
from wattbench.domain.errors import DeviceError, ModelError, ShapeError, UnsupportedOptionError
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.validate import validate

SMALL = ("builtin:mlp-small", "builtin:resnet-small", "builtin:bert-small", "builtin:gpt-small")
OPTS = RuntimeOptions(batch_size=2, threads=1, dims={"seq_len": 16}, seed=3)


def _load(runtime: str, ref: str, opts: RuntimeOptions = OPTS) -> LoadedModel:
    if ref in ("builtin:mlp-small", "builtin:resnet-small"):  # no sequence: a seq_len is refused
        opts = replace(opts, dims={})
    entry = catalog.resolve_model(ref, dims=dict(opts.dims))
    return registry.get_runtime(runtime).load(entry, "cpu", opts)


def test_registry_finds_both_runtimes_through_entry_points() -> None:
    from importlib.metadata import entry_points

    declared = {ep.name for ep in entry_points(group=registry.GROUP)}
    assert {"torch", "onnxruntime"} <= declared
    assert {"torch", "onnxruntime"} <= set(registry.runtime_names())
    for name in ("torch", "onnxruntime"):
        rt = registry.get_runtime(name)
        assert isinstance(rt, Runtime) and rt.name == name
        assert rt.available().ok and rt.available().version
    with pytest.raises(UnsupportedOptionError, match="choose one of"):
        registry.get_runtime("tensorflow")


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
@pytest.mark.parametrize("ref", SMALL)
def test_small_model_runs_on_cpu(runtime: str, ref: str) -> None:
    loaded = _load(runtime, ref)
    try:
        assert loaded.items_per_call == 2
        assert all(shape[0] == 2 for _, shape, _ in loaded.input_shapes)
        loaded.run_once()
        loaded.synchronize()
        settings = loaded.settings()
        assert settings["runtime"] == runtime and settings["intra_op_threads"] == 1
        outs = loaded.outputs()
        assert outs[0].shape[0] == 2 and np.isfinite(outs[0]).all()
    finally:
        loaded.close()


@pytest.mark.parametrize("ref", SMALL)
def test_export_round_trip_matches_torch(ref: str) -> None:
    torch_out = _load("torch", ref).outputs()
    ort_out = _load("onnxruntime", ref).outputs()
    scale = float(np.abs(torch_out[0]).max())
    np.testing.assert_allclose(ort_out[0], torch_out[0], rtol=1e-3, atol=1e-4 * max(scale, 1))


def test_export_is_cached_under_the_cache_dir() -> None:
    path = onnx_export.export_builtin("mlp-tiny")
    assert path.parent == Path(os.environ["WATTBENCH_CACHE_DIR"]) / "onnx"
    mtime = path.stat().st_mtime_ns
    assert onnx_export.export_builtin("mlp-tiny") == path
    assert path.stat().st_mtime_ns == mtime  # reused, not exported again
    assert onnx_export.builtin.definition_hash("mlp-tiny") in path.name


def test_same_seed_same_inputs_on_both_runtimes() -> None:
    a = _load("torch", "builtin:bert-small")
    b = _load("onnxruntime", "builtin:bert-small")
    assert a.input_shapes == b.input_shapes
    ids_torch = a.args[0].numpy()
    np.testing.assert_array_equal(ids_torch, b.arrays["input_ids"])
    assert ids_torch.max() < 1000  # within bert-small's vocabulary


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_torch_half_precisions_on_cpu(precision: str) -> None:
    import torch

    loaded = _load("torch", "builtin:mlp-small", RuntimeOptions(precision=precision))
    try:
        loaded.run_once()
        assert loaded.args[0].dtype == getattr(
            torch,
            {"fp16": "float16", "bf16": "bfloat16"}[precision],
        )
        full = _load("torch", "builtin:mlp-small", RuntimeOptions()).outputs()[0]
        half = loaded.outputs()[0]
        assert np.abs(half - full).max() < 0.05 * np.abs(full).max() + 1e-3
    finally:
        loaded.close()


def test_gpt_generation_with_kv_cache_matches_full_recompute() -> None:
    import torch

    opts = RuntimeOptions(batch_size=2, prompt_tokens=8, new_tokens=6, seed=1)
    loaded = _load("torch", "builtin:gpt-small", opts)
    assert all(hasattr(loaded, m) for m in ("prefill", "decode_step", "reset"))
    tokens = loaded.generate()
    assert tokens.shape == (2, 6)
    # Greedy decoding without the cache (full forward each step) gives the same tokens.
    module = loaded.module
    seq = loaded.prompt.clone()
    for _ in range(6):
        nxt = module(seq)[:, -1, :].argmax(dim=-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=1)
    np.testing.assert_array_equal(tokens, seq[:, 8:].numpy())
    # The engine's sequence: reset, prefill, decode steps; a step past the cache is refused.
    loaded.reset()
    loaded.prefill()
    for _ in range(5):
        loaded.decode_step()
    loaded.decode_step()  # the 6th step fills the last cache slot
    with pytest.raises(ShapeError, match="past the"):
        loaded.decode_step()
    loaded.close()


def test_generation_longer_than_positions_is_refused() -> None:
    opts = RuntimeOptions(prompt_tokens=250, new_tokens=16)
    with pytest.raises(ShapeError, match="at most 256 positions"):
        _load("torch", "builtin:gpt-small", opts)


def test_the_installed_onnx_package_ships_the_zoo() -> None:
    assert {"resnet50", "densenet121", "squeezenet", "vgg19"} <= set(catalog.zoo_names())


@pytest.mark.parametrize("name", catalog.zoo_names())
def test_onnx_zoo_models_run_on_ort(name: str) -> None:
    loaded = _load("onnxruntime", f"onnx-zoo:{name}", RuntimeOptions(batch_size=1, threads=1))
    try:
        loaded.run_once()
        out = loaded.outputs()[0]
        assert out.shape[:2] == (1, 1000) and np.isfinite(out).all()
        # the "light" zoo files hold the real graphs with constant weights; onnx ships the
        # expected output beside each one: ORT's forward pass must reproduce it
        import onnx
        from onnx import numpy_helper

        expected = onnx.TensorProto()
        expected.ParseFromString((catalog.zoo_dir() / f"light_{name}_output_0.pb").read_bytes())
        np.testing.assert_allclose(out, numpy_helper.to_array(expected), rtol=1e-4, atol=1e-6)
        assert loaded.settings()["providers"] == ["CPUExecutionProvider"]
    finally:
        loaded.close()


def test_ort_graph_optimization_levels_load() -> None:
    for level in ("disable", "basic", "extended", "all"):
        opts = RuntimeOptions(ort_graph_optimization=level)
        loaded = _load("onnxruntime", "builtin:mlp-tiny", opts)
        assert loaded.settings()["graph_optimization"] == level
        loaded.run_once()
        loaded.close()


def test_torchscript_files_run_on_torch_and_export_files_are_refused(tmp_path: Path) -> None:
    import warnings

    import torch
    from wattbench.backends.models import builtin

    module = builtin.build_module("mlp-tiny")
    ts_path = tmp_path / "m.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(module, torch.randn(1, 256)).save(str(ts_path))
    shapes = {"x": "3x256:float32"}
    entry = catalog.resolve_model(str(ts_path), input_shapes=shapes)
    opts = RuntimeOptions(batch_size=3, input_shapes=tuple(shapes.items()))
    loaded = registry.get_runtime("torch").load(entry, "cpu", opts)
    assert loaded.outputs()[0].shape == (3, 16)
    loaded.close()
    program = torch.export.export(
        module, (torch.randn(2, 256),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
    )
    pt2 = tmp_path / "m.pt2"
    torch.export.save(program, str(pt2))
    with pytest.raises(ModelError, match="does not open"):  # torch.export.load can run code
        catalog.resolve_model(str(pt2), dims={})
    export_entry = replace(entry, ref=str(pt2), path=str(pt2), format="torch-export")
    with pytest.raises(ModelError, match="does not open"):  # nor does the runtime load one
        registry.get_runtime("torch").load(export_entry, "cpu", RuntimeOptions(batch_size=5))


REFUSED = [
    (dict(runtime="onnxruntime", precision="fp16"), UnsupportedOptionError, "fp16 on the CPU"),
    (dict(precision="int4"), UnsupportedOptionError, "not 'int4'"),  # int4: ortgenai only
    (dict(device="tpu:0"), DeviceError, "Unknown device"),
    (dict(device="mps"), DeviceError, "mps"),
    (dict(runtime="onnxruntime", ort_provider="NoSuchExecutionProvider"),
     UnsupportedOptionError, "not available"),
    (dict(runtime="onnxruntime", ort_provider="AzureExecutionProvider"),
     UnsupportedOptionError, "local device"),
    (dict(runtime="onnxruntime", ort_graph_optimization="max"), UnsupportedOptionError,
     "graph optimization"),
    (dict(threads=10_000), UnsupportedOptionError, "logical CPUs"),
    (dict(scenario=Scenario.GENERATION), UnsupportedOptionError, "not a generative model"),
    (dict(model="builtin:gpt-small", scenario=Scenario.GENERATION, runtime="onnxruntime"),
     UnsupportedOptionError, "generation scenario on the torch runtime"),
    (dict(model="onnx-zoo:squeezenet"), UnsupportedOptionError, "on the onnxruntime runtime"),
    (dict(model="builtin:gpt-small", scenario=Scenario.GENERATION, prompt_tokens=250),
     ShapeError, "at most 256 positions"),
    (dict(model="onnx-zoo:squeezenet", runtime="onnxruntime", batch_size=8), ShapeError,
     "fixed batch"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "error", "message"), REFUSED)
def test_validate_refuses_before_a_run(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    spec = RunSpec(**({"model": "builtin:mlp-small"} | changes))
    with pytest.raises(error, match=message) as caught:
        validate(spec)
    assert "--" not in str(caught.value)  # the front end adds its own flag names


def test_cuda_is_refused_with_a_reason_when_absent() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for runtime in ("torch", "onnxruntime"):
        spec = RunSpec(model="builtin:mlp-small", device="cuda:0", runtime=runtime)
        with pytest.raises(DeviceError, match="cuda"):
            validate(spec)


def test_validate_accepts_what_can_run() -> None:
    for spec in (
        RunSpec(model="builtin:mlp-small"),
        RunSpec(model="builtin:bert-small", runtime="onnxruntime", dims={"seq_len": 64}),
        RunSpec(model="builtin:gpt-small", scenario=Scenario.GENERATION, precision="bf16"),
        RunSpec(model="onnx-zoo:squeezenet", runtime="onnxruntime", threads=1),
    ):
        assert validate(spec).ref == spec.model
