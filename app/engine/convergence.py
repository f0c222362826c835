"""When a measurement stops, and what the post-checks flag (METHOD.md "When to stop",
"Post-checks"): the convergence monitor, the warm-up's steadiness test, the quality flags."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from wattbench.domain import units
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
    FLAG_RHO_PLATEAU,
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
    check_percentiles,
    effective_n,
    lag1_autocorr,
    mean_half_width,
    percentile_estimates,
)

log = logging.getLogger(__name__)


# Why a measurement stopped (PhaseTimings.stop_reason).
STOP_CONVERGED = "converged"  # the rule below was met
STOP_PLATEAU = "rho_plateau"  # rho stopped shrinking above epsilon: more time would not help
STOP_T_MAX = "t_max"  # T_max reached first


@dataclass(frozen=True)
class ConvergenceState:
    stop: bool
    rho: float
    n: int
    tails_ok: bool
    consecutive_ok: int  # consecutive checks (at growing n) with rho ≤ epsilon
    reason: str
    mean_ns: float = math.nan  # batch-means mean at this check (for live display)
    plateau: bool = False  # stop because rho stopped shrinking (not converged)

    @property
    def converged(self) -> bool:
        return self.stop and not self.plateau

    @property
    def stop_reason(self) -> str | None:
        if not self.stop:
            return None
        return STOP_PLATEAU if self.plateau else STOP_CONVERGED


MIN_N = 10  # the fewest samples a run may stop on (METHOD.md: n ≥ 10)
HALVES_TOLERANCE = 2.0  # the two halves of the measurement agree within this many epsilons
PLATEAU_SPAN = 8.0  # rho now against rho at an eighth of the measuring time so far:
PLATEAU_RATIO = 0.8  # shrunk by less than 20 % where averaging out divides it by √8: a plateau
PLATEAU_CHECKS = 2  # on this many checks in a row
PLATEAU_AFTER_MIN_NS = 8_000_000_000  # never before 8 s (8 × the minimum measuring time)


class ConvergenceMonitor:
    """Decides when a measurement has converged (METHOD.md "When to stop").

    The caller asks due(n) between iterations (O(1)) and, when due, passes a view of the first
    n latencies to check(). Stop when rho ≤ epsilon on two consecutive checks, the means of
    the two halves of the measurement agree within 2·epsilon (a calm stretch after a slower or
    faster one cannot pass for convergence: the spread of batch means alone lets a shift of
    up to 4·epsilon through), every required tail's interval half-width ≤ tail_tolerance of
    its value, n ≥ min_n and the measured time ≥ min_measure_ns.

    Also stop, not converged, when rho has stopped shrinking above epsilon: from
    ``plateau_after_ns`` on (8 × min_measure_ns, at least 8 s), rho above 0.8 × its value at an
    eighth of the measuring time on two checks in a row, where noise that averages out would
    have divided it by √8 ≈ 2.8. T_max is the caller's business.
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
        plateau_after_ns: int | None = None,
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
        self.plateau_after_ns = (
            max(PLATEAU_AFTER_MIN_NS, int(PLATEAU_SPAN * self.min_measure_ns))
            if plateau_after_ns is None
            else int(plateau_after_ns)
        )
        self.checks = 0
        self.last: ConvergenceState | None = None
        self._last_n = 0
        self._consecutive = 0
        self._flat = 0
        self._history: list[tuple[int, float]] = []  # (elapsed ns, rho) of each new check
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

    def _halves(self, x: np.ndarray, mean: float) -> str:
        """Why the two halves of the measurement disagree ("" when they agree)."""
        if x.size < 2 or not mean > 0:
            return ""
        half = x.size // 2
        first = float(x[:half].mean(dtype=np.float64))
        second = float(x[half:].mean(dtype=np.float64))
        off = (second - first) / mean
        limit = HALVES_TOLERANCE * self.epsilon
        if abs(off) <= limit:
            return ""
        return f"the second half is {off:+.2%} off the first (> ±{limit:.2%})"

    def _plateau(self, rho: float, elapsed_ns: int, new: bool) -> str:
        """Why rho counts as stopped shrinking ("" while it still shrinks or is too early)."""
        if not new:
            return ""
        past = [r for t, r in self._history if t <= elapsed_ns / PLATEAU_SPAN]
        self._history.append((elapsed_ns, rho))
        early = elapsed_ns < self.plateau_after_ns or not past or not math.isfinite(past[-1])
        if early or rho <= self.epsilon or not rho > PLATEAU_RATIO * past[-1]:
            self._flat = 0
            return ""
        self._flat += 1
        if self._flat < PLATEAU_CHECKS:
            return ""
        return (
            f"rho stopped shrinking: {units.rho(rho)} after {elapsed_ns / 1e9:.1f} s, "
            f"{units.percent(past[-1])} after {elapsed_ns / PLATEAU_SPAN / 1e9:.1f} s, where "
            f"noise that averages out shrinks it {math.sqrt(PLATEAU_SPAN):.1f}×; target "
            f"{units.percent(self.epsilon)}"
        )

    def check(self, latencies_ns: np.ndarray, elapsed_ns: int) -> ConvergenceState:
        x = np.asarray(latencies_ns)
        n = int(x.size)
        mean, _, rho = mean_half_width(x, self.k)
        new = n > self._last_n  # a repeated check on the same data is not a second check
        if new:
            self._consecutive = self._consecutive + 1 if rho <= self.epsilon else 0
        consecutive = self._consecutive
        tails_ok, tail_reason = self._tails(x) if self.required_tails else (True, "")
        reasons = []
        if n < self.min_n:
            reasons.append(f"n {n} < {self.min_n}")
        if elapsed_ns < self.min_measure_ns:
            reasons.append(f"measured {elapsed_ns / 1e9:.2f} s < {self.min_measure_ns / 1e9:g} s")
        if not rho <= self.epsilon:
            reasons.append(f"{units.rho(rho)} > target {units.percent(self.epsilon)}")
        elif consecutive < 2:
            reasons.append("rho ≤ epsilon on 1 check, needs 2 in a row")
        else:
            off = self._halves(x, mean)
            if off:
                reasons.append(off)
        if not tails_ok:
            reasons.append(tail_reason)
        plateau = self._plateau(rho, elapsed_ns, new) if reasons else ""
        stop = not reasons or bool(plateau)
        self.checks += 1
        self._last_n = max(self._last_n, n)
        self._next_due = max(self.min_n, n + max(1, math.ceil(n * self.growth)))
        state = ConvergenceState(
            stop=stop,
            rho=rho,
            n=n,
            tails_ok=tails_ok,
            consecutive_ok=consecutive,
            reason=plateau or ("converged" if stop else "; ".join(reasons)),
            mean_ns=mean,
            plateau=bool(plateau),
        )
        self.last = state
        return state


