"""When a measurement stops, and what the post-checks flag (METHOD.md "When to stop",
"Post-checks"): the convergence monitor, the warm-up's steadiness test, the quality flags."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import (
    FLAG_AUTOCORRELATED,
    FLAG_BLOCK_TIMING,
    FLAG_DRIFT,
    FLAG_GC_ENABLED,
    FLAG_HIGH_CV,
    FLAG_LOW_N_EFF,
    FLAG_NOT_CONVERGED,
    FLAG_OUTLIERS,
    FLAG_WARMUP_UNSTEADY,
    LatencySummary,
)
from wattbench.engine.stats import (
    BATCHES,
    CV_MAX,
    DRIFT_MIN,
    DRIFT_SIGMAS,
    OUTLIER_FRACTION_MAX,
    R1_MAX,
    TAIL_TOLERANCE,
    batch_means,
    check_percentiles,
    effective_n,
    lag1_autocorr,
    percentile_estimates,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvergenceState:
    stop: bool
    rho: float
    n: int
    tails_ok: bool
    consecutive_ok: int  # consecutive checks (at growing n) with rho ≤ epsilon
    reason: str
    mean_ns: float = math.nan  # batch-means mean at this check (for live display)


MIN_N = 30  # the fewest samples a run may stop on (METHOD.md: n ≥ 30)


class ConvergenceMonitor:
    """Decides when a measurement has converged (METHOD.md "When to stop").

    The caller asks due(n) between iterations (O(1)) and, when due, passes a view of the first
    n latencies to check(). Stop when rho ≤ epsilon on two consecutive checks, every required
    tail's interval half-width ≤ tail_tolerance of its value, n ≥ min_n and the measured time
    ≥ min_measure_ns. T_max is the caller's business.
    """

    def __init__(
        self,
        epsilon: float,
        required_tails: Sequence[float] = (),
        min_n: int = MIN_N,
        min_measure_ns: int = 1_000_000_000,
        growth: float = 0.10,
        k: int = BATCHES,
        tail_tolerance: float = TAIL_TOLERANCE,
    ) -> None:
        if not 0 < epsilon < 1:
            raise BadInputError(f"Epsilon must be between 0 and 1 (got {epsilon}).")
        if growth <= 0:
            raise ValueError(f"growth must be positive (got {growth})")
        if k < 2:
            raise ValueError(f"k must be at least 2 (got {k})")
        check_percentiles(required_tails)
        self.epsilon = float(epsilon)
        self.required_tails = tuple(float(p) for p in required_tails)
        self.min_n = max(1, int(min_n))
        self.min_measure_ns = int(min_measure_ns)
        self.growth = float(growth)
        self.k = int(k)
        self.tail_tolerance = float(tail_tolerance)
        self.checks = 0
        self.last: ConvergenceState | None = None
        self._last_n = 0
        self._consecutive = 0
        self._next_due = self.min_n

    def due(self, n: int) -> bool:
        """True when n ≥ min_n and n has grown by `growth` since the last check."""
        return n >= self._next_due

    def _tails(self, x: np.ndarray) -> tuple[bool, str]:
        n_eff = effective_n(int(x.size), lag1_autocorr(x))
        for pe in percentile_estimates(x, self.required_tails, n_eff):
            if pe.lo_ns is None or pe.hi_ns is None or pe.value_ns <= 0:
                return False, f"{pe.name} has no interval yet"
            rel = (pe.hi_ns - pe.lo_ns) / 2 / pe.value_ns
            if rel > self.tail_tolerance:
                return False, f"{pe.name} ±{rel:.1%} > ±{self.tail_tolerance:.0%}"
        return True, ""

    def check(self, latencies_ns: np.ndarray, elapsed_ns: int) -> ConvergenceState:
        x = np.asarray(latencies_ns)
        n = int(x.size)
        mean, _, rho = batch_means(x, self.k)
        if n > self._last_n:  # a repeated check on the same data is not a second check
            self._consecutive = self._consecutive + 1 if rho <= self.epsilon else 0
        consecutive = self._consecutive
        tails_ok, tail_reason = self._tails(x) if self.required_tails else (True, "")
        reasons = []
        if n < self.min_n:
            reasons.append(f"n {n} < {self.min_n}")
        if elapsed_ns < self.min_measure_ns:
            reasons.append(f"measured {elapsed_ns / 1e9:.2f} s < {self.min_measure_ns / 1e9:g} s")
        if not rho <= self.epsilon:
            shown = f"{rho:.2%}" if math.isfinite(rho) else "unknown"
            reasons.append(f"rho {shown} > target {self.epsilon:.2%}")
        elif consecutive < 2:
            reasons.append("rho ≤ epsilon on 1 check, needs 2 in a row")
        if not tails_ok:
            reasons.append(tail_reason)
        stop = not reasons
        self.checks += 1
        self._last_n = max(self._last_n, n)
        self._next_due = max(self.min_n, n + max(1, math.ceil(n * self.growth)))
        state = ConvergenceState(
            stop=stop,
            rho=rho,
            n=n,
            tails_ok=tails_ok,
            consecutive_ok=consecutive,
            reason="converged" if stop else "; ".join(reasons),
            mean_ns=mean,
        )
        self.last = state
        return state


def warmup_is_steady(
    previous_window_ns: np.ndarray, current_window_ns: np.ndarray, tolerance: float = 0.02
) -> bool:
    """True when the medians of two consecutive warm-up windows differ by ≤ tolerance."""
    prev = np.asarray(previous_window_ns, dtype=np.float64)
    cur = np.asarray(current_window_ns, dtype=np.float64)
    if prev.size == 0 or cur.size == 0:
        return False
    m_prev = float(np.median(prev))
    m_cur = float(np.median(cur))
    if m_prev <= 0:
        return m_cur == m_prev
    return abs(m_cur - m_prev) / m_prev <= tolerance


def quality_flags(
    summary: LatencySummary,
    *,
    converged: bool,
    warmup_steady: bool,
    block_size: int,
    gc_disabled: bool,
    required_tails: Sequence[float] = (),
) -> tuple[str, ...]:
    """The run's quality flags from its latency summary and phase facts.

    - not_converged: the convergence rule did not stop the run.
    - warmup_unsteady: warm-up hit its cap before two windows agreed within 2 %.
    - drift: |drift| > 2 % and > 3·rho (the 2nd-half vs 1st-half difference has a standard
      error of about rho, so this is both material and well beyond noise).
    - high_cv: sd / mean > 0.20.
    - autocorrelated: |r₁| > 0.5 (n_eff < n/3; tails need far more samples).
    - outliers: more than 2 % of samples outside Tukey's fences.
    - block_timing: block size > 1, so samples are block means and tails are understated.
    - gc_enabled: garbage collection was on during the timed region.
    - tail_low_n_eff: a required tail is not a headline number (n_eff below its minimum) or has
      no interval.
    Throttling comes from telemetry and is flagged by the energy side, not here.
    """
    flags: list[str] = []
    if not converged:
        flags.append(FLAG_NOT_CONVERGED)
    if not warmup_steady:
        flags.append(FLAG_WARMUP_UNSTEADY)
    rho = summary.rho if math.isfinite(summary.rho) else 0.0
    if abs(summary.drift) > max(DRIFT_MIN, DRIFT_SIGMAS * rho):
        flags.append(FLAG_DRIFT)
    if summary.cv > CV_MAX:
        flags.append(FLAG_HIGH_CV)
    if abs(summary.r1) > R1_MAX:
        flags.append(FLAG_AUTOCORRELATED)
    if summary.n and (summary.outliers_low + summary.outliers_high) / summary.n > (
        OUTLIER_FRACTION_MAX
    ):
        flags.append(FLAG_OUTLIERS)
    if block_size > 1:
        flags.append(FLAG_BLOCK_TIMING)
    if not gc_disabled:
        flags.append(FLAG_GC_ENABLED)
    for p in required_tails:
        pe = summary.percentile(p)
        if pe is None or not pe.headline or pe.lo_ns is None or pe.hi_ns is None:
            flags.append(FLAG_LOW_N_EFF)
            break
    return tuple(flags)
