"""The server scenario inside the worker: warm-up, then Poisson load on concurrent streams
(``loadgen``), or a search for the highest rate meeting a latency SLO (``slo``).

A load run (or an SLO probe) lasts until the latency percentile it is judged on has the
early-stopping minimum of METHOD.md (n_eff ≥ 64 for p90, ≥ 662 for p99) and at least 1 s
(2 s on a GPU) has passed, or until its time cap; an SLO probe also until the percentile's
interval lies on one side of the SLO. An SLO probe already violating its SLO beyond doubt
stops at once. The run's latency summary, throughput and energy window are those of the
load run at the given rate, or of the search's best probe.

A generative model's request is a whole sequence: reset (drop the KV cache), prefill, then
new tokens − 1 decode steps, served first come, first served. Its TTFT is the clock read after
the prefill − the scheduled arrival (queueing included), its TPOT (completion − first token) ÷
(new tokens − 1); their percentiles (intervals on n_eff) go into the server summary, and an
SLO may limit either (``RunSpec.slo_metric``): the checks and the search then judge that
figure. A generative model keeps its own KV cache, so one loaded model serves one sequence at
a time: such a run has one stream (``validate.check_server_entry`` refuses more; loading one
model per stream would multiply its memory and the worker loads one model).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from wattbench.backends.runtimes.base import LoadedModel
from wattbench.domain.errors import BadInputError
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.domain.result import (
    FLAG_CONTENDED,
    FLAG_LOW_N_EFF,
    FLAG_NOT_CONVERGED,
    FLAG_WARMUP_UNSTEADY,
    Measurement,
    PhaseTimings,
)
from wattbench.domain.server import FLAG_OVERLOADED, LATE_NS, ServerSummary, SloProbe
from wattbench.domain.spec import RunSpec
from wattbench.engine import stats
from wattbench.engine.interference import InterferenceProbe, contention_note
from wattbench.engine.loadgen import Judge, LoadRun, Serve, latency, run_load
from wattbench.engine.memory import memory_pass
from wattbench.engine.server_tokens import Sequences, judge_for, sequence_serve, token_percentiles
from wattbench.engine.slo import SloSearch, search_rate
from wattbench.engine.timing import WARMUP_WINDOW_MIN_ITERS, iteration_timer, warmup

Emit = Callable[[MeasureProgress], None]

MIN_REQUESTS = 30
DRAIN_S = 2.0  # after arrivals stop, the requests already queued get this long to finish
SEARCH_BUDGET = 1.5  # an SLO search stops starting probes after this × T_max
PROBE_SHARE = 1 / 6  # one probe lasts at most this × T_max (and at least PROBE_MIN_S)
PROBE_MIN_S = 2.0
START_LOAD = 0.5  # without a rate, a search starts at this share of the streams' capacity
SEED_STRIDE = 1000  # the probes of one run take consecutive seeds from its own
Z_FAIL = 2.576  # a probe fails early when its over-SLO count is this many sd above allowed


@dataclass(frozen=True)
class LoadSettings:
    """How long load runs last and when they have enough (from the spec)."""

    percentile: float  # the tail a run is judged on (the SLO's, or p99)
    min_s: float
    seed: int

    @property
    def min_n_eff(self) -> int:
        return stats.headline_min_n_eff(self.percentile)

    def enough(self, lats: np.ndarray, elapsed_ns: int) -> bool:
        if lats.size < max(MIN_REQUESTS, self.min_n_eff) or elapsed_ns < self.min_s * 1e9:
            return False
        return stats.effective_n(lats.size, stats.lag1_autocorr(lats)) >= self.min_n_eff

    def conclusive(self, slo_ns: float) -> Callable[[np.ndarray, int], bool]:
        """An SLO probe has enough when ``enough`` holds and the percentile's interval lies
        wholly on one side of the SLO (until then it measures on, up to its cap)."""

        def check(lats: np.ndarray, elapsed_ns: int) -> bool:
            if not self.enough(lats, elapsed_ns):
                return False
            n_eff = stats.effective_n(lats.size, stats.lag1_autocorr(lats))
            (pe,) = stats.percentile_estimates(lats, (self.percentile,), n_eff)
            if pe.lo_ns is None or pe.hi_ns is None:
                return False
            return not pe.lo_ns <= slo_ns <= pe.hi_ns

        return check

    def failing(self, slo_ns: float) -> Callable[[np.ndarray, int], bool]:
        """Already violating the SLO beyond doubt: more requests over it than the percentile
        allows, by Z_FAIL standard deviations (counted with n_eff)."""
        p = self.percentile
        need = stats.loadgen_min_queries(p)

        def check(lats: np.ndarray, elapsed_ns: int) -> bool:
            n = lats.size
            if n < need or elapsed_ns < self.min_s * 1e9:  # not on a start-up hiccup alone
                return False
            over = int(np.count_nonzero(lats > slo_ns))
            n_eff = stats.effective_n(n, stats.lag1_autocorr(lats))
            return over > (1 - p) * n + Z_FAIL * math.sqrt(n * p * (1 - p) * n / n_eff)

        return check


def settings_for(spec: RunSpec) -> LoadSettings:
    return LoadSettings(
        percentile=spec.slo_percentile,
        min_s=2.0 if spec.is_gpu else 1.0,
        seed=SEED_STRIDE * spec.repeat,  # replicates get their own arrivals, repeatably
    )


def probe_of(
    run: LoadRun, rate_per_s: float, percentile: float, slo_ns: float, judge: Judge = latency
) -> SloProbe:
    """A load run judged against the SLO (its point estimate, with its interval kept), on the
    figure ``judge`` makes of each request (its latency by default)."""
    lats = run.values(judge)
    n = int(lats.size)
    t0, t1 = run.window_ns
    value, lo, hi, n_eff = math.nan, None, None, 0.0
    if n >= 2:
        n_eff = stats.effective_n(n, stats.lag1_autocorr(lats))
        (pe,) = stats.percentile_estimates(lats, (percentile,), n_eff)
        value, lo, hi = pe.value_ns, pe.lo_ns, pe.hi_ns
    return SloProbe(
        rate_per_s=rate_per_s,
        achieved_per_s=n / ((t1 - t0) / 1e9),
        requests=n,
        dropped=run.dropped,
        latency_ns=value,
        lo_ns=lo,
        hi_ns=hi,
        n_eff=n_eff,
        met=n >= 2 and value <= slo_ns and run.dropped == 0 and not run.stopped_early,
        stopped_early=run.stopped_early,
        duration_s=(t1 - t0) / 1e9,
    )


def _progress(emit: Emit, label: str, t_max_s: float) -> Callable[[np.ndarray, int], None]:
    def on_check(lats: np.ndarray, elapsed_ns: int) -> None:
        recent = lats[-200:]
        emit(
            MeasureProgress(
                Phase.MEASURING,
                message=label,
                n=int(lats.size),
                elapsed_s=elapsed_ns / 1e9,
                fraction=min(1.0, elapsed_ns / 1e9 / t_max_s),
                recent_latencies_ns=tuple(int(x) for x in recent),
            )
        )

    return on_check


def search(
    serves: list[Serve],
    spec: RunSpec,
    emit: Emit,
    settings: LoadSettings,
    *,
    capacity_per_s: float,
    prepare: Callable[[], None] | None = None,
    judge: Judge = latency,
) -> tuple[SloSearch, dict[float, LoadRun]]:
    """The SLO search on these streams (``prepare``, ``judge``: run_load's); every probe's
    load run, by its rate."""
    assert spec.slo_ms is not None
    slo_ns = spec.slo_ms * 1e6
    t_max = spec.measurement_t_max_s
    probe_max_s = max(PROBE_MIN_S, t_max * PROBE_SHARE)
    runs: dict[float, LoadRun] = {}

    def probe(rate: float) -> SloProbe:
        run = run_load(
            serves,
            rate_per_s=rate,
            seed=settings.seed + len(runs),
            max_s=probe_max_s,
            enough=settings.conclusive(slo_ns),
            failing=settings.failing(slo_ns),
            drain_s=DRAIN_S,
            prepare=prepare,
            judge=judge,
            on_check=_progress(emit, f"SLO search: {rate:.4g} requests/s", probe_max_s),
        )
        runs[rate] = run
        return probe_of(run, rate, settings.percentile, slo_ns, judge)

    start = spec.target_rate or capacity_per_s * START_LOAD
    found = search_rate(probe, start, budget_s=SEARCH_BUDGET * t_max, ceiling_per_s=capacity_per_s)
    short = sum(1 for p in found.probes if p.n_eff < settings.min_n_eff and not p.stopped_early)
    if short:
        why = (
            f"{short} of {len(found.probes)} probes were judged on fewer effective requests "
            f"than p{settings.percentile * 100:g} needs (n_eff {settings.min_n_eff}): each "
            f"lasted at most {probe_max_s:g} s; a longer T_max gives longer probes"
        )
        found = dataclasses.replace(found, note="; ".join(n for n in (found.note, why) if n))
    return found, runs


def server_summary(
    run: LoadRun,
    spec: RunSpec,
    rate_per_s: float,
    found: SloSearch | None,
    seed: int,
    *,
    generation: bool = False,
) -> ServerSummary:
    """The server figures of one load run (and of the search that chose it); ``generation``:
    its requests were sequences (TTFT and TPOT percentiles)."""
    done = run.completed
    first, last = run.window_ns
    window_s = (last - first) / 1e9
    offered = run.offered
    arrival_window_s = max((min(run.stop_ns, last) - first) / 1e9, 1e-9)
    free = np.flatnonzero(run.found_free & (run.start_ns > 0))
    lag = run.start_ns[free] - run.arrival_ns[free]
    lag50, lag99 = (
        (float(np.percentile(lag, 50)), float(np.percentile(lag, 99))) if lag.size else (0.0, 0.0)
    )
    service = run.done_ns[done] - run.start_ns[done]
    slo_met = None
    judge = judge_for(spec.slo_metric, spec.new_tokens) if spec.slo_ms is not None else latency
    if spec.slo_ms is not None:
        slo_met = probe_of(run, rate_per_s, spec.slo_percentile, spec.slo_ms * 1e6, judge).met
    ttft_ns, tpot_ns = (
        token_percentiles(run, spec.new_tokens, spec.slo_percentile if spec.slo_ms else None)
        if generation
        else ((), ())
    )
    return ServerSummary(
        target_rate_per_s=rate_per_s,
        streams=spec.streams,
        seed=seed,
        requests=int(done.size),
        dropped=run.dropped,
        late=int(np.count_nonzero(lag > LATE_NS)),
        queued=int(done.size - free.size),
        offered_rate_per_s=offered.size / arrival_window_s,
        achieved_rate_per_s=done.size / window_s,
        duration_s=window_s,
        service_mean_ns=float(service.mean()) if service.size else math.nan,
        issue_lag_p50_ns=lag50,
        issue_lag_p99_ns=lag99,
        generator_cpu_share=run.generator_cpu_ns / 1e9 / window_s,
        generator_cpu_per_request_ns=run.generator_cpu_ns / max(int(done.size), 1),
        slo_percentile=spec.slo_percentile if spec.slo_ms is not None else None,
        slo_ms=spec.slo_ms,
        slo_met=slo_met,
        goodput_per_s=None if found is None else found.goodput_per_s,
        search=() if found is None else found.probes,
        search_s=None if found is None else found.duration_s,
        note="" if found is None else found.note,
        slo_metric=spec.slo_metric,
        new_tokens=spec.new_tokens if generation else None,
        ttft_ns=ttft_ns,
        tpot_ns=tpot_ns,
    )


def measure_server(
    loaded: LoadedModel,
    spec: RunSpec,
    emit: Emit,
    *,
    load_s: float | None = None,
    before_measure: Callable[[], None] | None = None,
) -> Measurement:
    """All phases of a server-scenario run on an already loaded model (runs in the worker):
    first call, warm-up, then one load run at the target rate or the SLO search. A
    generative model (one with ``prefill``) serves one sequence per request."""
    generation = callable(getattr(loaded, "prefill", None))
    one = iteration_timer(loaded, generation, spec.new_tokens)
    items_per_call = int(getattr(loaded, "items_per_call", spec.batch_size))
    emit(MeasureProgress(Phase.LOADING, "first call"))
    first_call_ns = one(1)
    emit(MeasureProgress(Phase.WARMUP, "warming up"))
    wu = warmup(one, spec, emit, chunkable=not generation)
    call_ns = float(np.median(wu.latencies_ns[-max(WARMUP_WINDOW_MIN_ITERS, 1) :]))
    capacity_per_s = spec.streams * 1e9 / max(call_ns, 1.0)
    settings = settings_for(spec)
    serves: list[Serve]
    if generation:
        serves = [sequence_serve(cast(Sequences, loaded), spec.new_tokens)] * spec.streams
    else:
        serves = [loaded.run_once] * spec.streams  # one model shared by the streams
    judge = judge_for(spec.slo_metric, spec.new_tokens) if spec.slo_ms is not None else latency
    prepare: Callable[[], None] | None = getattr(loaded, "prepare_thread", None)
    if before_measure is not None:
        before_measure()
    t_measure = time.perf_counter_ns()
    interference_probe = InterferenceProbe(spec.device)
    found: SloSearch | None = None
    try:
        interference_probe.start()
        if spec.slo_ms is not None:
            found, runs = search(
                serves,
                spec,
                emit,
                settings,
                capacity_per_s=capacity_per_s,
                prepare=prepare,
                judge=judge,
            )
            chosen = found.best if found.best is not None else found.probes[-1]
            rate = chosen.rate_per_s
            run = runs[rate]
            seed = settings.seed + list(runs).index(rate)
        else:
            assert spec.target_rate is not None
            rate, seed = spec.target_rate, settings.seed
            run = run_load(
                serves,
                rate_per_s=rate,
                seed=seed,
                max_s=spec.measurement_t_max_s,
                enough=settings.enough,
                drain_s=DRAIN_S,
                prepare=prepare,
                on_check=_progress(emit, f"{rate:.4g} requests/s", spec.measurement_t_max_s),
            )
        interference = interference_probe.stop()
    finally:
        interference_probe.close()
    measure_s = (time.perf_counter_ns() - t_measure) / 1e9
    lats = run.latencies_ns()
    if lats.size < stats.MIN_SAMPLES:
        raise BadInputError(
            f"Only {lats.size} request(s) completed at {rate:.4g} requests/s within "
            f"T_max = {spec.measurement_t_max_s:g} s: raise the rate or T_max.",
            field="target_rate",
        )
    server = server_summary(run, spec, rate, found, seed, generation=generation)
    percentiles = tuple(sorted({*spec.percentiles, spec.slo_percentile}))
    summary = stats.summarize(lats, percentiles)
    first, last = run.window_ns
    items = int(lats.size) * items_per_call
    count_rho = stats.Z_975 / math.sqrt(lats.size)  # a Poisson count's relative half-width
    throughput = stats.throughput_interval(items, last - first, count_rho)
    tail = summary.percentile(spec.slo_percentile)
    enough_tail = tail is not None and tail.headline
    converged = enough_tail and run.dropped == 0 and (found is None or found.converged)
    flags: list[str] = []
    if not converged:
        flags.append(FLAG_NOT_CONVERGED)
    if not wu.steady:
        flags.append(FLAG_WARMUP_UNSTEADY)
    if not enough_tail:
        flags.append(FLAG_LOW_N_EFF)
    if run.dropped:
        flags.append(FLAG_OVERLOADED)
    if interference.contended:
        flags.append(FLAG_CONTENDED)
    memory = None
    if spec.memory_pass:
        emit(MeasureProgress(Phase.MEMORY, "memory pass"))
        memory = memory_pass(loaded, one)
    done = run.completed
    notes = [server.note, contention_note(interference)]
    if run.dropped:
        notes.append(
            f"{run.dropped} request(s) arrived but were not served within {DRAIN_S:g} s of the "
            "end of arrivals: the offered rate is beyond what the streams serve"
        )
    return Measurement(
        phases=PhaseTimings(
            cold_load_s=load_s,
            first_call_ns=int(first_call_ns),
            warmup_iterations=wu.iterations,
            warmup_s=wu.duration_s,
            warmup_steady=wu.steady,
            measure_s=measure_s,
            gc_disabled=True,
            stop_reason="converged" if converged else "t_max",
        ),
        latency=summary,
        throughput_items_per_s=throughput,
        converged=converged,
        flags=tuple(flags),
        items=items,
        window_ns=(first, last),
        memory=memory,
        arrays={
            "latencies_ns": lats,
            "starts_ns": run.arrival_ns[done],
            "issue_ns": run.start_ns[done],
            "warmup_latencies_ns": np.asarray(wu.latencies_ns, dtype=np.int64),
        },
        interference=interference,
        server=server,
        notes="; ".join(n for n in notes if n),
    )