def warmup_is_steady(
    previous_window_ns: np.ndarray, current_window_ns: np.ndarray, tolerance: float = 0.02
) -> bool:
    """True when the medians of two consecutive warm-up windows differ by ≤ tolerance, or by
    less than the host's own noise can tell apart: 1.96 standard errors of a difference of two
    medians, the spread taken from the current (later, more settled) window. On a quiet host
    that is the tolerance; on a noisy one warming up stops once a trend is lost in the noise
    instead of running to the cap (the measurement's own rules see what is left)."""
    prev = np.asarray(previous_window_ns, dtype=np.float64)
    cur = np.asarray(current_window_ns, dtype=np.float64)
    if prev.size == 0 or cur.size == 0:
        return False
    m_prev = float(np.median(prev))
    m_cur = float(np.median(cur))
    if m_prev <= 0:
        return m_cur == m_prev
    # standard error of a median ≈ 1.2533 σ/√n, σ ≈ 1.4826 MAD (normal data)
    sigma = 1.4826 * float(np.median(np.abs(cur - m_cur)))
    noise = 1.96 * math.sqrt(2) * 1.2533 * sigma / math.sqrt(cur.size)
    return abs(m_cur - m_prev) <= max(tolerance * m_prev, noise)


def quality_flags(
    summary: LatencySummary,
    *,
    converged: bool,
    warmup_steady: bool,
    block_size: int,
    gc_disabled: bool,
    required_tails: Sequence[float] = (),
    plateau: bool = False,
) -> tuple[str, ...]:
    """The run's quality flags from its latency summary and phase facts.

    - not_converged: the convergence rule did not stop the run.
    - rho_plateau: it stopped early because rho had stopped shrinking above epsilon.
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
    if plateau:
        flags.append(FLAG_RHO_PLATEAU)
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
