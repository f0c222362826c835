"""Cost profiles and $ / gCO2 per million inferences, checked against hand-computed figures."""

from __future__ import annotations

import math
from typing import Any

import pytest
from wattbench.domain.codec import CodecError, from_document, to_document
from wattbench.domain.cost import HOURS_PER_YEAR, CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import EnergyFigure, Interval, RunResult, RunStatus
from wattbench.engine.cost import (
    ENERGY_ESTIMATE,
    ENERGY_MEASURED,
    ENERGY_NONE,
    cost_figures,
    cost_figures_from,
    energy_per_item,
    estimated_energy_per_item,
)

from tests.store_fixtures import make_result

THROUGHPUT = Interval(1000.0, 990.0, 1010.0)  # items/s, ±1 %
ENERGY = Interval(0.036, 0.036 * 0.98, 0.036 * 1.02)  # J per item, ±2 %
HOURS_PER_MILLION = 1e6 / 1000.0 / 3600.0  # 0.2777… h
KWH_PER_MILLION = 0.036 * 1e6 / 3.6e6  # 0.01 kWh


def owned(**kw: float | None) -> CostProfile:
    base: dict[str, Any] = {
        "purchase_price_usd": 3000.0,
        "amortization_years": 3.0,
        "utilization": 0.5,
        "electricity_usd_per_kwh": 0.25,
        "pue": 1.5,
        "carbon_g_per_kwh": 400.0,
    }
    base.update(kw)
    return CostProfile(device="cpu", name="lab", **base)


def figure(
    domain: str,
    device: str,
    energy_j: float,
    items: int = 1000,
    *,
    scope: str = "cpu-package",
    method: str = "counter-difference",
    rel: float | None = 0.02,
    flags: tuple[str, ...] = (),
) -> EnergyFigure:
    return EnergyFigure(
        domain=domain,
        device=device,
        source=f"test.{domain}",
        scope=scope,
        method=method,
        energy_j=energy_j,
        duration_s=1.0,
        avg_power_w=energy_j,
        items=items,
        energy_per_item_j=energy_j / items,
        items_per_j=items / energy_j,
        rel_uncertainty=rel,
        flags=flags,
    )


def run_with(energy: tuple[EnergyFigure, ...], device: str = "cpu", **kw: Any) -> RunResult:
    return make_result(spec_overrides={"device": device}, energy=energy, n_telemetry=0, **kw)


# -- the formulas ----------------------------------------------------------------------------


def test_capital_plus_energy_by_hand() -> None:
    f = cost_figures_from(THROUGHPUT, ENERGY, owned())
    capital = 3000.0 / (3 * HOURS_PER_YEAR * 0.5) * HOURS_PER_MILLION  # $0.0634
    energy = KWH_PER_MILLION * 0.25 * 1.5  # $0.00375
    assert f.basis == "capital + energy" and f.usd_na_reason is None
    assert f.capital_usd_per_million is not None and f.energy_usd_per_million is not None
    assert f.capital_usd_per_million.value == pytest.approx(capital)
    assert f.energy_usd_per_million.value == pytest.approx(energy)
    assert f.usd_per_million is not None
    assert f.usd_per_million.value == pytest.approx(capital + energy)
    assert f.usd_per_million.value == pytest.approx(0.067126, abs=1e-6)
    half_width = math.hypot(capital * 0.01, energy * 0.02)  # independent parts: quadrature
    assert f.usd_per_million.lo == pytest.approx(capital + energy - half_width)
    assert f.usd_per_million.hi == pytest.approx(capital + energy + half_width)
    assert f.co2_g_per_million is not None
    assert f.co2_g_per_million.value == pytest.approx(KWH_PER_MILLION * 1.5 * 400.0)  # 6 g
    assert f.co2_g_per_million.rel_half_width == pytest.approx(0.02)
    assert f.energy_basis == ENERGY_MEASURED and not f.is_estimate


