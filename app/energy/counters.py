"""Every counter and power reading goes through here: wraps, resets, garbage and gaps.

ENERGY.md 'Counters': a cumulative counter wraps at ``max_range`` (several wraps between two
reads are counted from the recent power), a delta above ``max_power × dt × 1.5`` is garbage and
rejected, and a counter that jumps backwards to a new base because the driver reloaded is a
reset, not a wrap. A reset is confirmed by the next reading (a single odd value is garbage);
the energy over the reset gap is filled from the recent power and the series is flagged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FLAG_WRAP_CORRECTED = "wrap_corrected"
FLAG_COUNTER_RESET = "counter_reset"
FLAG_GARBAGE_REJECTED = "garbage_rejected"

UNIT_TO_J = {"uJ": 1e-6, "mJ": 1e-3, "J": 1.0}
UNIT_TO_W = {"uW": 1e-6, "mW": 1e-3, "W": 1.0}

PLAUSIBILITY_FACTOR = 1.5
_EMA_ALPHA = 0.2
_PENDING_MAX = 2


def min_poll_interval_s(max_range: float | None, unit: str, max_power_w: float | None) -> float:
    """The longest safe interval between two reads of a counter (ENERGY.md): ≤ 10 s and ≤
    max_range / (2 × max power), so that one wrap at most can happen between two reads."""
    bound_s = 10.0
    if max_range and max_power_w and max_power_w > 0:
        bound_s = min(bound_s, max_range * UNIT_TO_J.get(unit, 1.0) / (2.0 * max_power_w))
    return bound_s


@dataclass
class CounterStats:
    wraps: int = 0
    resets: int = 0
    rejected: int = 0
    flags: set[str] = field(default_factory=set)


class EnergyCounter:
    """Turns raw readings of one cumulative counter into a monotonic energy in joules."""

    def __init__(
        self,
        unit: str,
        max_range: float | None,
        max_power_w: float | None,
        update_period_s: float = 0.0,
    ) -> None:
        self.scale_j = UNIT_TO_J[unit]
        self.max_range = max_range if max_range and max_range > 0 else None
        self.max_power_w = max_power_w if max_power_w and max_power_w > 0 else None
        self.update_period_s = update_period_s
        self.stats = CounterStats()
        self.energy_j = 0.0
        self._last_raw: float | None = None
        self._last_t_ns = 0
        self._power_w: float | None = None  # EMA of accepted powers
        self._pending: list[tuple[int, float]] = []

    @property
    def recent_power_w(self) -> float | None:
        return self._power_w

    def _bound_j(self, dt_s: float) -> float:
        if self.max_power_w is None:
            return math.inf
        # the counter may publish up to one update period of energy late: allow it
        span_s = dt_s + 2.0 * self.update_period_s
        return self.max_power_w * span_s * PLAUSIBILITY_FACTOR

    def _delta_j(self, raw_from: float, raw_to: float, dt_s: float) -> tuple[float, int] | None:
        """Energy between two raw values and the number of wraps, or None when implausible."""
        bound = self._bound_j(dt_s)
        d = raw_to - raw_from
        if d >= 0:
            d_base, wraps = d, 0
        elif self.max_range is None:
            return None
        else:
            d_base, wraps = d + self.max_range, 1
        k = 0
        rng = self.max_range or 0.0
        if rng and self._power_w is not None and bound >= rng * self.scale_j:
            # a long gap could hide whole extra wraps: count them from the recent power
            expected = self._power_w * dt_s / self.scale_j
            k = max(0, round((expected - d_base) / rng))
        e = (d_base + k * rng) * self.scale_j
        while k > 0 and e > bound:
            k -= 1
            e = (d_base + k * rng) * self.scale_j
        if e > bound:
            return None
        return e, wraps + k

    def feed(self, t_ns: int, raw: float) -> float | None:
        """Take one raw reading; returns the cumulative energy (J), or None if rejected."""
        if not math.isfinite(raw) or raw < 0 or (self.max_range and raw > self.max_range):
            self._reject(t_ns, raw, keep=False)
            return None
        if self._last_raw is None:
            self._accept(t_ns, raw, 0.0, 0)
            return self.energy_j
        dt_s = (t_ns - self._last_t_ns) / 1e9
        if dt_s <= 0:
            return None
        got = self._delta_j(self._last_raw, raw, dt_s)
        if got is not None:
            self._pending.clear()
            self._accept(t_ns, raw, *got)
            return self.energy_j
        # implausible against the last good value: garbage, or a reset confirmed by a pending one
        for p_t, p_raw in reversed(self._pending):
            p_dt = (t_ns - p_t) / 1e9
            if p_dt <= 0:
                continue
            from_pending = self._delta_j(p_raw, raw, p_dt)
            if from_pending is not None and from_pending[1] == 0:
                gap_s = (p_t - self._last_t_ns) / 1e9
                fill_j = (self._power_w or 0.0) * gap_s
                self.stats.resets += 1
                self.stats.flags.add(FLAG_COUNTER_RESET)
                log.info("counter reset detected (%.3g -> %.3g)", self._last_raw, p_raw)
                self._pending.clear()
                self.energy_j += fill_j
                self._last_raw, self._last_t_ns = p_raw, p_t
                self._accept(t_ns, raw, from_pending[0], 0)
                return self.energy_j
        self._reject(t_ns, raw, keep=True)
        return None

    def _accept(self, t_ns: int, raw: float, energy_j: float, wraps: int) -> None:
        if self._last_raw is not None:
            dt_s = (t_ns - self._last_t_ns) / 1e9
            if dt_s > 0:
                p = energy_j / dt_s
                self._power_w = (
                    p
                    if self._power_w is None
                    else (_EMA_ALPHA * p + (1 - _EMA_ALPHA) * self._power_w)
                )
        if wraps:
            self.stats.wraps += wraps
            self.stats.flags.add(FLAG_WRAP_CORRECTED)
        self.energy_j += energy_j
        self._last_raw = raw
        self._last_t_ns = t_ns

    def _reject(self, t_ns: int, raw: float, *, keep: bool) -> None:
        self.stats.rejected += 1
        self.stats.flags.add(FLAG_GARBAGE_REJECTED)
        if keep:
            self._pending.append((t_ns, raw))
            del self._pending[:-_PENDING_MAX]


class PowerGauge:
    """Validates instantaneous / averaged power readings (W): drops NaN, negative, absurd."""

    def __init__(self, unit: str, max_power_w: float | None) -> None:
        self.scale_w = UNIT_TO_W[unit]
        self.max_power_w = max_power_w if max_power_w and max_power_w > 0 else None
        self.stats = CounterStats()

    def feed(self, raw: float) -> float | None:
        p = raw * self.scale_w
        if (
            not math.isfinite(p)
            or p < 0
            or (self.max_power_w is not None and p > self.max_power_w * PLAUSIBILITY_FACTOR)
        ):
            self.stats.rejected += 1
            self.stats.flags.add(FLAG_GARBAGE_REJECTED)
            return None
        return p
