"""Cutting the window out of sampled series: square waves, stale sensors, short windows,
device and system aggregates (real figures code on synthetic series)."""

from __future__ import annotations

import numpy as np
import pytest
from wattbench.backends.sensors.base import Domain
from wattbench.energy.figures import (
    FLAG_BELOW_RESOLUTION,
    FLAG_ESTIMATE,
    FLAG_INCOMPLETE,
    FLAG_STALE,
    DomainSeries,
    IdleBaseline,
    compute_report,
    window_energy_j,
)

S = 1_000_000_000
LOW_W, HIGH_W, PERIOD_S = 50.0, 150.0, 1.0


def _square_w(t_s: np.ndarray) -> np.ndarray:
    return np.where((t_s % PERIOD_S) < PERIOD_S / 2, HIGH_W, LOW_W)


def _square_cum_j(t_s: np.ndarray | float) -> np.ndarray:
    """Exact energy of the square wave from 0 to t (analytic)."""
    t = np.asarray(t_s, dtype=np.float64)
    whole, frac = np.divmod(t, PERIOD_S)
    half = PERIOD_S / 2
    part = np.where(frac < half, HIGH_W * frac, HIGH_W * half + LOW_W * (frac - half))
    return np.asarray(whole * (HIGH_W + LOW_W) * half + part)


def _square_energy_j(a_s: float, b_s: float) -> float:
    return float(_square_cum_j(b_s) - _square_cum_j(a_s))


def _domain(
    kind: str,
    *,
    did: str = "d",
    device: str = "cpu",
    scope: str = "cpu-package",
    period_s: float = 0.001,
    source: str = "rapl.package-0",
    modelled: bool = False,
) -> Domain:
    return Domain(
        id=did,
        name=did,
        device=device,
        source=source,
        scope=scope,
        kind=kind,
        unit="uJ" if kind == "energy" else "uW",
        update_period_s=period_s,
        modelled=modelled,
    )


def _sample_times_s(duration_s: float, hz: float, rng: np.random.Generator) -> np.ndarray:
    n = int(duration_s * hz)
    return np.sort(np.arange(n) / hz + rng.uniform(-0.02, 0.02, n) / hz * 10 + 0.03)


@pytest.mark.parametrize("kind", ["energy", "power"])
def test_square_wave_integration_and_window_alignment_within_1_percent(kind: str) -> None:
    rng = np.random.default_rng(7)
    t_s = _sample_times_s(60.0, 10.0, rng)
    if kind == "energy":  # a RAPL-like counter read at 10 Hz: exact cumulative energy
        values = _square_cum_j(t_s)
        dom = _domain(kind)
    else:  # an instantaneous power sensor (hwmon-like, 100 ms update) read at 10 Hz
        values = _square_w(t_s)
        dom = _domain(kind, period_s=0.1, source="hwmon.x.power1_input∫")
    s = DomainSeries(dom, (t_s * 1e9).astype(np.int64), values)
    worst = 0.0
    for _ in range(20):  # windows at random offsets, not aligned with samples or edges
        a = float(rng.uniform(2.0, 10.0))
        b = a + float(rng.uniform(10.0, 40.0))
        got, flags = window_energy_j(s, int(a * 1e9), int(b * 1e9), 0.1)
        assert flags == ()
        worst = max(worst, abs(got - _square_energy_j(a, b)) / _square_energy_j(a, b))
    print(f"square wave ({kind}): worst window error {worst:.2e}")
    assert worst <= 0.01, worst


def test_stale_sensor_is_flagged() -> None:
    t_s = np.arange(0, 10, 0.1)
    cum = 100.0 * t_s
    cum[30:60] = cum[30]  # the counter froze for 3 s (update period 0.1 s → limit 1 s)
    dom = _domain("energy", period_s=0.1, source="nvml.total_energy", device="cuda:0")
    s = DomainSeries(dom, (t_s * 1e9).astype(np.int64), cum)
    _, flags = window_energy_j(s, 1 * S, 9 * S, 0.1)
    assert FLAG_STALE in flags
    fresh = DomainSeries(dom, (t_s * 1e9).astype(np.int64), 100.0 * t_s)
    assert FLAG_STALE not in window_energy_j(fresh, 1 * S, 9 * S, 0.1)[1]
    rep = compute_report([s], 1 * S, 9 * S, 10, None, run_device="cuda:0", sample_period_s=0.1)
    assert FLAG_STALE in rep.flags
    assert all(FLAG_STALE in f.flags for f in rep.figures)


