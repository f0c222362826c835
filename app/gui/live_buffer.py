"""A thread-safe buffer of the running run's samples, read by the live charts' timer.

The run thread appends what each progress event carries; the GUI reads a snapshot at ~20 Hz
and calls setData on existing curves. Nothing here emits a signal per sample.
Arrays grow by doubling; a snapshot holds views of the filled part, which later appends never
touch (they write past it or into a new array), so reading needs the lock only briefly.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

MAX_SAMPLES = 2_000_000  # beyond this, keep every other sample (the chart is downsampled anyway)


class _Series:
    """Two growing float64 columns (time s, value)."""

    def __init__(self, capacity: int = 4096) -> None:
        self.t_s = np.empty(capacity, dtype=np.float64)
        self.values = np.empty(capacity, dtype=np.float64)
        self.count = 0

    def extend(self, t_s: np.ndarray, values: np.ndarray) -> None:
        need = self.count + len(t_s)
        if need > len(self.t_s):
            # New arrays, never in-place moves: a reader may hold a view of the old ones.
            old_t, old_v = self.t_s[: self.count], self.values[: self.count]
            if need > MAX_SAMPLES:
                old_t, old_v = old_t[::2], old_v[::2]
                need = len(old_t) + len(t_s)
            capacity = max(need, min(2 * len(self.t_s), MAX_SAMPLES))
            t_new = np.empty(capacity, dtype=np.float64)
            v_new = np.empty(capacity, dtype=np.float64)
            t_new[: len(old_t)] = old_t
            v_new[: len(old_v)] = old_v
            self.t_s, self.values, self.count = t_new, v_new, len(old_t)
        self.t_s[self.count : need] = t_s
        self.values[self.count : need] = values
        self.count = need

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.t_s[: self.count], self.values[: self.count]


@dataclass(frozen=True)
class LiveSnapshot:
    """What the live view draws: views of the samples so far, and the run's state."""

    version: int
    run_key: int
    label: str
    batch_size: int
    phase: str
    message: str
    n: int
    rho: float | None
    epsilon: float | None
    fraction: float | None
    elapsed_s: float
    latency_t_s: np.ndarray  # seconds since the run started (shared monotonic clock)
    latency_ms: np.ndarray
    power: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # W per domain
    phase_marks: tuple[tuple[float, str], ...] = ()  # (time s, phase) where a phase began


