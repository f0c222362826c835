"""The timed loops of a run and what sizes them (METHOD.md "Phases" 2–3).

The loops themselves are minimal, because they ARE the harness overhead: ``t0 = clock();
run(); t1 = clock()`` and two stores into preallocated arrays. Around them: the warm-up until
two windows agree, the cost of the loop measured with a null call, block timing for calls too
fast to time alone, and the bare loop that η compares against.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.domain.spec import RunSpec
from wattbench.engine import convergence

log = logging.getLogger(__name__)

Emit = Callable[[MeasureProgress], None]
clock = time.perf_counter_ns

PROGRESS_INTERVAL_NS = 100_000_000  # ≤ 10 Hz
RECENT_MAX = 256  # latencies per progress event, for live charts
WARMUP_MIN_ITERS = 2
WARMUP_MIN_S, WARMUP_MIN_S_GPU = 0.5, 2.0  # GPU clocks ramp up over seconds
WARMUP_WINDOW_MIN_ITERS = 5
WARMUP_WINDOW_MIN_NS = 250_000_000
WARMUP_TOLERANCE = 0.02
WARMUP_MIN_WINDOWS_BEFORE_ITER_CAP = 3  # a fast model gets 3 window comparisons first
WARMUP_CHUNK_NS = 20_000  # warm-up times calls faster than this in chunks
BLOCK_TRIGGER = 100  # block timing when one call < 100 × the loop's own cost
BLOCK_OVERHEAD_MAX = 0.001  # ... doubling the block until that cost ≤ 0.1 % of a block
MAX_BLOCK = 1 << 20
NULL_LOOP_ITERS = 2000
BARE_LOOP_FRACTION = 0.1  # the bare loop of η runs a tenth of the measuring time ...
BARE_LOOP_MIN_S, BARE_LOOP_MAX_S = 0.2, 1.0  # ... within these bounds (and ≥ 3 calls)


def _null() -> None:
    """The null call used to measure the timing loop's own cost."""


# -- the timed loops (kept minimal: these ARE the harness overhead) --------------------------


def loop_single(
    run: Callable[[], None],
    starts: np.ndarray,
    lats: np.ndarray,
    i: int,
    stop: int,
    deadline_ns: int,
) -> int:
    for j in range(i, stop):
        t0 = clock()
        run()
        t1 = clock()
        starts[j] = t0
        lats[j] = t1 - t0
        if t1 >= deadline_ns:
            return j + 1
    return stop


def loop_block(
    run: Callable[[], None],
    reps: range,
    starts: np.ndarray,
    lats: np.ndarray,
    i: int,
    stop: int,
    deadline_ns: int,
) -> int:
    for j in range(i, stop):
        t0 = clock()
        for _ in reps:
            run()
        t1 = clock()
        starts[j] = t0
        lats[j] = t1 - t0
        if t1 >= deadline_ns:
            return j + 1
    return stop


def loop_generation(
    model: Any,
    steps: range,
    starts: np.ndarray,
    lats: np.ndarray,
    ttfts: np.ndarray,
    i: int,
    stop: int,
    deadline_ns: int,
    marks: list[int],
    keep: Callable[[int, int], None],
) -> int:
    """Generation calls: prefill, then the clock read after each decode step into ``marks``
    (a list: the cheapest store), so a step lasts from the read before it to its own and TTFT +
    Σ steps is the call's latency exactly; ``keep(j, end of prefill)`` stores the steps,
    outside the timed region."""
    reset, prefill, decode = model.reset, model.prefill, model.decode_step
    for j in range(i, stop):
        reset()  # untimed: drops the KV cache
        t0 = clock()
        prefill()
        tf = clock()
        for k in steps:
            decode()
            marks[k] = clock()
        t = marks[steps[-1]] if steps else tf
        starts[j] = t0
        lats[j] = t - t0
        ttfts[j] = tf - t0
        keep(j, tf)
        if t >= deadline_ns:
            return j + 1
    return stop


# -- phases ------------------------------------------------------------------------------


@dataclass
class Warmup:
    latencies_ns: list[int]  # per call (per-call mean of a chunk for very fast calls)
    iterations: int
    steady: bool
    duration_s: float


def iteration_timer(loaded: Any, generation: bool, new_tokens: int) -> Callable[[int], int]:
    """``one(k)``: run k iterations back to back, return their total ns (warm-up, cold, memory).

    Generation iterations reset the KV cache untimed before each prefill.
    """
    if generation:
        steps = range(new_tokens - 1)

        def one_gen(k: int) -> int:
            total = 0
            for _ in range(k):
                loaded.reset()
                t0 = clock()
                loaded.prefill()
                for _ in steps:
                    loaded.decode_step()
                total += clock() - t0
            return total

        return one_gen
    run = loaded.run_once

    def one(k: int) -> int:
        reps = range(k)
        t0 = clock()
        for _ in reps:
            run()
        return clock() - t0

    return one


