"""Quantized inference: the ortgenai runtime, conversion with ORT GenAI's model builder, and
weight-only int8 on torch.

A tiny Llama checkpoint (tests/llm_fixtures) is converted once per session to int4 and fp32
for the CPU (both builders run at once); the runs are real workers at the quick preset with a
T_max of a second or so.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wattbench.backends.models import builtin, catalog, genai_build, hf
from wattbench.backends.runtimes import registry
from wattbench.backends.runtimes.base import RuntimeOptions
from wattbench.backends.runtimes.ortgenai_rt import OrtGenaiRuntime
from wattbench.domain.errors import BadInputError, ModelError, UnsupportedOptionError
from wattbench.domain.result import RunStatus
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine import runner
from wattbench.engine.validate import validate

from tests.llm_fixtures import build_checkpoint
from tests.specs import quick_spec

PROMPT, NEW = 8, 6


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint("llama", tmp_path_factory.mktemp("genai") / "tiny-llama")


@pytest.fixture(scope="session")
def built(checkpoint: Path, session_dirs: dict[str, Path]) -> dict[str, Path]:
    """{precision: GenAI folder} of the checkpoint, int4 and fp32 for the CPU, in the session's
    cache folder (the one every test's runs use)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WATTBENCH_CACHE_DIR", str(session_dirs["cache"]))
        with ThreadPoolExecutor(2) as pool:
            jobs = {
                p: pool.submit(genai_build.build, checkpoint, p, "cpu") for p in ("int4", "fp32")
            }
            return {p: job.result() for p, job in jobs.items()}


def quick(model: str, **kw: Any) -> RunSpec:
    generation = dict(
        runtime="ortgenai", scenario=Scenario.GENERATION, prompt_tokens=PROMPT, new_tokens=NEW
    )
    return quick_spec(model, **{**generation, **kw})


def _decoder_ops(folder: Path) -> set[str]:
    import onnx

    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    return {n.op_type for n in model.graph.node}


# -- conversion ----------------------------------------------------------------------------------


def test_the_builder_makes_int4_and_fp32_folders_once(
    built: dict[str, Path], checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for precision, folder in built.items():
        record = json.loads((folder / genai_build.BUILD_RECORD).read_text())
        assert record == {"precision": precision, "target": "cpu", "source": str(checkpoint)}
        assert folder.parent == Path(os.environ["WATTBENCH_CACHE_DIR"]) / "genai"
    assert "MatMulNBits" in _decoder_ops(built["int4"])  # 4-bit weights
    assert "MatMulNBits" not in _decoder_ops(built["fp32"])
    data = {p: (f / "model.onnx.data").stat().st_size for p, f in built.items()}
    assert data["int4"] < data["fp32"] / 2
    # a second call finds the folder: the builder is not started (its time limit, which only
    # a build reads, is made unreadable to prove it) and nothing in the folder is rewritten
    before = (built["int4"] / "model.onnx").stat().st_mtime_ns
    monkeypatch.setenv(genai_build.TIME_LIMIT_ENV, "not a number")
    assert genai_build.build(checkpoint, "int4", "cpu") == built["int4"]
    assert (built["int4"] / "model.onnx").stat().st_mtime_ns == before
    with pytest.raises(ModelError, match="positive number of seconds"):  # a new one would build
        genai_build.build(checkpoint, "fp16", "cuda")


def test_a_changed_checkpoint_is_built_anew(checkpoint: Path, tmp_path: Path) -> None:
    """The cache key is the content: a copy has the same key, one changed byte another."""
    copy = Path(shutil.copytree(checkpoint, tmp_path / "copy"))
    key = genai_build.build_dir(checkpoint, "int4", "cpu")
    assert genai_build.build_dir(copy, "int4", "cpu") == key
    with open(copy / "generation_config.json", "a") as f:
        f.write(" ")
    assert genai_build.build_dir(copy, "int4", "cpu") != key
    assert genai_build.build_dir(checkpoint, "fp32", "cpu") != key


# -- the same tokens as torch --------------------------------------------------------------------


def _torch_greedy(checkpoint: Path, prompt: np.ndarray) -> np.ndarray:
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(
        checkpoint, local_files_only=True, trust_remote_code=False, dtype=torch.float32
    ).eval()
    ids = torch.from_numpy(prompt.astype(np.int64))
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=NEW,
            min_new_tokens=NEW,
            do_sample=False,
            pad_token_id=3,
        )
    return out[:, PROMPT:].numpy()


def test_ortgenai_fp32_generates_the_greedy_tokens_of_torch_fp32(
    built: dict[str, Path], checkpoint: Path
) -> None:
    prompt = np.array([[5, 9, 17, 33, 65, 129, 257, 400], [7, 7, 300, 12, 41, 6, 99, 510]])
    options = RuntimeOptions(
        precision="fp32", batch_size=2, prompt_tokens=PROMPT, new_tokens=NEW, generation=True
    )
    runtime = OrtGenaiRuntime()
    loaded = runtime.load(genai_build.genai_entry(built["fp32"]), "cpu", options)
    try:
        loaded.with_prompt(prompt)
        ours = loaded.generate()
    finally:
        loaded.close()
    expected = _torch_greedy(checkpoint, prompt)
    assert ours.shape == (2, NEW)
    np.testing.assert_array_equal(ours, expected)
    int4 = runtime.load(
        genai_build.genai_entry(built["int4"]), "cpu", RuntimeOptions(
            precision="int4", batch_size=2, prompt_tokens=PROMPT, new_tokens=NEW, generation=True
        )
    )  # fmt: skip
    try:
        tokens = int4.generate()
        assert tokens.shape == (2, NEW) and tokens.max() < 512  # EOS did not stop it early
    finally:
        int4.close()


def test_the_end_of_sequence_token_never_ends_a_generation_early(
    built: dict[str, Path], tmp_path: Path
) -> None:
    """A copy whose end-of-sequence id is the very token greedy search picks first: still
    exactly NEW tokens (without min_length the generator would be done after one)."""
    options = RuntimeOptions(
        precision="fp32", prompt_tokens=PROMPT, new_tokens=NEW, generation=True
    )
    runtime = OrtGenaiRuntime()
    loaded = runtime.load(genai_build.genai_entry(built["fp32"]), "cpu", options)
    try:
        first = int(loaded.generate()[0, 0])
    finally:
        loaded.close()
    copy = Path(shutil.copytree(built["fp32"], tmp_path / "eos"))
    config = json.loads((copy / genai_build.GENAI_CONFIG).read_text())
    config["model"]["eos_token_id"] = first
    (copy / genai_build.GENAI_CONFIG).write_text(json.dumps(config))
    loaded = runtime.load(genai_build.genai_entry(copy), "cpu", options)
    try:
        tokens = loaded.generate()
    finally:
        loaded.close()
    assert tokens.shape == (1, NEW) and first not in tokens


# -- runs through Wattbench ----------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int4", "fp32"])
def test_a_checkpoint_runs_on_ortgenai_with_a_generation_summary(
    built: dict[str, Path], checkpoint: Path, precision: str
) -> None:
    r = runner.run_one(quick(str(checkpoint), precision=precision, batch_size=2))
    assert r.status is RunStatus.DONE, r.reason
    g = r.generation
    assert g is not None and g.new_tokens == NEW and r.latency is not None
    assert 0 < g.ttft_ns.value < r.latency.mean_ns
    assert g.tpot_ns.value > 0 and g.decode_tokens_per_s.value > 0
    settings = r.system["runtime_settings"]
    assert settings["model_folder"] == str(built[precision])  # the cached build, not a new one
    assert settings["converted_from"] == str(checkpoint) and settings["precision"] == precision


def test_a_genai_folder_runs_as_built_and_other_precisions_are_refused_before(
    built: dict[str, Path],
) -> None:
    folder = str(built["int4"])
    assert catalog.model_format(folder) == genai_build.GENAI_FORMAT
    # a GenAI folder runs on ortgenai by default; a checkpoint stays torch's unless asked
    assert registry.runtime_for(genai_build.GENAI_FORMAT) == "ortgenai"
    assert registry.runtime_for(hf.FORMAT) == "torch"
    assert hf.FORMAT in registry.loadable_formats("ortgenai")
    entry = validate(quick(folder, precision="int4"))
    assert entry.format == genai_build.GENAI_FORMAT and entry.generative
    with pytest.raises(UnsupportedOptionError, match="built as int4"):
        validate(quick(folder, precision="fp32"))
    with pytest.raises(UnsupportedOptionError, match="generation only"):
        validate(quick(folder, precision="int4", scenario=Scenario.SINGLE_STREAM))
    with pytest.raises(UnsupportedOptionError, match="at most 256 positions"):
        validate(quick(folder, precision="int4", prompt_tokens=250, new_tokens=10))


def test_precisions_the_device_or_runtime_cannot_do_are_refused_before_the_run(
    checkpoint: Path,
) -> None:
    ref = str(checkpoint)
    with pytest.raises(UnsupportedOptionError, match="runs fp32, int4, not fp16"):
        validate(quick(ref, precision="fp16"))
    with pytest.raises(UnsupportedOptionError, match="not 'int4'"):
        validate(quick(ref, runtime="torch", precision="int4"))
    import onnxruntime_genai as og

    if not og.is_cuda_available():  # the CPU build of ORT GenAI
        with pytest.raises(BadInputError, match="no CUDA support"):
            validate(quick(ref, device="cuda:0", precision="int4"))
    with pytest.raises(UnsupportedOptionError, match="GenAI folders"):
        validate(quick("builtin:gpt-small", precision="fp32"))


def test_a_remote_code_checkpoint_is_never_given_to_the_builder(
    checkpoint: Path, tmp_path: Path
) -> None:
    bad = Path(shutil.copytree(checkpoint, tmp_path / "remote"))
    config = json.loads((bad / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="auto_map"):
        genai_build.build(bad, "int4", "cpu")
    assert not genai_build.build_dir(bad, "int4", "cpu").exists()


# -- weight-only int8 on torch -------------------------------------------------------------------


def test_int8_on_torch_quantizes_linear_weights_and_runs_a_generation() -> None:
    r = runner.run_one(quick("builtin:gpt-small", runtime="torch", precision="int8"))
    assert r.status is RunStatus.DONE, r.reason
    assert r.generation is not None and r.generation.decode_tokens_per_s.value > 0
    # the worker counted the layers whose weights are int8: every Linear of the decoder
    module = builtin.build_module("gpt-small")
    linears = sum(1 for m in module.modules() if type(m).__name__ == "Linear")
    assert r.system["runtime_settings"]["int8_weight_layers"] == linears > 0


def test_int8_on_torch_is_refused_where_it_cannot_work() -> None:
    with pytest.raises(UnsupportedOptionError, match="weight-only int8 on the CPU"):
        validate(quick("builtin:gpt-small", runtime="torch", precision="int8", device="cuda:0"))
    with pytest.raises(UnsupportedOptionError, match="onnxruntime runs"):
        validate(quick("builtin:mlp-tiny", runtime="onnxruntime", precision="int8",
                       scenario=Scenario.SINGLE_STREAM))  # fmt: skip
