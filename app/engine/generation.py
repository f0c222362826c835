"""Generation measured the way serving measures it, and its energy per token.

One timed call is ``reset`` (untimed: drops the KV cache) → prefill → (new tokens − 1) decode
steps; the call's ``sequences`` sequences run concurrently, so a sequence's times are the
call's times. The decode steps are timed back to back, each step from the end of the one
before (the first from the end of the prefill), so for every call

    TTFT + Σ ITL = end-to-end latency,   TPOT = Σ ITL / (n − 1),
    hence TTFT + (n − 1)·TPOT = end-to-end latency

holds by construction for each call and for the means over calls (the identity's only error
is floating point).

- TTFT, TPOT and end-to-end latency per sequence: means with the run's 95 % interval (20
  batch means, or a t-interval on n_eff below 20 calls: ``stats.mean_half_width``).
- ITL (inter-token latency): p50/p90/p99 of every recorded decode step with order-statistic
  intervals on n_eff (``stats.percentile_estimates``).
- decode tokens/s = sequences / TPOT; prefill tokens/s = prompt tokens × sequences / TTFT;
  end-to-end tokens/s = new tokens × sequences / latency.
- Convergence: the stopping rule (``convergence.ConvergenceMonitor``) runs on the end-to-end
  latency and, with its own monitor each, on TTFT and TPOT per call: the run stops converged
  when all three are; a plateau of any of them stops it, not converged.

Energy per token: engine/token_energy.py.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from wattbench.domain.result import GenerationSummary, Interval, PercentileEstimate
from wattbench.engine import convergence, stats

ITL_PERCENTILES = (0.5, 0.9, 0.99)
STEP_STORE_MAX = 1 << 18  # decode-step durations kept per run (2 MiB of int64)


# -- per-step decode times, bounded --------------------------------------------------------


class StepStore:
    """The decode-step durations of the timed calls, in at most ``max_values`` int64.

    ``marks`` is where the timing loop puts the clock read after each decode step of a call;
    ``keep(call, prefill_end_ns)`` turns them into step durations and stores them. When the
    store is full every other stored call is dropped and from then on only every 2nd (then
    4th, ...) call is kept, so what stays covers the whole measurement evenly.
    """

    def __init__(self, steps: int, max_values: int = STEP_STORE_MAX) -> None:
        self.steps = max(1, steps)
        self.rows = max(2, max_values // self.steps)
        self.data = np.empty((self.rows, self.steps), dtype=np.int64)
        self.data.fill(0)  # touch the pages now, not while measuring
        self.calls = np.zeros(self.rows, dtype=np.int64)
        self.marks = [0] * self.steps
        self.n = 0
        self.stride = 1

    def keep(self, call: int, prefill_end_ns: int) -> None:
        if call % self.stride:
            return
        if self.n == self.rows:
            kept = self.data[0 : self.n : 2].copy()
            self.n = kept.shape[0]
            self.data[: self.n] = kept
            self.calls[: self.n] = self.calls[0 : self.rows : 2]
            self.stride *= 2
            if call % self.stride:
                return
        row = self.data[self.n]
        row[:] = self.marks
        row[1:] -= row[:-1].copy()
        row[0] -= prefill_end_ns
        self.calls[self.n] = call
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """``decode_step_ns`` (kept calls × steps) and ``decode_step_calls`` (their indices)."""
        return {
            "decode_step_ns": self.data[: self.n].copy(),
            "decode_step_calls": self.calls[: self.n].copy(),
        }


# -- convergence on the per-sequence figures -----------------------------------------------


class SequenceConvergence:
    """The stopping rule on the end-to-end latency, TTFT and TPOT of every call at once."""

    def __init__(self, e2e: convergence.ConvergenceMonitor, steps: int) -> None:
        self.e2e = e2e
        self.steps = max(1, steps)
        self.ttft = self._like(e2e)
        self.tpot = self._like(e2e)

    @staticmethod
    def _like(m: convergence.ConvergenceMonitor) -> convergence.ConvergenceMonitor:
        return convergence.ConvergenceMonitor(
            m.epsilon, (), min_n=m.min_n, min_measure_ns=m.min_measure_ns, growth=m.growth, k=m.k
        )

    def check(
        self, lats: np.ndarray, ttfts: np.ndarray, elapsed_ns: int
    ) -> convergence.ConvergenceState:
        e2e = self.e2e.check(lats, elapsed_ns)
        ttft = self.ttft.check(ttfts, elapsed_ns)
        tpot = self.tpot.check((lats - ttfts) / self.steps, elapsed_ns)
        states = (("end-to-end latency", e2e), ("TTFT", ttft), ("TPOT", tpot))
        plateau = [(name, s) for name, s in states if s.stop and s.plateau]
        if plateau:
            name, s = plateau[0]
            return dataclasses.replace(e2e, stop=True, plateau=True, reason=f"{name}: {s.reason}")
        if all(s.stop for _, s in states):
            return e2e
        name, waiting = next((name, s) for name, s in states if not s.stop)
        reason = e2e.reason if waiting is e2e else f"{name}: {waiting.reason}"
        return dataclasses.replace(e2e, stop=False, reason=reason)


# -- the summary -----------------------------------------------------------------------------


def mean_iv(values: np.ndarray) -> Interval:
    """Mean with the run's 95 % interval (None bounds when it cannot be computed)."""
    m, h, _ = stats.mean_half_width(np.asarray(values, dtype=np.float64))
    if not math.isfinite(h):
        return Interval(m, None, None)
    return Interval(m, m - h, m + h)