class LiveBuffer:
    """Samples of the run in progress. Written by the run thread, read by the GUI timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._run_key = -1
        self._label = ""
        self._batch_size = 1
        self._start_ns = 0
        self._phase = ""
        self._message = ""
        self._n = 0
        self._rho: float | None = None
        self._epsilon: float | None = None
        self._fraction: float | None = None
        self._elapsed_s = 0.0
        self._latency = _Series()
        self._power: dict[str, _Series] = {}
        self._marks: list[tuple[float, str]] = []

    @property
    def version(self) -> int:
        return self._version

    def reset(self, run_key: int, label: str, batch_size: int, start_ns: int) -> None:
        """Start a new run; start_ns is perf_counter_ns() when it began (same clock as the
        worker's start timestamps)."""
        with self._lock:
            self._run_key = run_key
            self._label = label
            self._batch_size = max(1, batch_size)
            self._start_ns = start_ns
            self._phase = ""
            self._message = ""
            self._n = 0
            self._rho = self._epsilon = self._fraction = None
            self._elapsed_s = 0.0
            self._latency = _Series()
            self._power = {}
            self._marks = []
            self._version += 1

    def add(
        self,
        *,
        phase: str,
        message: str,
        n: int,
        rho: float | None,
        epsilon: float | None,
        fraction: float | None,
        elapsed_s: float,
        latencies_ns: tuple[int, ...] | list[int],
        starts_ns: tuple[int, ...] | list[int],
        power_w: dict[str, float],
        now_ns: int,
    ) -> None:
        """Append one progress event's payload (called on the run thread)."""
        t_now_s = (now_ns - self._start_ns) / 1e9
        lat = np.asarray(latencies_ns, dtype=np.float64)
        if len(starts_ns) == len(lat) and len(lat):
            t_lat = (np.asarray(starts_ns, dtype=np.float64) - self._start_ns) / 1e9
        else:  # no start times: spread them over the time the event covers
            t_lat = np.full(len(lat), t_now_s)
        with self._lock:
            if phase != self._phase:
                self._marks.append((t_now_s, phase))
                self._phase = phase
            self._message = message
            self._n = n
            self._rho = rho
            self._epsilon = epsilon
            self._fraction = fraction
            self._elapsed_s = elapsed_s
            if len(lat):
                self._latency.extend(t_lat, lat / 1e6)
            for domain, watts in power_w.items():
                series = self._power.get(domain)
                if series is None:
                    series = self._power[domain] = _Series(1024)
                series.extend(np.array([t_now_s]), np.array([float(watts)]))
            self._version += 1

    def snapshot(self) -> LiveSnapshot:
        with self._lock:
            lat_t, lat_ms = self._latency.view()
            power = {d: s.view() for d, s in self._power.items()}
            return LiveSnapshot(
                version=self._version,
                run_key=self._run_key,
                label=self._label,
                batch_size=self._batch_size,
                phase=self._phase,
                message=self._message,
                n=self._n,
                rho=self._rho,
                epsilon=self._epsilon,
                fraction=self._fraction,
                elapsed_s=self._elapsed_s,
                latency_t_s=lat_t,
                latency_ms=lat_ms,
                power=power,
                phase_marks=tuple(self._marks),
            )


def throughput_series(
    t_s: np.ndarray, latency_ms: np.ndarray, batch_size: int, bins: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """Throughput over time (items/s) in bins: batch × calls ÷ busy time of the calls in each bin.

    Robust to sub-sampled latencies (the supervisor may send a subset of them).
    """
    if len(t_s) < 2:
        return np.empty(0), np.empty(0)
    t0, t1 = float(t_s[0]), float(t_s[-1])
    span = max(t1 - t0, 1e-6)
    width = max(span / bins, 0.1)
    edges = np.arange(t0, t1 + width, width)
    if len(edges) < 2:
        edges = np.array([t0, t0 + width])
    idx = np.clip(np.searchsorted(edges, t_s, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)
    busy_s = np.bincount(idx, weights=latency_ms / 1e3, minlength=len(edges) - 1)
    ok = (counts > 0) & (busy_s > 0)
    centres = (edges[:-1] + edges[1:]) / 2
    return centres[ok], batch_size * counts[ok] / busy_s[ok]


def peak_decimate(t_s: np.ndarray, values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2 × bins points keeping each bin's minimum and maximum (spikes stay visible).

    A chart a few hundred pixels wide cannot show more; drawing every sample costs time that
    grows with the run's length.
    """
    n = len(t_s)
    if n <= 2 * bins:
        return t_s, values
    per = n // bins
    usable = per * bins
    v = values[:usable].reshape(bins, per)
    t = t_s[:usable].reshape(bins, per)
    lo_i = v.argmin(axis=1)
    hi_i = v.argmax(axis=1)
    rows = np.arange(bins)
    first = np.minimum(lo_i, hi_i)  # keep each pair in time order
    second = np.maximum(lo_i, hi_i)
    t_out = np.empty(2 * bins + (n - usable))
    v_out = np.empty_like(t_out)
    t_out[0 : 2 * bins : 2], v_out[0 : 2 * bins : 2] = t[rows, first], v[rows, first]
    t_out[1 : 2 * bins : 2], v_out[1 : 2 * bins : 2] = t[rows, second], v[rows, second]
    t_out[2 * bins :], v_out[2 * bins :] = t_s[usable:], values[usable:]
    return t_out, v_out