def test_cloud_rate_replaces_capital_and_energy() -> None:
    cloud = CostProfile(device="cuda:0", cloud_usd_per_hour=3.6, carbon_g_per_kwh=100.0)
    f = cost_figures_from(THROUGHPUT, ENERGY, cloud)
    assert f.basis == "cloud"
    assert f.usd_per_million is not None and f.usd_per_million.value == pytest.approx(1.0)
    assert f.usd_per_million.rel_half_width == pytest.approx(0.01)  # throughput's only
    assert f.capital_usd_per_million is None and f.energy_usd_per_million is None
    assert f.co2_g_per_million is not None
    assert f.co2_g_per_million.value == pytest.approx(KWH_PER_MILLION * 100.0)
    # a cloud rate needs no energy; CO2 does
    f2 = cost_figures_from(THROUGHPUT, None, cloud)
    assert f2.usd_per_million is not None and f2.co2_g_per_million is None
    assert f2.co2_na_reason is not None and "energy" in f2.co2_na_reason


def test_partial_profiles_say_what_they_count() -> None:
    capital_only = owned(electricity_usd_per_kwh=None, carbon_g_per_kwh=None)
    f = cost_figures_from(THROUGHPUT, None, capital_only)
    assert f.basis == "capital only" and f.usd_per_million is not None
    assert f.co2_g_per_million is None and "carbon" in (f.co2_na_reason or "")
    energy_only = owned(purchase_price_usd=None, amortization_years=None)
    f = cost_figures_from(THROUGHPUT, ENERGY, energy_only)
    assert f.basis == "energy only"
    assert f.usd_per_million is not None
    assert f.usd_per_million.value == pytest.approx(KWH_PER_MILLION * 0.25 * 1.5)
    empty = CostProfile(device="cpu")
    f = cost_figures_from(THROUGHPUT, ENERGY, empty)
    assert f.usd_per_million is None and "no purchase price" in (f.usd_na_reason or "")


def test_tariff_without_energy_is_na_never_zero() -> None:
    f = cost_figures_from(THROUGHPUT, None, owned(), energy_na_reason="RAPL is not readable")
    assert f.usd_per_million is None
    assert f.usd_na_reason is not None and "RAPL is not readable" in f.usd_na_reason
    assert f.capital_usd_per_million is not None  # the part that is known is still shown
    assert f.co2_g_per_million is None and f.co2_na_reason == "RAPL is not readable"
    assert f.energy_basis == ENERGY_NONE
    bad = cost_figures_from(Interval(0.0), ENERGY, owned())
    assert bad.usd_per_million is None and bad.co2_g_per_million is None
    assert "not a positive number" in (bad.usd_na_reason or "")


def test_no_interval_when_throughput_has_none() -> None:
    f = cost_figures_from(Interval(1000.0), ENERGY, owned())
    assert f.usd_per_million is not None and f.usd_per_million.lo is None


# -- profiles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"purchase_price_usd": -1.0, "amortization_years": 3.0},
        {"purchase_price_usd": 100.0, "amortization_years": 0.0},
        {"purchase_price_usd": 100.0},  # no amortization period
        {"pue": 0.9},
        {"utilization": 0.0},
        {"electricity_usd_per_kwh": math.nan},
        {"carbon_g_per_kwh": 1e9},
        {"cloud_usd_per_hour": True},
        {"electricity_usd_per_kwh": "0.3"},
    ],
)
def test_implausible_profiles_are_rejected(kw: dict[str, Any]) -> None:
    with pytest.raises(BadInputError):
        CostProfile(device="cpu", **kw)


def test_profile_round_trip_defaults_and_unknown_fields() -> None:
    p = owned()
    assert from_document(to_document(p), CostProfile, forbid_unknown=True) == p
    assert p.capital_usd_per_hour == pytest.approx(3000.0 / (3 * 8766 * 0.5))
    stored = CostProfile(device="cpu", utilization=None, pue=None)
    assert (stored.utilization, stored.pue) == (1.0, 1.0)  # NULL columns take the defaults
    with pytest.raises(CodecError, match="no field price"):
        from_document({"device": "cpu", "price": 3}, CostProfile, forbid_unknown=True)
    with pytest.raises(CodecError, match="device"):
        from_document({"pue": 1.2}, CostProfile)
    with pytest.raises(CodecError, match="not plausible"):  # the profile's own checks run
        from_document({"device": "cpu", "pue": 9.0}, CostProfile)
    with pytest.raises(BadInputError):
        CostProfile(device="  ")


# -- energy per inference of a run, and cost_figures(run, profile) ---------------------------


