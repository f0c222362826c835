"""A training run's own figures (the training scenario): what one optimizer step is, the
model FLOPs per token from the architecture, and the loss as a check that the step trains.

Tokens per second is the run's throughput (its items are tokens) and the step time its
latency; achieved FLOP/s is tokens/s × FLOPs per token. The FLOPs follow the usual model-FLOPs
count (PaLM, Chowdhery et al. 2022, appendix B): 6·N for the forward and backward of the
matrix products of N parameters (every trainable one but the embedding lookups; a tied LM
head counts, its product is done), plus 12·L·d·s for attention over a sequence of s tokens in
L layers of width d. Recomputed activations are not counted (model FLOPs, not
hardware FLOPs), so activation checkpointing lowers the achieved figure, as it should.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOPS_FORMULA = (
    "6·N + 12·L·d·s per token (N parameters in matrix products, L layers, d width, s sequence)"
)


def flops_per_token(parameters: int, layers: int, width: int, seq_len: int) -> float:
    """Model FLOPs of one trained token (forward and backward), see the module docstring."""
    return 6.0 * parameters + 12.0 * layers * width * seq_len


@dataclass(frozen=True)
class TrainingSummary:
    """What one step of a training run is and does."""

    micro_batch: int  # sequences per micro-batch
    grad_accum: int  # micro-batches per optimizer step
    seq_len: int  # tokens per sequence
    activation_checkpointing: bool
    parameters: int  # N: trainable parameters outside the embeddings
    layers: int
    width: int
    flops_per_token: float
    optimizer: str  # "AdamW lr 3e-4"
    device_name: str = ""  # as the runtime names it ("NVIDIA H200"; the CPU's model)
    loss_first: float | None = None  # on the fixed batch, at the first step
    loss_last: float | None = None  # ... at the last step
    steps: int = 0  # optimizer steps taken on the batch (warm-up, measurement, memory pass)
    # the micro-batch search (--find-micro-batch): each size tried, in order, and whether a
    # step fit in the device's memory; the run measured the largest that fit
    micro_batch_tries: tuple[tuple[int, bool], ...] = ()

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.grad_accum * self.seq_len

    @property
    def loss_decreased(self) -> bool | None:
        """The loss fell on the fixed batch (None: not known)."""
        if self.loss_first is None or self.loss_last is None:
            return None
        return self.loss_last < self.loss_first

    def achieved_flops_per_s(self, tokens_per_s: float) -> float:
        return tokens_per_s * self.flops_per_token