def test_window_below_resolution_is_flagged_and_never_zero() -> None:
    # NVML counter publishes every 100 ms; we sample at 20 Hz; the window is 40 ms and falls
    # between two publications, so a plain difference would be 0 J
    t_s = np.arange(0, 3, 0.05)
    published = np.floor(t_s / 0.1) * 0.1
    cum = 300.0 * published  # 300 W
    dom = _domain("energy", period_s=0.1, source="nvml.total_energy", device="cuda:0")
    s = DomainSeries(dom, (t_s * 1e9).astype(np.int64), cum)
    t0, t1 = int(1.005 * S), int(1.045 * S)
    assert np.interp(t1, s.t_ns, cum) - np.interp(t0, s.t_ns, cum) == 0.0
    energy_j, flags = window_energy_j(s, t0, t1, 0.05)
    assert FLAG_BELOW_RESOLUTION in flags
    assert energy_j == pytest.approx(300.0 * 0.04, rel=0.15)
    rep = compute_report([s], t0, t1, 4, None, run_device="cuda:0", sample_period_s=0.05)
    fig = rep.figure("device")
    assert fig is not None and fig.energy_j > 0 and FLAG_BELOW_RESOLUTION in fig.flags


def _series(
    did: str,
    device: str,
    scope: str,
    power_w: float,
    *,
    used: bool = True,
    source: str = "rapl.x",
    kind: str = "energy",
    modelled: bool = False,
) -> DomainSeries:
    t_s = np.arange(0, 20, 0.1)
    values = power_w * t_s if kind == "energy" else np.full_like(t_s, power_w)
    return DomainSeries(
        _domain(kind, did=did, device=device, scope=scope, source=source, modelled=modelled),
        (t_s * 1e9).astype(np.int64),
        values,
        used=used,
    )


def test_device_and_system_aggregates_with_idle() -> None:
    series = [
        _series("rapl:package-0", "cpu", "cpu-package", 40.0),
        _series("rapl:dram-0", "cpu", "dram", 5.0),
        _series("rapl:psys", "cpu", "platform", 90.0, used=False),
        _series("nvml:0", "cuda:0", "gpu-board", 250.0, source="nvml.total_energy"),
    ]
    idle = IdleBaseline(
        power_w={"nvml:0": 50.0, "rapl:package-0": 10.0, "rapl:dram-0": 2.0},
        duration_s=6.0,
        stable=True,
        window_s=5.0,
    )
    rep = compute_report(
        series, 2 * S, 12 * S, 1000, idle, run_device="cuda:0", sample_period_s=0.1
    )
    dev, sys_ = rep.figure("device"), rep.figure("system")
    assert dev is not None and sys_ is not None
    assert dev.energy_j == pytest.approx(2500.0) and dev.avg_power_w == pytest.approx(250.0)
    assert dev.energy_per_item_j == pytest.approx(2.5)
    assert dev.energy_per_item_above_idle_j == pytest.approx((2500.0 - 500.0) / 1000)
    assert dev.items_per_j == pytest.approx(0.4)
    # system: GPU + CPU package + DRAM, never psys
    assert sys_.energy_j == pytest.approx(2950.0)
    assert sys_.idle_power_w == pytest.approx(62.0)
    assert rep.figure("rapl:psys") is not None  # shown on its own
    assert rep.na_reason is None and FLAG_INCOMPLETE not in sys_.flags


def test_only_an_estimate_says_so() -> None:
    est = _series(
        "estimate:cpu",
        "cpu",
        "cpu-package",
        20.0,
        source="estimate.tdp",
        kind="power",
        modelled=True,
    )
    rep = compute_report(
        [est],
        2 * S,
        12 * S,
        10,
        None,
        run_device="cpu",
        sample_period_s=0.1,
        unreadable=["rapl: permission denied"],
    )
    dev = rep.figure("device")
    assert dev is not None and dev.method == "model" and FLAG_ESTIMATE in dev.flags
    assert dev.is_estimate
    assert rep.na_reason is not None and "permission denied" in rep.na_reason
    assert "estimate" in rep.na_reason


def test_gpu_run_without_gpu_sensor_has_no_device_figure() -> None:
    cpu = _series("rapl:package-0", "cpu", "cpu-package", 40.0)
    rep = compute_report(
        [cpu],
        2 * S,
        12 * S,
        10,
        None,
        run_device="cuda:0",
        sample_period_s=0.1,
        unreadable=["nvml: not supported"],
    )
    assert rep.figure("device") is None and "cuda:0" in rep.domain_na["device"]
    sys_ = rep.figure("system")
    assert sys_ is not None and FLAG_INCOMPLETE in sys_.flags


def test_window_outside_the_samples_is_not_a_figure() -> None:
    cpu = _series("rapl:package-0", "cpu", "cpu-package", 40.0)
    rep = compute_report([cpu], 30 * S, 40 * S, 10, None, run_device="cpu", sample_period_s=0.1)
    assert rep.figures == [] and "cover" in rep.domain_na["rapl:package-0"]
    assert rep.na_reason is not None
