"""The training scenario on the CPU: a real forward, backward and AdamW step of the built-in
GPT and of a small Hugging Face architecture (a llama checkpoint built here), measured by the
engine: the loss falls on the fixed batch, tokens/s is the step's tokens over its time, and
the FLOPs per token follow 6·N + 12·L·d·s from the architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
from wattbench.backends.models import builtin
from wattbench.cli.main import main
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import FLAG_LOSS_FLAT, RunResult, RunStatus
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.compare import compare_runs
from wattbench.engine.runner import run_one

from tests.llm_fixtures import tiny_checkpoints, tiny_llama  # noqa: F401

QUICK = {
    "scenario": Scenario.TRAINING,
    "preset": "quick",
    "t_max_s": 2.0,
    "idle_baseline": False,
    "memory_pass": False,
    "threads": 1,
}


def _train(model: str, **kw: object) -> RunResult:
    spec = RunSpec(model=model, **(QUICK | kw))  # type: ignore[arg-type]
    result = run_one(spec)
    assert result.status is RunStatus.DONE, result.reason
    return result


def _consistent(r: RunResult) -> None:
    t, thr, lat = r.training, r.throughput_items_per_s, r.latency
    assert t is not None and thr is not None and lat is not None
    assert t.tokens_per_step == r.spec.batch_size * r.spec.grad_accum * r.spec.prompt_tokens
    # tokens/s is the step's tokens over the mean step time
    assert thr.value == pytest.approx(t.tokens_per_step / (lat.mean_ns / 1e9), rel=1e-6)
    # and the loss fell on the fixed batch: the step trains
    assert t.loss_first is not None and t.loss_last is not None
    assert t.loss_last < t.loss_first and t.loss_decreased and FLAG_LOSS_FLAT not in r.flags
    assert t.steps > r.latency.n  # warm-up and the bare loop trained too


def test_the_builtin_gpt_trains_with_accumulation() -> None:
    r = _train("builtin:gpt-small", batch_size=2, prompt_tokens=32, grad_accum=2)
    _consistent(r)
    t = r.training
    assert t is not None and t.grad_accum == 2 and t.tokens_per_step == 128
    # N from the module itself: every parameter but the position table (the token table is
    # the tied LM head's matrix product)
    module = builtin.build_module("gpt-small")
    n = sum(p.numel() for p in module.parameters()) - module.wpe.weight.numel()
    assert t.parameters == n
    assert t.layers == len(module.blocks) and t.width == module.wte.embedding_dim
    assert t.flops_per_token == 6 * n + 12 * t.layers * t.width * 32
    assert r.spec.label().endswith("train s32 ×2")


def test_a_hugging_face_architecture_trains_with_activation_checkpointing(
    tiny_llama: Path,  # noqa: F811
) -> None:
    r = _train(str(tiny_llama), batch_size=2, prompt_tokens=16, activation_checkpointing=True)
    _consistent(r)
    t = r.training
    assert t is not None and t.activation_checkpointing
    import transformers

    module = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    embeds = module.get_input_embeddings().weight.numel()
    tied = module.get_output_embeddings().weight is module.get_input_embeddings().weight
    n = sum(p.numel() for p in module.parameters()) - embeds + (embeds if tied else 0)
    assert t.parameters == n
    assert t.layers == module.config.num_hidden_layers
    assert t.width == module.config.hidden_size


def test_what_cannot_train_is_refused_before_anything_runs() -> None:
    with pytest.raises(BadInputError, match="not a decoder language model"):
        run_one(RunSpec(model="builtin:mlp-small", **QUICK))  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="does not train"):
        run_one(RunSpec(model="builtin:gpt-small", runtime="onnxruntime", **QUICK))  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="fp32 or bf16"):
        RunSpec(model="builtin:gpt-small", precision="fp16", **QUICK)  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="training scenario only"):
        RunSpec(model="builtin:gpt-small", grad_accum=4)
    with pytest.raises(BadInputError, match="training scenario only"):
        RunSpec(model="builtin:gpt-small", activation_checkpointing=True)


def test_training_and_inference_runs_are_never_compared() -> None:
    trained = RunResult(spec=RunSpec(model="builtin:gpt-small", **QUICK), status=RunStatus.DONE)  # type: ignore[arg-type]
    served = RunResult(spec=RunSpec(model="builtin:gpt-small"), status=RunStatus.DONE)
    with pytest.raises(BadInputError, match="compare training runs with training runs"):
        compare_runs([trained, served])


def test_the_command_line_shows_the_step_the_flops_and_the_loss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["--db", str(tmp_path / "t.db"), "run", "--model", "builtin:gpt-small"]
    argv += ["--scenario", "training", "--batch", "2", "--prompt-tokens", "16"]
    argv += ["--preset", "quick", "--t-max", "2", "--no-idle", "--no-memory", "--threads", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "training step: 2 sequence(s) × 1 micro-batch(es) × 16 tokens = 32 tokens" in out
    assert "6·N + 12·L·d·s" in out and "TFLOP/s on" in out
    assert "n/a: no documented peak for" in out  # a CPU has none in the table
    assert "(falls: the step trains)" in out


def test_a_step_trains_where_an_inference_model_turned_grad_mode_off() -> None:
    """Grad mode is per thread, and a torch inference model loaded in the same process turns
    it off: the training step turns it on for itself."""
    import torch
    from wattbench.backends.models import catalog
    from wattbench.backends.runtimes.base import RuntimeOptions
    from wattbench.backends.runtimes.torch_train import load_trainer

    options = RuntimeOptions(batch_size=2, prompt_tokens=8, training=True)
    entry = catalog.resolve_model("builtin:gpt-small")
    was = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        trainer = load_trainer(entry, torch.device("cpu"), options)
        trainer.run_once()
        trainer.run_once()
        summary = trainer.training_summary()
        trainer.close()
    finally:
        torch.set_grad_enabled(was)
    assert summary.steps == 2 and summary.loss_last is not None
    assert summary.loss_first is not None and summary.loss_last < summary.loss_first
