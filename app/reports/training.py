"""A training run in the report: its figures in the training words (an item is a trained token:
tokens/s, step time, J per trained token, $ per million tokens trained, achieved TFLOP/s) and
its step — tokens per step, model FLOPs per token with their formula, MFU, loss first → last.
"""

from __future__ import annotations

from typing import Any

from wattbench.domain import units
from wattbench.domain.result import RunResult
from wattbench.domain.training import FLOPS_FORMULA, TrainingSummary
from wattbench.engine.training_metrics import achieved_tflops, run_mfu

TRAINING_SPEED = ("train-tokens-per-s", "step-time", "train-tflops")
TRAINING_ENERGY = ("train-energy-per-token", "train-tokens-per-j", "cost-per-m-train-tokens")
# metric → CSV column stem, in stored units (ns, J, tokens)
TRAINING_COLUMNS: dict[str, str] = {
    "train-tokens-per-s": "train_metric_tokens_per_s",
    "step-time": "train_metric_step_time_ns",
    "train-energy-per-token": "train_metric_j_per_token",
    "train-tokens-per-j": "train_metric_tokens_per_j",
    "cost-per-m-train-tokens": "train_metric_usd_per_million_tokens",
    "train-tflops": "train_metric_achieved_tflops",
    "train-tokens-per-s-per-device": "train_metric_tokens_per_s_per_device",
    "train-tokens-per-s-per-card": "train_metric_tokens_per_s_per_card",
}
STEP_CAPTION = (
    "One optimizer step: sequences per micro-batch × micro-batches (gradient accumulation) × "
    "tokens per sequence (× data-parallel ranks). Model FLOPs per token: "
    f"{FLOPS_FORMULA}; recomputed activations are not counted. Achieved TFLOP/s = tokens/s × "
    "FLOPs per token; MFU is one device's share of it over the device's documented dense peak "
    "at the run's precision (n/a with the reason where there is none)."
)


def is_training(metrics: tuple[str, ...]) -> bool:
    """Whether a report shows training figures (its metrics are the training ones)."""
    return "train-tokens-per-s" in metrics


def item_words(metrics: tuple[str, ...]) -> tuple[str, str]:
    """('per inference', 'per million inferences'), or the training words."""
    if is_training(metrics):
        return "per trained token", "per million tokens trained"
    return "per inference", "per million inferences"


def rate_unit(metrics: tuple[str, ...]) -> str:
    """The stored unit of a run's rate: items/s, or tokens/s (trained tokens)."""
    return "tokens/s" if is_training(metrics) else "items/s"


def step_text(t: TrainingSummary) -> str:
    """'2 × 4 × 128 = 1,024 tokens, activation checkpointing' ('… × 2 ranks = …' for a
    data-parallel run: the global batch)."""
    ckpt = ", activation checkpointing" if t.activation_checkpointing else ""
    ranks = f" × {t.data_parallel} ranks" if t.data_parallel > 1 else ""
    return (
        f"{t.micro_batch} × {t.grad_accum} × {t.seq_len}{ranks} = "
        f"{units.count(t.tokens_per_step)} tokens{ckpt}"
    )


def flops_text(t: TrainingSummary) -> str:
    """'1.23 GFLOP (N = 1,000,000, L = 2, d = 64, s = 16)'."""
    return (
        f"{units.number(t.flops_per_token / 1e9, 4)} GFLOP (N = {units.count(t.parameters)}, "
        f"L = {t.layers}, d = {t.width}, s = {t.seq_len})"
    )


def loss_text(t: TrainingSummary) -> str:
    """'6.9 → 5.2 over 40 steps (falls)', or why it is not known."""
    if t.loss_first is None or t.loss_last is None:
        return "not recorded"
    verdict = "falls" if t.loss_decreased else "did not fall: the step may not train"
    return f"{t.loss_first:.4g} → {t.loss_last:.4g} over {units.count(t.steps)} steps ({verdict})"


def mfu_cell(run: RunResult) -> tuple[str, str]:
    """Achieved TFLOP/s and MFU in words (with the peak and its source), or n/a and why."""
    thr = run.throughput_items_per_s
    if run.training is None or thr is None:
        return "n/a — no throughput was recorded", "n/a — no throughput was recorded"
    tf = achieved_tflops(run, thr)
    return units.estimate(tf.value, tf.lo, tf.hi), run_mfu(run, tf.value)[1]


def training_rows(run: RunResult) -> list[tuple[str, str]]:
    """A training run's step in words, one (label, text) per line (the run details pane)."""
    t = run.training
    if t is None:
        return []
    tflops, mfu = mfu_cell(run)
    return [
        ("Training step", f"{step_text(t)} ({t.optimizer}, {run.spec.precision})"),
        ("Model FLOPs per token", f"{flops_text(t)}; {FLOPS_FORMULA}"),
        ("Achieved TFLOP/s", f"{tflops} on {t.device_name or run.spec.device}"),
        ("MFU", mfu),
        ("Loss on the fixed batch", loss_text(t)),
    ]


def training_fields(run: RunResult) -> dict[str, Any]:
    """A training run's step in the CSV/JSON row (empty for other runs)."""
    t = run.training
    if t is None:
        return {}
    thr = run.throughput_items_per_s
    fraction, words = run_mfu(run, achieved_tflops(run, thr).value) if thr else (None, "")
    return {
        "train_micro_batch": t.micro_batch,
        "train_grad_accum": t.grad_accum,
        "train_seq_len": t.seq_len,
        "train_tokens_per_step": t.tokens_per_step,
        "train_activation_checkpointing": t.activation_checkpointing,
        "train_parameters": t.parameters,
        "train_layers": t.layers,
        "train_width": t.width,
        "train_flops_per_token": t.flops_per_token,
        "train_flops_formula": FLOPS_FORMULA,
        "train_optimizer": t.optimizer,
        "train_device_name": t.device_name,
        "train_loss_first": t.loss_first,
        "train_loss_last": t.loss_last,
        "train_steps": t.steps,
        "train_mfu": fraction,
        "train_mfu_words": words,
    }
