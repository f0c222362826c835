"""The timed phases of one run, executed inside the worker process (METHOD.md "Phases").

``measure`` takes a loaded model and runs: first call (cold), warm-up until two windows agree,
calibration of the timing loop (block timing for very fast calls), the measurement itself with
convergence checks between iterations, post-check flags, a bare loop for the harness efficiency
η, and a separate memory pass. It returns a JSON-able dict plus numpy arrays under "arrays".

The timed region is ``t0 = clock(); run(); t1 = clock()`` and nothing else: the stores into
preallocated int64 arrays, the deadline compare, convergence checks, progress and array growth
all happen between iterations, outside [t0, t1].
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from wattbench.backends.runtimes.base import LoadedModel
from wattbench.domain.errors import BadInputError, UnsupportedOptionError
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.domain.quality import ETA_SANE_RANGE
from wattbench.domain.result import (
    FLAG_CONTENDED,
    FLAG_HOST_UNSTEADY,
    FLAG_LOSS_FLAT,
    Measurement,
    PhaseTimings,
)
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.domain.training import TrainingSummary
from wattbench.engine import convergence, stats
from wattbench.engine.generation import (
    SequenceConvergence,
    StepStore,
    generation_summary,
    unconverged_note,
)
from wattbench.engine.interference import InterferenceProbe, contention_note
from wattbench.engine.memory import memory_pass
from wattbench.engine.microbatch import Resizable, find_micro_batch
from wattbench.engine.pinning import GroupLink
from wattbench.engine.timing import (
    PROGRESS_INTERVAL_NS,
    RECENT_MAX,
    WARMUP_WINDOW_MIN_ITERS,
    bare_loop_seconds,
    bare_loop_throughput,
    calibrate,
    iteration_timer,
    loop_block,
    loop_generation,
    loop_single,
    null_loop_cost_ns,
    warmup,
)

log = logging.getLogger(__name__)

Emit = Callable[[MeasureProgress], None]
clock = time.perf_counter_ns

HOST_STEADY_BAND = ETA_SANE_RANGE  # η outside this: the host, not the harness, changed speed
MIN_CAPACITY = 1024


def _next_due(monitor: convergence.ConvergenceMonitor, n: int) -> int:
    """Smallest m > n with monitor.due(m) (due is monotone in n between checks)."""
    lo, step = n, 1
    hi = n + step
    while not monitor.due(hi):
        lo, step = hi, step * 2
        hi = n + step
        if step > 1 << 40:
            return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if monitor.due(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _grow(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    out = []
    for a in arrays:
        b = np.zeros(a.size * 2, dtype=a.dtype)
        b.fill(0)  # touch the pages now, not inside the timed loop
        b[: a.size] = a
        out.append(b)
    return tuple(out)


def _new_array(n: int) -> np.ndarray:
    a = np.empty(n, dtype=np.int64)
    a.fill(0)
    return a


@dataclass
class _Measured:
    starts: np.ndarray
    lats: np.ndarray  # raw samples (block durations when block > 1)
    ttfts: np.ndarray | None
    steps: StepStore | None  # decode-step durations (generation)
    n: int
    converged: bool
    rho: float
    reason: str
    measure_s: float
    gc_disabled: bool
    stop_reason: str  # convergence.STOP_*


def _measure_loop(
    loaded: Any,
    spec: RunSpec,
    emit: Emit,
    block: int,
    sample_ns: float,
    generation: bool,
    group: GroupLink | None = None,
) -> _Measured:
    eps = spec.target_epsilon
    t_max_ns = int(spec.measurement_t_max_s * 1e9)
    monitor = convergence.ConvergenceMonitor(
        eps,
        spec.required_tails,
        min_n=convergence.MIN_N,
        min_measure_ns=2_000_000_000 if spec.is_gpu else 1_000_000_000,
    )
    expected = int(min(t_max_ns, 4e9) / max(sample_ns, 1.0)) + 1
    cap = max(MIN_CAPACITY, 1 << math.ceil(math.log2(max(expected, 2))))
    cap = min(cap, 1 << 22)
    starts, lats = _new_array(cap), _new_array(cap)
    ttfts = _new_array(cap) if generation else None
    store = StepStore(spec.new_tokens - 1) if generation else None
    seq = SequenceConvergence(monitor, spec.new_tokens - 1) if generation else None
    run = loaded.run_once
    reps = range(block)
    steps = range(spec.new_tokens - 1)
    i = 0
    converged = False
    stop_reason = convergence.STOP_T_MAX
    rho = math.inf
    reason = "not checked yet"
    last_emit_i = 0
    next_due = _next_due(monitor, 0)
    holding = False
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    gc_off = not gc.isenabled()
    if group is not None:  # the last moment before the window: the instances start together
        group.wait_start()
    t_begin = clock()
    t_end = t_begin + t_max_ns
    next_emit = t_begin + PROGRESS_INTERVAL_NS
    try:
        while True:
            if i >= cap:
                if ttfts is not None:
                    starts, lats, ttfts = _grow(starts, lats, ttfts)
                else:
                    starts, lats = _grow(starts, lats)
                cap = starts.size
            stop = min(cap, max(next_due, i + 1))
            deadline = min(next_emit, t_end)
            if generation:
                assert ttfts is not None and store is not None
                i = loop_generation(
                    loaded, steps, starts, lats, ttfts, i, stop, deadline, store.marks, store.keep
                )
            elif block == 1:
                i = loop_single(run, starts, lats, i, stop, deadline)
            else:
                i = loop_block(run, reps, starts, lats, i, stop, deadline)
            now = int(starts[i - 1] + lats[i - 1])
            elapsed = now - t_begin
            if monitor.due(i):
                if seq is not None and ttfts is not None:
                    state = seq.check(lats[:i], ttfts[:i], elapsed)
                else:
                    state = monitor.check(lats[:i], elapsed)
                rho, reason = state.rho, state.reason
                next_due = _next_due(monitor, i)
                if state.stop:
                    converged, stop_reason = state.converged, state.stop_reason or stop_reason
                    if group is None or group.may_stop():
                        break
                    holding = True  # measure on with the group until every instance may stop
            if now >= t_end or (holding and group is not None and group.may_stop()):
                break
            if now >= next_emit:
                next_emit = clock() + PROGRESS_INTERVAL_NS
                lo = max(last_emit_i, i - RECENT_MAX)
                recent = lats[lo:i] // block if block > 1 else lats[lo:i]
                emit(
                    MeasureProgress(
                        Phase.MEASURING,
                        message=reason,
                        n=i,
                        rho=_finite_or_none(rho),
                        epsilon=eps,
                        elapsed_s=elapsed / 1e9,
                        fraction=_fraction(elapsed, t_max_ns, rho, eps),
                        recent_latencies_ns=tuple(recent.tolist()),
                        recent_starts_ns=tuple(starts[lo:i].tolist()),
                    )
                )
                last_emit_i = i
    finally:
        if gc_was_enabled:
            gc.enable()
    measure_s = (int(starts[i - 1] + lats[i - 1]) - t_begin) / 1e9
    if not (converged or generation) and monitor.last is not None and monitor.last.n < i:
        # say why over every sample, so the note quotes the rho the run reports
        final = monitor.check(lats[:i], int(starts[i - 1] + lats[i - 1]) - t_begin)
        if not final.stop:
            rho, reason = final.rho, final.reason
    if stop_reason == convergence.STOP_PLATEAU:
        reason = (
            f"did not converge, stopped after {measure_s:.1f} s of T_max = "
            f"{spec.measurement_t_max_s:g} s: {reason} (replicates give a between-run interval)"
        )
    elif not converged:
        reason = f"did not converge within T_max = {spec.measurement_t_max_s:g} s: {reason}"
    return _Measured(
        starts=starts[:i].copy(),
        lats=lats[:i].copy(),
        ttfts=None if ttfts is None else ttfts[:i].copy(),
        steps=store,
        n=i,
        converged=converged,
        rho=rho,
        reason=reason,
        measure_s=measure_s,
        gc_disabled=gc_off,
        stop_reason=stop_reason,
    )


def _fraction(elapsed_ns: int, t_max_ns: int, rho: float, eps: float) -> float:
    f = elapsed_ns / t_max_ns
    if math.isfinite(rho) and rho > 0:
        f = max(f, (eps / rho) ** 2)  # the half-width shrinks as 1/√n
    return min(1.0, f)


def trained(loaded: object) -> TrainingSummary | None:
    """A training run's step and loss, from a model that trains (None for inference)."""
    summary = getattr(loaded, "training_summary", None)
    return summary() if callable(summary) else None


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


