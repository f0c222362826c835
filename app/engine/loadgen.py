"""The server scenario's load generator: Poisson arrivals served by concurrent streams.

Arrivals are a Poisson process: exponential gaps from a seeded generator, laid out in advance
on ``perf_counter_ns``, the clock the timings use. Each of ``streams`` threads takes the next
request in arrival order (one shared FIFO queue: a request that arrives while every stream is
busy waits), sleeps until its arrival if it is early, calls ``serve`` and records when it
started and finished (and, where ``serve`` returns one, when its first token came: a
generation request's clock read after its prefill). A request's latency is completion −
scheduled arrival, queueing included, as MLPerf LoadGen counts it; a free stream's delay
past the arrival is the generator's issue lag. The calling thread watches the run and
decides when it has enough; then arrivals stop and the requests that already arrived are
served (the drain), or, for a probe already violating its SLO, everything stops at once.

Python threads share the interpreter lock: a model call that releases it (torch, onnxruntime,
a sleep) runs concurrently, Python-level work does not. The switch interval is shortened
during the run so that a waking stream gets the lock quickly; the lag it still costs is
measured and reported, not hidden.
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

clock = time.perf_counter_ns
cpu_clock = time.thread_time_ns

CHECK_INTERVAL_S = 0.25  # how often the watching thread looks at the completed requests
SLEEP_SLICE_S = 0.05  # a stream waiting for a far arrival wakes this often to see a stop
SWITCH_INTERVAL_S = 0.0002  # the interpreter-lock switch interval during a load run
START_DELAY_NS = 2_000_000  # the first arrival comes this long after the streams are ready
MAX_SCHEDULE = 1 << 24  # arrivals laid out at most (128 MiB of int64 per array)


def poisson_offsets_ns(rate_per_s: float, count: int, seed: int) -> np.ndarray:
    """Arrival times of a Poisson process at ``rate_per_s`` (ns after its start, int64):
    the cumulative sum of ``count`` exponential gaps of mean 1/rate from ``seed``."""
    if not rate_per_s > 0 or not math.isfinite(rate_per_s):
        raise ValueError(f"the arrival rate must be positive and finite (got {rate_per_s})")
    rng = np.random.default_rng(seed)
    gaps_s = rng.exponential(1.0 / rate_per_s, size=count)
    return np.rint(np.cumsum(gaps_s) * 1e9).astype(np.int64)


@dataclass(frozen=True)
class LoadRun:
    """What one load run recorded, per request in arrival order (0 = never started)."""

    arrival_ns: np.ndarray  # scheduled arrivals, absolute perf_counter_ns
    start_ns: np.ndarray  # when its stream called serve
    done_ns: np.ndarray  # when serve returned
    found_free: np.ndarray  # bool: a stream was waiting for it (start − arrival is issue lag)
    first_ns: np.ndarray  # what serve returned: a generation request's first token (else 0)
    stop_ns: int  # arrivals after this were not offered
    generator_cpu_ns: int  # stream threads outside serve, plus the watching thread
    stopped_early: bool  # ``failing`` said so: queued requests were dropped, not drained

    @property
    def offered(self) -> np.ndarray:
        """Indices of the requests that arrived before arrivals stopped (and of any served
        that a stream had taken as the stop was being set)."""
        return np.flatnonzero((self.arrival_ns <= self.stop_ns) | (self.done_ns > 0))

    @property
    def completed(self) -> np.ndarray:
        return np.flatnonzero(self.done_ns > 0)

    def latencies_ns(self) -> np.ndarray:
        """Completion − scheduled arrival of the completed requests, in arrival order."""
        done = self.completed
        return self.done_ns[done] - self.arrival_ns[done]

    def values(self, judge: Judge) -> np.ndarray:
        """``judge``'s figure of the completed requests, in arrival order."""
        done = self.completed
        return judge(self.arrival_ns[done], self.first_ns[done], self.done_ns[done])

    @property
    def dropped(self) -> int:
        return int(self.offered.size - self.completed.size)

    @property
    def window_ns(self) -> tuple[int, int]:
        """First arrival to last completion (or to the stop when nothing completed)."""
        first = int(self.arrival_ns[0]) if self.arrival_ns.size else self.stop_ns
        last = int(self.done_ns.max()) if self.completed.size else self.stop_ns
        return first, max(last, first + 1)


Check = Callable[[np.ndarray, int], bool]  # (judged figures so far in arrival order, elapsed ns)
# a request's judged figure from its (scheduled arrival, first token, completion) in ns
Judge = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
Serve = Callable[[], int | None]  # one request; may return its first token's clock read


def latency(arrival: np.ndarray, first: np.ndarray, done: np.ndarray) -> np.ndarray:
    """The default judged figure: completion − scheduled arrival."""
    return done - arrival


class _Shared:
    """What the streams and the watching thread share (plain attributes: the interpreter lock
    orders them; ``next(counter)`` hands each request to exactly one stream)."""

    def __init__(self, n: int) -> None:
        self.counter = itertools.count()
        self.stop_ns = 1 << 62  # arrivals after this are not offered
        self.abort_ns = 1 << 62  # nothing is started after this
        self.start_ns = np.zeros(n, dtype=np.int64)
        self.done_ns = np.zeros(n, dtype=np.int64)
        self.found_free = np.zeros(n, dtype=bool)
        self.first_ns = np.zeros(n, dtype=np.int64)
        self.taken = 0  # requests handed to a stream so far (approximate, for the watcher)