def test_energy_views_device_and_system() -> None:
    run = run_with(
        (
            figure("package-0", "cpu", 30.0),
            figure("dram-0", "cpu", 6.0, scope="dram"),
            figure("gpu0", "cuda:0", 100.0, scope="gpu-board"),
            figure("node", "node", 500.0, scope="node", rel=0.05),
        )
    )
    dev, reason = energy_per_item(run, "device")
    assert reason is None and dev is not None
    assert dev.value == pytest.approx(0.036)  # package + DRAM of the run's own device
    system, _ = energy_per_item(run, "system")
    assert system is not None and system.value == pytest.approx(0.136)  # node never added
    # the interval combines the sensors' and the timing uncertainty in quadrature
    assert run.throughput_items_per_s is not None
    timing = run.throughput_items_per_s.rel_half_width
    assert timing is not None
    sensor = 0.02 * math.hypot(30.0, 6.0) / 36.0  # independent sensors: absolute errors add
    assert dev.rel_half_width == pytest.approx(math.hypot(sensor, timing))
    only_node = run_with((figure("node", "node", 500.0, scope="node"),))
    node, _ = energy_per_item(only_node, "system")
    assert node is not None and node.value == pytest.approx(0.5)
    assert energy_per_item(only_node, "device")[0] is None
    with pytest.raises(BadInputError):
        energy_per_item(run, "wall")


def test_aggregate_figure_wins_and_estimates_are_never_measurements() -> None:
    agg = run_with((figure("package-0", "cpu", 30.0), figure("device", "cpu", 40.0)))
    iv, _ = energy_per_item(agg, "device")
    assert iv is not None and iv.value == pytest.approx(0.040)
    estimate = figure("package-0", "cpu", 50.0, method="model", rel=None, flags=("estimate",))
    est_run = run_with((estimate,))
    iv, reason = energy_per_item(est_run, "device")
    assert iv is None and reason is not None and "estimate" in reason
    est, _, source = estimated_energy_per_item(est_run, "device")
    assert est is not None and est.value == pytest.approx(0.05) and est.lo is None
    assert source == "test.package-0"


def test_cost_figures_of_a_run_marks_measured_and_estimated_energy() -> None:
    measured = run_with((figure("package-0", "cpu", 36.0),))
    f = cost_figures(measured, owned())
    assert f.energy_basis == ENERGY_MEASURED and not f.is_estimate
    assert f.energy_source == "test.package-0" and f.profile_name == "lab"
    assert measured.throughput_items_per_s is not None
    direct = cost_figures_from(
        measured.throughput_items_per_s, energy_per_item(measured, "device")[0], owned()
    )
    assert f.usd_per_million == direct.usd_per_million

    estimated = run_with(
        (figure("package-0", "cpu", 36.0, method="model", rel=None, flags=("estimate",)),)
    )
    f = cost_figures(estimated, owned())
    assert f.energy_basis == ENERGY_ESTIMATE
    assert f.usd_is_estimate and f.co2_is_estimate and f.is_estimate
    assert f.co2_g_per_million is not None
    assert f.co2_g_per_million.value == pytest.approx(KWH_PER_MILLION * 1.5 * 400.0)
    strict = cost_figures(estimated, owned(), allow_estimate=False)
    assert strict.usd_per_million is None and strict.co2_g_per_million is None
    assert "estimate" in (strict.co2_na_reason or "")
    # capital-only $ rests on measured throughput alone: not an estimate even then
    f = cost_figures(estimated, owned(electricity_usd_per_kwh=None, carbon_g_per_kwh=None))
    assert f.usd_per_million is not None and not f.usd_is_estimate


def test_cost_figures_of_unfinished_or_foreign_runs() -> None:
    failed = run_with((), status=RunStatus.FAILED, reason="worker crashed")
    f = cost_figures(failed, owned())
    assert f.usd_per_million is None and "failed" in (f.usd_na_reason or "")
    no_thr = run_with((), throughput_items_per_s=None)
    assert cost_figures(no_thr, owned()).usd_na_reason == "no throughput was recorded"
    gpu_run = run_with((figure("gpu0", "cuda:0", 10.0, scope="gpu-board"),), device="cuda:0")
    with pytest.raises(BadInputError, match="cuda:0"):
        cost_figures(gpu_run, owned())
