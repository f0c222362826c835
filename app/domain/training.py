"""A training run's own figures (the training scenario): what one optimizer step is, the
model FLOPs per token from the architecture, and the loss as a check that the step trains.

Tokens per second is the run's throughput (its items are tokens) and the step time its
latency; achieved FLOP/s is tokens/s × FLOPs per token. The FLOPs follow the usual model-FLOPs
count (PaLM, Chowdhery et al. 2022, appendix B): 6·N for the forward and backward of the
matrix products of N parameters (every trainable one but the embedding lookups; a tied LM
head counts, its product is done), plus 12·L·d·s for attention over a sequence of s tokens in
L layers of width d. Recomputed activations are not counted (model FLOPs, not
hardware FLOPs), so activation checkpointing lowers the achieved figure, as it should.

A data-parallel run (N ranks of one host, one device each) counts the global batch: tokens per
step are every rank's, so the run's tokens/s is the node's. The step is synchronous, so each
device trains its share in the node's step time: per-device tokens/s is the node's over N, and
MFU per device is that share's FLOP/s over one device's peak.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbench.domain import units
from wattbench.domain.peaks import DeviceFigures, per_card

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
    # data parallelism: ranks of one host, each on its device (rank order) with the name its
    # runtime gives it, and the process group's backend (gloo, nccl); one rank: (), ""
    data_parallel: int = 1
    devices: tuple[str, ...] = ()
    device_names: tuple[str, ...] = ()
    backend: str = ""

    @property
    def tokens_per_step_per_rank(self) -> int:
        return self.micro_batch * self.grad_accum * self.seq_len

    @property
    def tokens_per_step(self) -> int:
        """The global batch: every data-parallel rank's tokens of one step."""
        return self.tokens_per_step_per_rank * self.data_parallel

    def per_device_tokens_per_s(self, tokens_per_s: float) -> float:
        """One rank's share of the node's tokens/s: the step is synchronous (every rank waits
        for the gradients' all-reduce), so each rank trains its tokens in the node's step
        time, and its tokens/s is the node's over the ranks."""
        return tokens_per_s / self.data_parallel

    @property
    def loss_decreased(self) -> bool | None:
        """The loss fell on the fixed batch (None: not known)."""
        if self.loss_first is None or self.loss_last is None:
            return None
        return self.loss_last < self.loss_first

    def achieved_flops_per_s(self, tokens_per_s: float) -> float:
        return tokens_per_s * self.flops_per_token


def data_parallel_lines(t: TrainingSummary, tokens_per_s: float, interval_s: float) -> list[str]:
    """A data-parallel run's figures in words: per-device and per-node tokens/s, the process
    group, what the power sources cover, and per-card figures where the ranks' devices are
    dies of multi-die cards. Nothing for a run of one rank."""
    n = t.data_parallel
    if n <= 1:
        return []
    per_device = t.per_device_tokens_per_s(tokens_per_s)
    devices = ", ".join(units.printable(d) for d in t.devices) or "?"
    lines = [
        f"data parallel: {n} ranks ({t.backend or '?'}) on {devices}; "
        f"{units.number(per_device, 4)} tokens/s per device, "
        f"{units.number(tokens_per_s, 4)} tokens/s per node (the step is synchronous: every "
        f"device trains its {units.count(t.tokens_per_step_per_rank)} tokens in the node's "
        "step time, so per device is the node's over the ranks; the loss is rank 0's)",
        power_coverage(t),
    ]
    distinct = len(set(t.devices)) == len(t.devices) == len(t.device_names)
    if not distinct:
        return lines
    figures = [
        DeviceFigures(d, name, per_device, None)
        for d, name in zip(t.devices, t.device_names, strict=True)
    ]
    cards = per_card(figures, interval_s if interval_s > 0 else 1.0)
    if any(len(c.devices) > 1 or not c.complete for c in cards):
        for c in cards:
            rate = (
                "n/a" if c.tokens_per_s is None else f"{units.number(c.tokens_per_s, 4)} tokens/s"
            )
            lines.append(f"{units.printable(c.card)}: {rate} ({c.label})")
    return lines


def power_coverage(t: TrainingSummary) -> str:
    """What the run's power sources cover of a data-parallel run's devices."""
    if all(d == "cpu" for d in t.devices):
        return (
            "power: every rank runs on the CPU, so the CPU package's reading covers them all "
            "(the run's power sources cover what they cover: nothing of it is split by rank)"
        )
    devices = ", ".join(units.printable(d) for d in t.devices)
    return (
        f"power: the run's device energy sums the readings of the ranks' devices ({devices}), "
        "so its J per token is the node's; it is flagged incomplete where a rank's device has "
        "no reading of its own (so is a multi-die card read once, on its first die); the "
        "system figure covers every source read on the host"
    )
