"""Stored-looking training runs for the board, compare and report tests.

Built on report_fixtures.make_run with a call being one optimizer step: its items are the step's
trained tokens (micro-batch × accumulation × sequence), so throughput = tokens per step / step
time and energy per item = power × step time / tokens per step.
"""

from __future__ import annotations

from wattbench.domain.result import RunResult
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.domain.training import TrainingSummary, flops_per_token

from tests.report_fixtures import make_run

SEQ = 16
MICRO_BATCH = 2
PARAMETERS = 1_000_000
LAYERS = 2
WIDTH = 64


def training_run(
    *,
    device: str = "cpu",
    device_name: str = "Synthetic CPU 9000",
    grad_accum: int = 2,
    step_ms: float = 20.0,
    power_w: float | None = 50.0,
    precision: str = "fp32",
    seed: int = 0,
) -> RunResult:
    """One finished training run of the built-in GPT: its step, FLOPs and loss."""
    tokens = MICRO_BATCH * grad_accum * SEQ
    run = make_run(
        device=device, batch=tokens, mean_ms=step_ms, power_w=power_w, seed=seed,
        model="builtin:gpt-small", model_name="GPT small", n=200,
    )  # fmt: skip
    spec = RunSpec(
        model="builtin:gpt-small", device=device, runtime="torch", batch_size=MICRO_BATCH,
        scenario=Scenario.TRAINING, prompt_tokens=SEQ, grad_accum=grad_accum,
        precision=precision, repeat=seed,
    )  # fmt: skip
    summary = TrainingSummary(
        micro_batch=MICRO_BATCH, grad_accum=grad_accum, seq_len=SEQ,
        activation_checkpointing=False, parameters=PARAMETERS, layers=LAYERS, width=WIDTH,
        flops_per_token=flops_per_token(PARAMETERS, LAYERS, WIDTH, SEQ),
        optimizer="AdamW lr 3e-4", device_name=device_name, loss_first=6.9, loss_last=5.2,
        steps=40,
    )  # fmt: skip
    return run.with_(spec=spec, training=summary)
