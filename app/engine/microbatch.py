"""The largest micro-batch that fits (the training scenario's ``--find-micro-batch``).

A 40 GB and an 80 GB card differ in training throughput mostly by the micro-batch each can
hold, so a per-device comparison is fair only at each device's own largest micro-batch. The
search runs on the loaded trainer before warm-up: one optimizer step at the run's micro-batch,
then at twice that, and so on until a step runs out of the device's memory (or
``MAX_MICRO_BATCH``), then halves the interval between the last size that fit and the first
that did not. A step that runs out of memory is caught, its gradients and the allocator's
cache are released, and the search goes on; the run then measures at the largest size that
fit, and every size tried is kept with the result. When not even the first size fits, the run
is refused with what to do (a smaller micro-batch, activation checkpointing, bf16).
"""

from __future__ import annotations

import logging
from typing import Protocol

from wattbench.domain.errors import ShapeError, is_out_of_memory
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.engine.timing import Emit

log = logging.getLogger(__name__)

MAX_MICRO_BATCH = 4096


class Resizable(Protocol):
    """A trainer whose micro-batch can change on the loaded model."""

    def set_micro_batch(self, sequences: int) -> None: ...

    def run_once(self) -> None: ...

    def release(self) -> None: ...


def _fits(trainer: Resizable, sequences: int) -> bool:
    try:
        trainer.set_micro_batch(sequences)
        trainer.run_once()
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        log.info("a micro-batch of %d does not fit: %s", sequences, exc)
        trainer.release()
        return False
    return True


def find_micro_batch(
    trainer: Resizable, start: int, emit: Emit, *, limit: int = MAX_MICRO_BATCH
) -> tuple[int, tuple[tuple[int, bool], ...]]:
    """The largest micro-batch from ``start`` up to ``limit`` whose step fits, and every size
    tried with whether it fit; the trainer is left at that size. ShapeError when even
    ``start`` does not fit."""
    tries: list[tuple[int, bool]] = []

    def attempt(n: int) -> bool:
        emit(MeasureProgress(Phase.WARMUP, f"micro-batch search: trying {n}"))
        ok = _fits(trainer, n)
        tries.append((n, ok))
        return ok

    fit, over = 0, None
    n = start
    while n <= limit:
        if not attempt(n):
            over = n
            break
        fit, n = n, n * 2
    if fit == 0:
        trainer.release()
        raise ShapeError(
            f"Not even a micro-batch of {start} sequence(s) fits the device's memory: give a "
            "smaller --batch, add --activation-checkpointing, or train in bf16.",
            field="batch_size",
        )
    if over is None and fit < limit:  # doubling passed the limit: try the limit itself
        if attempt(limit):
            fit = limit
        else:
            over = limit
    while over is not None and over - fit > 1:
        mid = (fit + over) // 2
        if attempt(mid):
            fit = mid
        else:
            over = mid
    trainer.set_micro_batch(fit)
    return fit, tuple(tries)
