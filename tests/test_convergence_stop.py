"""When a measurement stops: a calm stretch after a different one does not pass for
convergence, a rho that has stopped shrinking ends the run early and says so, slow calls stop
on few samples, and the stop reason reaches the run's phases, flags and notes.

The latency streams are synthetic (seeded), fed to the monitor exactly as the measurement loop
does (check when due, stop when told); the last test runs the real measure() on a spin loop.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest
from wattbench.domain.result import FLAG_NOT_CONVERGED, FLAG_RHO_PLATEAU
from wattbench.domain.spec import RunSpec
from wattbench.engine import convergence
from wattbench.engine import measure as m
from wattbench.engine.convergence import (
    STOP_CONVERGED,
    STOP_PLATEAU,
    ConvergenceMonitor,
    ConvergenceState,
    warmup_is_steady,
)
from wattbench.engine.stats import mean_half_width

from tests.test_engine_measure import SpinModel
from tests.test_stats import ar1_stream, run_until_stop

MS = 1_000_000.0


def _ou(rng: np.random.Generator, n: int, tau: float, amp: float) -> np.ndarray:
    """A slowly wandering level (Ornstein-Uhlenbeck, correlation time tau samples)."""
    from scipy.signal import lfilter

    a = math.exp(-1 / tau)
    e = rng.standard_normal(n) * math.sqrt(1 - a * a)
    e[0] = rng.standard_normal()
    return 1 + amp * lfilter([1.0], [1.0, -a], e)


def test_a_calm_stretch_after_a_slower_one_does_not_pass_for_convergence() -> None:
    """2 s at 1.04 ms, then calm at 1.00 ms (1 % jitter each), 3 s minimum: at 3 s the batch
    means' spread gives rho ≈ 0.9 % ≤ 1 %, yet the halves differ by 2.7 %: the run goes on until
    the later stretch fills both halves."""
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [1.04 * MS * rng.lognormal(0, 0.01, 2000), MS * rng.lognormal(0, 0.01, 20_000)]
    )
    mon = ConvergenceMonitor(0.01, min_measure_ns=3_000_000_000)
    n, checks = run_until_stop(x, mon)
    assert n is not None
    elapsed = np.cumsum(x)
    # the first check past 3 s with rho ≤ 1 % twice in a row: the old rule stopped there
    first = next((k, s) for k, s in checks if elapsed[k - 1] >= 3e9 and s.consecutive_ok >= 2)
    assert not first[1].stop and "half" in first[1].reason, first
    assert n > first[0]
    half = n // 2
    assert abs(x[half:n].mean() / x[:half].mean() - 1) <= 0.02
    final = checks[-1][1]
    assert final.converged and final.stop_reason == STOP_CONVERGED and final.rho <= 0.01


def test_the_halves_rule_barely_delays_a_steady_stream() -> None:
    """On stationary streams the halves of a converged run agree by construction most of the
    time: the stop comes within one or two checks of where rho alone would stop."""
    rng = np.random.default_rng(8)
    delays = []
    for _ in range(100):
        x, _ = ar1_stream(rng, 0.3, 20_000)
        n, checks = run_until_stop(x, ConvergenceMonitor(0.01, min_measure_ns=0))
        assert n is not None
        rho_only = next(k for k, s in checks if s.consecutive_ok >= 2)
        delays.append(n / rho_only)
    assert float(np.median(delays)) == 1.0
    assert max(delays) < 1.5


def test_a_rho_that_stopped_shrinking_stops_the_run_and_says_so() -> None:
    """A level that wanders by ±5 % over seconds under 20 % jitter: rho stays near 2 % however
    long the run; the monitor stops well before 60 s, not converged, with its reason."""
    rng = np.random.default_rng(12)
    n_max = 60_000
    x = MS * _ou(rng, n_max, 5_000, 0.05) * rng.lognormal(0, 0.2, n_max)
    n, checks = run_until_stop(x, ConvergenceMonitor(0.005))
    assert n is not None
    final = checks[-1][1]
    assert final.stop and final.plateau and not final.converged
    assert final.stop_reason == STOP_PLATEAU
    assert "rho stopped shrinking" in final.reason and final.rho > 0.005
    t = float(np.cumsum(x)[n - 1]) / 1e9
    assert 8.0 <= t < 40.0, t
    # what it reached by then is about what the whole minute gives
    _, _, rho_60 = mean_half_width(x)
    assert final.rho < 3 * rho_60


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_a_steady_stream_out_of_reach_is_never_called_a_plateau(phi: float) -> None:
    """ε far below what a minute of data gives: rho keeps shrinking as 1/√t, so the run goes
    on to the end of the data (T_max) instead of stopping on a plateau."""
    rng = np.random.default_rng(40 + int(phi * 10))
    for _ in range(20):
        x, _ = ar1_stream(rng, phi, 60_000)
        n, checks = run_until_stop(x, ConvergenceMonitor(0.0005))
        assert n is None, checks[-1]
        assert not any(s.plateau for _, s in checks)


def test_slow_calls_stop_on_ten_samples() -> None:
    """120 ms calls with 1 % jitter at ε = 3 %: ten calls (1.2 s) settle it; with fewer than
    20 samples the interval is a t-interval on the effective sample size."""
    rng = np.random.default_rng(3)
    x = 120 * MS * rng.lognormal(0, 0.01, 100)
    n, checks = run_until_stop(x, ConvergenceMonitor(0.03))
    assert n is not None and 10 <= n <= 12
    state: ConvergenceState = checks[-1][1]
    assert state.converged and math.isfinite(state.rho) and state.rho <= 0.03
    before = [s for k, s in checks if k < 10]
    assert before == []  # nothing is checked before the minimum of 10


class WanderingModel(SpinModel):
    """A spin loop whose duration wanders: 2 ms × a slow random walk × jitter."""

    def __init__(self, seed: int) -> None:
        super().__init__(2_000_000)
        self.rng = np.random.default_rng(seed)
        self.level = 1.0

    def run_once(self) -> None:
        self.level = min(1.3, max(0.7, self.level + 0.01 * self.rng.standard_normal()))
        self.call_ns = int(2_000_000 * self.level * self.rng.lognormal(0, 0.05))
        super().run_once()


def test_measure_records_why_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real timed phases: a steady spin converges (stop reason "converged"); a wandering
    one stops on the plateau rule (here from 2 s, against rho at half the time) with the flag
    and a note."""
    spec: dict[str, Any] = dict(model="builtin:mlp-tiny", preset="quick", memory_pass=False)
    steady = m.measure(SpinModel(500_000), RunSpec(**spec, epsilon=0.2), lambda e: None)
    assert steady.converged and steady.phases.stop_reason == STOP_CONVERGED
    assert FLAG_RHO_PLATEAU not in steady.flags

    monkeypatch.setattr(convergence, "PLATEAU_AFTER_MIN_NS", 1_500_000_000)
    monkeypatch.setattr(convergence, "PLATEAU_SPAN", 2.0)
    t0 = time.perf_counter()
    out = m.measure(WanderingModel(1), RunSpec(**spec, epsilon=0.001), lambda e: None)
    assert time.perf_counter() - t0 < 20
    assert not out.converged and out.phases.stop_reason == STOP_PLATEAU, out.notes
    assert FLAG_NOT_CONVERGED in out.flags and FLAG_RHO_PLATEAU in out.flags
    assert "rho stopped shrinking" in out.notes and "replicates" in out.notes
    assert out.phases.measure_s < 9.0  # before the quick preset's T_max of 10 s


def test_warmup_on_a_noisy_host_ends_when_its_trend_is_lost_in_the_noise() -> None:
    """Windows of a steady but noisy host (10 % jitter) whose medians differ by 3 % are
    steady; a window that is still getting faster with little jitter is not."""
    rng = np.random.default_rng(2)
    prev = MS * rng.lognormal(0, 0.1, 10)
    cur = MS * rng.lognormal(0, 0.1, 10)
    cur *= 1.03 * np.median(prev) / np.median(cur)
    assert warmup_is_steady(prev, cur)
    settling = MS * np.array([1.30, 1.20, 1.12, 1.08, 1.06])
    settled = MS * np.array([1.00, 1.01, 0.99, 1.00, 1.01])
    assert not warmup_is_steady(settling, settled)
    assert warmup_is_steady(settled, settled * 1.01)
