"""Language models on torch: local HF checkpoints, shape-only architectures, memory feasibility.

The checkpoints are the tiny Llama, Mistral, Qwen2 and Phi-3 of ``llm_fixtures`` (built once
per session). One runs end to end through the CLI and its worker; each is loaded by the torch
runtime and generates the tokens a cache-free greedy loop finds. Hostile and broken folders are
built here: a config asking for the checkpoint's code (with a python file that would touch a
marker), a folder without weights, damaged safetensors files, and a fake HF cache tree.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from wattbench.backends.models import catalog, hf, llm_memory, llm_shapes
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.torch_rt import TorchRuntime
from wattbench.cli.main import main
from wattbench.domain.errors import BadInputError, ModelError
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine import measure
from wattbench.engine.validate import runtime_options, validate

from tests.llm_fixtures import tiny_checkpoints, tiny_llama  # noqa: F401 (fixtures)
from tests.specs import quick_spec

QUICK = ["--preset", "quick", "--t-max", "1", "--threads", "1", "--no-idle", "--no-memory"]


@pytest.fixture(autouse=True)
def _fresh_catalog() -> None:
    catalog.reset_caches()


def _spec(model: str, **kw: Any) -> RunSpec:
    generation = dict(runtime="torch", scenario=Scenario.GENERATION, prompt_tokens=6, new_tokens=4)
    return quick_spec(model, **{**generation, "time_limit_s": None, **kw})  # derived limit


def _copy(src: Path, dst: Path, *, weights: bool = True) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if weights or p.suffix != ".safetensors":
            shutil.copy(p, dst / p.name)
    return dst


def _greedy_without_cache(module: Any, prompt: Any, steps: int) -> Any:
    """Greedy tokens by recomputing the whole sequence at each step (no KV cache)."""
    import torch

    ids = prompt
    for _ in range(steps):
        logits = module(input_ids=ids, use_cache=False).logits
        ids = torch.cat([ids, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return ids[:, prompt.shape[1] :].numpy()


# -- running -----------------------------------------------------------------------------------


def test_a_checkpoint_runs_through_the_cli(
    tiny_llama: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    gen = ["--scenario", "generation", "--prompt-tokens", "6", "--new-tokens", "4", "--json"]
    code = main(
        ["--db", str(tmp_path / "runs.sqlite"), "run", "--model", str(tiny_llama), *QUICK, *gen]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    run = json.loads(out)["runs"][0]
    assert run["status"] == "done", run.get("reason")
    assert run["model"]["family"] == "hf" and run["model"]["format"] == "hf-safetensors"
    gen = run["generation"]
    assert gen["new_tokens"] == 4 and gen["prompt_tokens"] == 6
    assert gen["ttft_ns"]["value"] > 0 and gen["decode_tokens_per_s"]["value"] > 0


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "phi3"])
def test_each_architecture_generates_with_its_kv_cache(
    tiny_checkpoints: dict[str, Path],  # noqa: F811
    arch: str,
) -> None:
    spec = _spec(str(tiny_checkpoints[arch]), batch_size=2)
    entry = validate(spec)
    assert entry.decoder is not None and entry.decoder.layers == 2 and entry.generative
    loaded = TorchRuntime().load(entry, "cpu", runtime_options(spec))
    try:
        tokens = loaded.generate()
        assert tokens.shape == (2, 4)
        expected = _greedy_without_cache(loaded.module, loaded.prompt, 4)
        assert (tokens == expected).all()
        out = measure.measure(loaded, spec, lambda e: None)
        assert out.generation is not None and out.generation.new_tokens == 4
        assert out.generation.ttft_ns.value > 0 and out.generation.tpot_ns.value > 0
    finally:
        loaded.close()


# -- refusals ----------------------------------------------------------------------------------


def _remote_code_folder(src: Path, root: Path, marker: Path, model_type: str) -> Path:
    folder = _copy(src, root / "remote")
    (folder / "modeling_evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from transformers import LlamaForCausalLM as EvilForCausalLM\n"
    )
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    cfg["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_remote_code_is_refused_and_never_runs(
    tiny_llama: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    folder = _remote_code_folder(tiny_llama, tmp_path, marker, "llama")
    with pytest.raises(ModelError, match="never runs") as err:
        validate(_spec(str(folder)))
    assert "auto_map" in str(err.value) and err.value.field == "model"
    # loaded past the check (as a worker would be asked to), transformers runs no code either
    spec = _spec(str(folder))
    entry = hf.read_checkpoint(tiny_llama)
    entry = ModelEntry(**{**entry.__dict__, "ref": str(folder), "path": str(folder)})
    TorchRuntime().load(entry, "cpu", runtime_options(spec)).close()
    assert not marker.exists()


def test_an_architecture_transformers_does_not_know_is_refused(
    tiny_llama: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    folder = _copy(tiny_llama, tmp_path / "unknown")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(model_type="evilnet", architectures=["EvilNetForCausalLM"])
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="does not know the architecture EvilNetForCausalLM"):
        catalog.resolve_model(str(folder))


def test_a_quantized_checkpoint_is_refused(tiny_llama: Path, tmp_path: Path) -> None:  # noqa: F811
    folder = _copy(tiny_llama, tmp_path / "gptq")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"quantized checkpoint \(gptq\)"):
        catalog.resolve_model(str(folder))


def test_a_folder_without_weights_is_refused(tiny_llama: Path, tmp_path: Path) -> None:  # noqa: F811
    folder = _copy(tiny_llama, tmp_path / "empty", weights=False)
    with pytest.raises(ModelError, match="no safetensors weights") as err:
        catalog.resolve_model(str(folder))
    assert "Copy the weights" in str(err.value)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    catalog.reset_caches()
    with pytest.raises(ModelError, match="never opens"):
        catalog.resolve_model(str(folder))


@pytest.mark.parametrize("damage", ["truncated", "header_length", "header_json", "short"])
def test_a_corrupt_safetensors_file_is_refused(
    tiny_llama: Path,  # noqa: F811
    tmp_path: Path,
    damage: str,
) -> None:
    folder = _copy(tiny_llama, tmp_path / damage)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncated":
        data = data[:-100]
    elif damage == "header_length":
        data = struct.pack("<Q", len(data)) + data[8:]
    elif damage == "header_json":
        n = struct.unpack("<Q", data[:8])[0]
        data = data[:8] + b"!" * n + data[8 + n :]
    else:
        data = data[:5]
    weights.write_bytes(data)
    with pytest.raises(ModelError, match="damaged safetensors file") as err:
        catalog.resolve_model(str(folder))
    assert "again" in str(err.value)


def test_a_run_that_cannot_fit_is_refused_with_the_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--model", "llm:llama-3-8b", "--batch", "64", "--precision", "fp32"]
    argv += ["--scenario", "generation", "--prompt-tokens", "8000", "--new-tokens", "192"]
    code = main(argv + QUICK)
    _, err = capsys.readouterr()
    assert code == 2
    assert "does not fit" in err and "needs 169.6 GB" in err and "64 × 8,192 tokens" in err
    assert "free on cpu" in err


def test_footprint_counts_weights_and_kv_cache() -> None:
    entry = llm_shapes.entry("llm:llama-3-8b")
    assert entry.decoder is not None and entry.parameters is not None
    fp = llm_memory.footprint(entry.decoder, entry.parameters, "bf16", 8, 4096)
    assert fp.weights_bytes == 2 * 8_030_261_248
    assert fp.kv_cache_bytes == 2 * 32 * 8 * 128 * 8 * 4096 * 2
    text = llm_memory.describe(fp)
    assert text == "needs 20.4 GB (weights 16.1 GB bf16 + KV cache 4.3 GB for 8 × 4,096 tokens)"
    with pytest.raises(BadInputError, match=r"9\.8 GB free on cpu") as err:
        llm_memory.check_fits(fp, 9_800_000_000, "cpu", "llm:llama-3-8b")
    assert err.value.field == "batch_size"
    llm_memory.check_fits(fp, fp.total_bytes, "cpu", "llm:llama-3-8b")  # just fits


def test_a_cuda_device_is_looked_up_by_its_nvml_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert llm_memory._nvml_index(1) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert [llm_memory._nvml_index(i) for i in range(3)] == [2, 3, None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1b")
    assert llm_memory._nvml_index(0) is None
    assert llm_memory.free_bytes("mps") is None


# -- the shape-only catalog ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "parameters"),
    [
        ("llama-3-8b", 8_030_261_248),
        ("mistral-7b", 7_241_732_096),
        ("qwen2.5-7b", 7_615_616_512),
        ("phi-3-mini", 3_821_079_552),
        ("tinyllama-1.1b", 1_100_048_384),
    ],
)
def test_architectures_have_their_published_sizes(key: str, parameters: int) -> None:
    assert catalog.canonical_ref(key) == f"llm:{key}"
    entry = catalog.resolve_model(f"llm:{key}")
    assert entry.parameters == parameters
    assert "random weights" in entry.name and "random weights" in entry.description


def test_shape_only_runs_are_labelled_random_weights() -> None:
    assert (
        _spec("llm:tinyllama-1.1b")
        .label()
        .startswith("llm:tinyllama-1.1b (random weights) · torch · cpu")
    )
    assert "random" not in _spec("/models/tiny").label()
    assert llm_shapes.entry("llm:tinyllama-1.1b").name == "tinyllama-1.1b (random weights)"


def test_a_shape_only_model_is_built_with_random_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny = llm_shapes._arch(
        "tiny-test",
        "Tiny",
        "none",
        model_type="llama",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    monkeypatch.setitem(llm_shapes.ARCHITECTURES, "tiny-test", tiny)
    llm_shapes.entry.cache_clear()
    entry = catalog.resolve_model("llm:tiny-test")
    spec = _spec("llm:tiny-test", precision="bf16")
    loaded = TorchRuntime().load(entry, "cpu", runtime_options(spec))
    try:
        assert sum(p.numel() for p in loaded.module.parameters()) == entry.parameters
        assert next(loaded.module.parameters()).dtype.is_floating_point
        assert str(next(loaded.module.parameters()).dtype) == "torch.bfloat16"
        assert loaded.settings()["weights"] == "random weights"
        assert loaded.generate().shape == (1, 4)
    finally:
        loaded.close()
        llm_shapes.entry.cache_clear()


# -- the local Hugging Face cache --------------------------------------------------------------


def _fake_cache(root: Path, src: Path) -> Path:
    """models--acme--tiny-chat as huggingface_hub lays it out: blobs, refs/main, snapshots."""
    repo = root / "models--acme--tiny-chat"
    rev = "0123456789abcdef0123456789abcdef01234567"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    for i, p in enumerate(sorted(src.iterdir())):
        blob = repo / "blobs" / f"blob{i}"
        shutil.copy(p, blob)
        (snap / p.name).symlink_to(Path("../../blobs") / blob.name)
    (root / "models--acme--no-config" / "snapshots" / "abc").mkdir(parents=True)
    (root / "datasets--acme--data").mkdir()
    return snap


def test_the_local_hf_cache_is_listed_and_resolved(
    tiny_llama: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "hf-home"
    snap = _fake_cache(home / "hub", tiny_llama)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    assert main(["models", "--json"]) == 0
    listed = {m["ref"]: m for m in json.loads(capsys.readouterr().out)}
    size = sum(p.stat().st_size for p in tiny_llama.iterdir())
    assert listed["hf:acme/tiny-chat"]["path"] == str(snap)
    assert f"{size / 1e9:,.2f} GB" in listed["hf:acme/tiny-chat"]["description"]
    assert not any("no-config" in r or "data" in r for r in listed)
    assert "llm:tinyllama-1.1b" in listed
    entry = catalog.resolve_model("hf:acme/tiny-chat")
    assert entry.ref == "hf:acme/tiny-chat" and entry.decoder is not None
    assert entry.parameters == hf.read_checkpoint(tiny_llama).parameters
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        catalog.resolve_model("hf:acme/missing")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf.cached_checkpoints() == []