def inverse(iv: Interval, scale: float) -> Interval:
    """scale / iv with its bounds swapped (a rate from a time)."""
    return Interval(
        scale / iv.value,
        None if iv.hi is None or iv.hi <= 0 else scale / iv.hi,
        None if iv.lo is None or iv.lo <= 0 else scale / iv.lo,
    )


def itl_percentiles(
    step_ns: np.ndarray, ps: tuple[float, ...] = ITL_PERCENTILES
) -> tuple[PercentileEstimate, ...]:
    """p50/p90/p99 (or ``ps``) of decode-step durations or other per-token times (in time
    order), intervals on their n_eff."""
    x = np.asarray(step_ns, dtype=np.float64).ravel()
    if x.size == 0:
        return ()
    n_eff = stats.effective_n(int(x.size), stats.lag1_autocorr(x))
    return stats.percentile_estimates(x, ps, n_eff)


def generation_summary(
    lats: np.ndarray,
    ttfts: np.ndarray,
    step_ns: np.ndarray,
    *,
    prompt_tokens: int,
    new_tokens: int,
    sequences: int,
    epsilon: float,
) -> GenerationSummary:
    """The generation figures of one run from its per-call latencies, TTFTs and decode steps."""
    lat = np.asarray(lats, dtype=np.float64)
    ttft = np.asarray(ttfts, dtype=np.float64)
    ttft_iv = mean_iv(ttft)
    tpot_iv = mean_iv((lat - ttft) / (new_tokens - 1))
    e2e_iv = mean_iv(lat)
    unconverged = tuple(
        name
        for name, iv in (("e2e_latency", e2e_iv), ("ttft", ttft_iv), ("tpot", tpot_iv))
        if (rel := iv.rel_half_width) is None or rel > epsilon
    )
    steps = np.asarray(step_ns)
    return GenerationSummary(
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        ttft_ns=ttft_iv,
        tpot_ns=tpot_iv,
        decode_tokens_per_s=inverse(tpot_iv, 1e9 * sequences),
        e2e_tokens_per_s=inverse(e2e_iv, 1e9 * new_tokens * sequences),
        sequences=sequences,
        calls=int(lat.size),
        e2e_latency_ns=e2e_iv,
        prefill_tokens_per_s=inverse(ttft_iv, 1e9 * prompt_tokens * sequences),
        itl_ns=itl_percentiles(steps),
        itl_steps=int(steps.size),
        unconverged=unconverged,
    )


def unconverged_note(g: GenerationSummary) -> str:
    """A sentence for the run's notes when a per-sequence figure is wider than epsilon."""
    if not g.unconverged:
        return ""
    return "not within epsilon: " + ", ".join(g.unconverged)