# -- the whole run -----------------------------------------------------------------------


def measure(
    loaded: LoadedModel,
    spec: RunSpec,
    emit: Emit,
    *,
    load_s: float | None = None,
    before_measure: Callable[[], None] | None = None,
    group: GroupLink | None = None,
) -> Measurement:
    """All timed phases of one run on an already loaded model (runs in the worker).

    ``emit`` receives progress at most ~10 Hz, never from inside the timed loop.
    ``before_measure`` is called right before the measurement phase (the worker's
    fault-injection hook for tests). ``group``: an instance of a multi-instance run measures
    on after its stopping rule is met until every instance's is (or T_max). The result has
    no system description or model information: the worker adds them.
    """
    generation = spec.scenario is Scenario.GENERATION
    if generation and not hasattr(loaded, "prefill"):
        raise UnsupportedOptionError(
            f"{spec.model} is not a generative model; choose the single-stream or offline "
            "scenario.",
            field="scenario",
        )
    one = iteration_timer(loaded, generation, spec.new_tokens)
    tries: tuple[tuple[int, bool], ...] = ()
    if spec.find_micro_batch:  # the largest micro-batch that fits, before anything is timed
        _, tries = find_micro_batch(cast(Resizable, loaded), spec.batch_size, emit)
    items_per_call = int(getattr(loaded, "items_per_call", spec.batch_size))

    emit(MeasureProgress(Phase.LOADING, "first call"))
    first_call_ns = one(1)

    emit(MeasureProgress(Phase.WARMUP, "warming up"))
    wu = warmup(one, spec, emit, chunkable=not generation)
    call_ns = float(np.median(wu.latencies_ns[-max(WARMUP_WINDOW_MIN_ITERS, 1) :]))

    emit(MeasureProgress(Phase.CALIBRATION, "timing the timing loop"))
    if generation:
        loop_ns, block = null_loop_cost_ns(), 1
    else:
        loop_ns, block = calibrate(loaded.run_once, call_ns)

    if before_measure is not None:
        before_measure()
    emit(
        MeasureProgress(
            Phase.MEASURING,
            f"block of {block} calls per sample" if block > 1 else "",
            epsilon=spec.target_epsilon,
        )
    )
    probe = InterferenceProbe(spec.device)  # NVML opens here, before the window
    try:
        probe.start()
        m = _measure_loop(loaded, spec, emit, block, call_ns * block, generation, group)
        interference = probe.stop()
    finally:
        probe.close()

    if m.n < stats.MIN_SAMPLES:
        longest = float(m.lats.max()) / 1e9 if m.n else call_ns * block / 1e9
        needed = max(2.0, math.ceil(longest * convergence.MIN_N))
        raise BadInputError(
            f"One call takes {longest:.3g} s, about as long as the whole measurement "
            f"(T_max = {spec.measurement_t_max_s:g} s): {m.n} call(s) were timed and no "
            f"statistics can be made from that. Raise T_max to at least {needed:g} s, or "
            "make a call shorter (a smaller batch or model).",
            field="t_max_s",
        )
    per_call = m.lats / block if block > 1 else m.lats
    summary = stats.summarize(per_call, spec.percentiles)
    items = m.n * block * items_per_call
    busy_ns = int(m.lats.sum())
    throughput = stats.throughput_interval(items, busy_ns, summary.rho)
    flags = convergence.quality_flags(
        summary,
        converged=m.converged,
        warmup_steady=wu.steady,
        block_size=block,
        gc_disabled=m.gc_disabled,
        required_tails=spec.required_tails,
        plateau=m.stop_reason == convergence.STOP_PLATEAU,
    )
    if interference.contended:
        flags = (*flags, FLAG_CONTENDED)
    gen = None
    if m.ttfts is not None and m.steps is not None:
        steps = m.steps.arrays()
        gen = generation_summary(
            m.lats, m.ttfts, steps["decode_step_ns"], prompt_tokens=spec.prompt_tokens,
            new_tokens=spec.new_tokens, sequences=items_per_call, epsilon=spec.target_epsilon,
        )  # fmt: skip

    efficiency = None
    if not generation and m.measure_s > 0:
        # η counts every cost of the harness: the instrumented throughput is taken over the
        # whole measurement window (clock reads, array stores, convergence checks, progress),
        # not over the busy time that the reported throughput uses, so η ≤ the reported ratio.
        bare_s = bare_loop_seconds(m.measure_s)
        bare = bare_loop_throughput(loaded.run_once, call_ns, items_per_call, bare_s)
        window_throughput = items / m.measure_s
        efficiency = window_throughput / bare if bare > 0 else None
        if efficiency is not None and not HOST_STEADY_BAND[0] <= efficiency <= HOST_STEADY_BAND[1]:
            flags = (*flags, FLAG_HOST_UNSTEADY)

    memory = None
    if spec.memory_pass:
        emit(MeasureProgress(Phase.MEMORY, "memory pass"))
        memory = memory_pass(loaded, one)
    training = trained(loaded)
    if training is not None and tries:
        training = dataclasses.replace(training, micro_batch_tries=tries)
    if training is not None and training.loss_decreased is False:
        flags = (*flags, FLAG_LOSS_FLAT)

    phases = PhaseTimings(
        cold_load_s=load_s,
        first_call_ns=int(first_call_ns),
        warmup_iterations=wu.iterations,
        warmup_s=wu.duration_s,
        warmup_steady=wu.steady,
        null_call_ns=loop_ns,
        block_size=block,
        harness_overhead_fraction=loop_ns / (call_ns * block) if call_ns > 0 else None,
        harness_efficiency=efficiency,
        measure_s=m.measure_s,
        gc_disabled=m.gc_disabled,
        stop_reason=m.stop_reason,
    )
    arrays: dict[str, np.ndarray] = {
        "latencies_ns": (np.rint(per_call).astype(np.int64) if block > 1 else m.lats),
        "starts_ns": m.starts,
        "warmup_latencies_ns": np.asarray(wu.latencies_ns, dtype=np.int64),
    }
    if block > 1:
        arrays["block_latencies_ns"] = m.lats
    if m.ttfts is not None and m.steps is not None:
        arrays.update(ttft_ns=m.ttfts, **m.steps.arrays())
    return Measurement(
        phases=phases,
        latency=summary,
        throughput_items_per_s=throughput,
        converged=m.converged,
        flags=tuple(flags),
        items=items,
        window_ns=(int(m.starts[0]), int(m.starts[-1] + m.lats[-1])),
        generation=gen,
        training=training,
        memory=memory,
        arrays=arrays,
        interference=interference,
        notes="; ".join(
            n
            for n in (
                "" if m.converged else m.reason,
                contention_note(interference),
                unconverged_note(gen) if gen is not None and m.converged else "",
            )
            if n
        ),
    )