def warmup(one: Callable[[int], int], spec: RunSpec, emit: Emit, chunkable: bool) -> Warmup:
    """Run until the medians of two consecutive windows (each ≥ 5 iterations and ≥ 0.25 s)
    agree within 2 %, after at least 0.5 s (2 s on a GPU), or until the cap.

    A sample is one call, or for calls under WARMUP_CHUNK_NS a chunk of calls timed together
    (its per-call mean is recorded), so a very fast model does not fill memory with samples.
    """
    preset = spec.preset_values
    min_ns = int((WARMUP_MIN_S_GPU if spec.is_gpu else WARMUP_MIN_S) * 1e9)
    max_ns = int(preset.warmup_max_s * 1e9)
    lat: list[int] = []
    iters = 0
    chunk = 1
    t_begin = clock()
    win_start, win_t0 = 0, t_begin
    prev: list[int] | None = None
    compared = 0
    next_emit = t_begin + PROGRESS_INTERVAL_NS
    while True:
        lat.append(one(chunk) // chunk)
        iters += chunk
        now = clock()
        elapsed = now - t_begin
        if chunkable and chunk == 1 and len(lat) == WARMUP_WINDOW_MIN_ITERS:
            med = float(np.median(lat))
            if med < WARMUP_CHUNK_NS:
                chunk = math.ceil(WARMUP_CHUNK_NS / max(med, 1.0))
        if len(lat) - win_start >= WARMUP_WINDOW_MIN_ITERS and now - win_t0 >= WARMUP_WINDOW_MIN_NS:
            cur = lat[win_start:]
            agree = prev is not None and convergence.warmup_is_steady(
                np.asarray(prev), np.asarray(cur), WARMUP_TOLERANCE
            )
            compared += prev is not None
            prev, win_start, win_t0 = cur, len(lat), now
            if agree and iters >= WARMUP_MIN_ITERS and elapsed >= min_ns:
                return Warmup(lat, iters, True, elapsed / 1e9)
        if elapsed >= max_ns or (
            iters >= preset.warmup_max_iters
            and compared >= WARMUP_MIN_WINDOWS_BEFORE_ITER_CAP
            and elapsed >= min_ns
        ):
            return Warmup(lat, iters, False, elapsed / 1e9)
        if now >= next_emit:
            next_emit = now + PROGRESS_INTERVAL_NS
            emit(
                MeasureProgress(
                    Phase.WARMUP,
                    n=iters,
                    elapsed_s=elapsed / 1e9,
                    fraction=min(1.0, elapsed / max_ns),
                    recent_latencies_ns=tuple(lat[-RECENT_MAX:]),
                )
            )


def null_loop_cost_ns(iters: int = NULL_LOOP_ITERS, repeats: int = 5) -> float:
    """Per-iteration cost of the measurement loop itself, with a null call (min of repeats)."""
    starts = np.zeros(iters, dtype=np.int64)
    lats = np.zeros(iters, dtype=np.int64)
    best = math.inf
    for _ in range(repeats):
        t0 = clock()
        loop_single(_null, starts, lats, 0, iters, 1 << 62)
        best = min(best, (clock() - t0) / iters)
    return best


def calibrate(run: Callable[[], None], call_ns: float) -> tuple[float, int]:
    """(loop cost per iteration ns, block size): blocks only when a call < 100 × loop cost."""
    loop_ns = null_loop_cost_ns()
    if call_ns >= BLOCK_TRIGGER * loop_ns:
        return loop_ns, 1
    block = 1
    while block < MAX_BLOCK:
        block *= 2
        reps = range(block)
        best = math.inf
        for _ in range(3):
            t0 = clock()
            for _ in reps:
                run()
            best = min(best, clock() - t0)
        if loop_ns <= BLOCK_OVERHEAD_MAX * best:
            break
    return loop_ns, block


def bare_loop_seconds(measure_s: float) -> float:
    """How long the bare loop of η runs after a measurement of ``measure_s`` seconds."""
    return min(BARE_LOOP_MAX_S, max(BARE_LOOP_MIN_S, BARE_LOOP_FRACTION * measure_s))


def bare_loop_throughput(
    run: Callable[[], None], call_ns: float, items_per_call: int, duration_s: float
) -> float:
    """Items per second of ``run`` in a loop with no instrumentation (chunks of ~20 ms)."""
    chunk = max(1, int(20e6 / max(call_ns, 1.0)))
    reps = range(chunk)
    calls = 0
    target_ns = int(duration_s * 1e9)
    t0 = clock()
    while True:
        for _ in reps:
            run()
        calls += chunk
        elapsed = clock() - t0
        if elapsed >= target_ns and calls >= 3:
            return calls * items_per_call / (elapsed / 1e9)