def _stream(
    serve: Serve,
    arrival: np.ndarray,
    shared: _Shared,
    cpu_out: list[int],
    errors: list[BaseException],
) -> None:
    n = arrival.size
    cpu0 = cpu_clock()
    inside = 0
    try:
        while True:
            i = next(shared.counter)
            if i >= n:
                break
            shared.taken = i + 1
            due = int(arrival[i])
            if due > shared.stop_ns:
                break
            now = clock()
            if now < due:
                shared.found_free[i] = True
                while now < due and due <= shared.stop_ns:
                    time.sleep(min((due - now) / 1e9, SLEEP_SLICE_S))
                    now = clock()
                if due > shared.stop_ns:
                    break
            if now > shared.abort_ns:
                break
            c0 = cpu_clock()
            t0 = clock()
            first = serve()
            t1 = clock()
            inside += cpu_clock() - c0
            if first is not None:
                shared.first_ns[i] = first
            shared.start_ns[i] = t0
            shared.done_ns[i] = t1
    except BaseException as exc:  # the watcher re-raises it once every stream has stopped
        errors.append(exc)
        shared.stop_ns = shared.abort_ns = 0
    cpu_out.append(cpu_clock() - cpu0 - inside)


def _completed_values(arrival: np.ndarray, shared: _Shared, judge: Judge) -> np.ndarray:
    upto = min(shared.taken, arrival.size)
    done = shared.done_ns[:upto]
    idx = np.flatnonzero(done > 0)
    return judge(arrival[idx], shared.first_ns[idx], done[idx])


def run_load(
    serves: Sequence[Serve],
    *,
    rate_per_s: float,
    seed: int,
    max_s: float,
    enough: Check | None = None,
    failing: Check | None = None,
    drain_s: float = 1.0,
    on_check: Callable[[np.ndarray, int], None] | None = None,
    prepare: Callable[[], None] | None = None,
    judge: Judge = latency,
) -> LoadRun:
    """Offer Poisson arrivals at ``rate_per_s`` to ``len(serves)`` streams (one serve callable
    per stream: the same model call, or one per instance) for at most ``max_s``.

    Every ``CHECK_INTERVAL_S`` the figures ``judge`` makes of the requests completed so far
    (their latencies by default) are given to ``enough`` (stop offering, then serve what
    already arrived for at most ``drain_s``), to ``failing`` (stop everything now: the queued
    requests are dropped) and to ``on_check`` (progress).
    ``prepare`` runs once in each stream thread before the first arrival (a runtime's
    per-thread settings: ``LoadedModel.prepare_thread``).
    Garbage collection is off and the interpreter's switch interval short for the run.
    """
    if not serves:
        raise ValueError("a load run needs at least one stream")
    count = min(MAX_SCHEDULE, int(rate_per_s * max_s * 1.2) + 64)
    offsets = poisson_offsets_ns(rate_per_s, count, seed)
    shared = _Shared(count)
    cpu: list[int] = []
    errors: list[BaseException] = []
    arrival = np.empty(count, dtype=np.int64)
    threads = []
    ready = threading.Barrier(len(serves) + 1)

    def body(serve: Serve) -> None:
        try:
            if prepare is not None:
                prepare()
        except BaseException as exc:  # raised once every stream has stopped
            errors.append(exc)
        ready.wait()
        if not errors:
            _stream(serve, arrival, shared, cpu, errors)

    for k, serve in enumerate(serves):
        t = threading.Thread(target=body, args=(serve,), name=f"wattbench-stream-{k}")
        t.daemon = True
        threads.append(t)
        t.start()
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    watch_cpu0 = cpu_clock()
    stopped_early = False
    try:
        t_begin = clock() + START_DELAY_NS
        arrival[:] = offsets + t_begin
        t_end = t_begin + int(max_s * 1e9)
        ready.wait()
        while not errors:
            time.sleep(CHECK_INTERVAL_S)
            now = clock()
            lats = _completed_values(arrival, shared, judge)
            elapsed = now - t_begin
            if on_check is not None:
                on_check(lats, elapsed)
            if failing is not None and failing(lats, elapsed):
                shared.stop_ns = shared.abort_ns = clock()
                stopped_early = True
                break
            if now >= t_end or (enough is not None and enough(lats, elapsed)):
                shared.stop_ns = clock()
                shared.abort_ns = shared.stop_ns + int(drain_s * 1e9)
                break
            if shared.taken >= count:
                shared.stop_ns = int(arrival[-1])
                shared.abort_ns = now + int(drain_s * 1e9)
                break
        watch_cpu = cpu_clock() - watch_cpu0
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
        if gc_was_enabled:
            gc.enable()
    if errors:
        raise errors[0]
    return LoadRun(
        arrival_ns=arrival,
        start_ns=shared.start_ns,
        done_ns=shared.done_ns,
        found_free=shared.found_free,
        first_ns=shared.first_ns,
        stop_ns=int(shared.stop_ns),
        generator_cpu_ns=int(sum(cpu) + watch_cpu),
        stopped_early=stopped_early,
    )
