"""Progress events from a run, and the cancel token. Plain data, no Qt."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class Phase:
    QUEUED = "queued"
    STARTING = "starting"  # spawning the worker process
    IDLE_BASELINE = "idle-baseline"
    PREFLIGHT = "preflight"
    LOADING = "loading"  # cold load + first call
    WARMUP = "warm-up"
    CALIBRATION = "calibration"
    MEASURING = "measuring"
    MEMORY = "memory"  # separate memory pass
    FINISHING = "finishing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class MeasureProgress:
    """What a run's worker reports while it measures (sent over the pipe as it is)."""

    phase: str  # one of Phase
    message: str = ""
    n: int = 0  # samples (iterations during warm-up) so far
    rho: float | None = None  # current relative half-width of the mean's CI
    epsilon: float | None = None  # the target
    elapsed_s: float | None = None  # in this phase
    fraction: float | None = None  # rough 0..1 progress estimate, None if unknown
    # per-call latencies (ns) and their start times since the last report, for live charts
    recent_latencies_ns: tuple[int, ...] = ()
    recent_starts_ns: tuple[int, ...] = ()


@dataclass(frozen=True)
class ProgressEvent:
    run_index: int  # position in the batch of runs being executed (0 for a single run)
    run_count: int
    phase: str  # one of Phase
    message: str = ""
    elapsed_s: float = 0.0  # since the run started
    n: int = 0  # samples measured so far
    rho: float | None = None  # current relative half-width of the mean's CI
    epsilon: float | None = None  # the target
    fraction: float | None = None  # rough 0..1 progress estimate, None if unknown
    # recent per-call latencies (ns) and their start times since the last event, for live charts
    recent_latencies_ns: tuple[int, ...] = ()
    recent_starts_ns: tuple[int, ...] = ()
    power_w: dict[str, float] = field(default_factory=dict)  # latest power per domain
    extra: dict[str, Any] = field(default_factory=dict)


class ProgressCallback(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


class CancelToken:
    """Set from any thread; the supervisor honours it within a second."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)
