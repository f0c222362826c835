"""Cost profiles and $ / gCO2 per million inferences (PRODUCT.md "Cost").

A profile belongs to one device. Owned hardware costs capital (purchase price amortized over
its useful hours) plus electricity (energy × tariff × PUE); a cloud $/hour replaces both.
Relative uncertainties of throughput and energy propagate in quadrature.

Energy per inference for a run also lives here (compare.py re-exports it): measured figures
first; an estimate (TDP model) is used only by cost_figures and then marked as such.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from wattbench.domain.cost import CostProfile
from wattbench.domain.energy import check_energy_view, view_parts
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import EnergyFigure, Interval, RunResult, RunStatus

log = logging.getLogger(__name__)

J_PER_KWH = 3.6e6
ITEMS_PER_MILLION = 1e6


ENERGY_MEASURED = "measured"
ENERGY_ESTIMATE = "estimate"
ENERGY_NONE = "none"


@dataclass(frozen=True)
class CostFigures:
    """$ and gCO2 per million inferences with their breakdown; None + reason when unknown.

    energy_basis says where the energy behind the energy-based parts came from: "measured",
    "estimate" (a TDP model: every figure that uses it is an estimate) or "none".
    """

    usd_per_million: Interval | None
    usd_na_reason: str | None
    co2_g_per_million: Interval | None
    co2_na_reason: str | None
    capital_usd_per_million: Interval | None = None
    energy_usd_per_million: Interval | None = None
    cloud_usd_per_million: Interval | None = None
    basis: str = ""  # "cloud", "capital + energy", "capital only", "energy only"
    energy_basis: str = ENERGY_NONE
    energy_source: str = ""  # EnergyFigure.source(s) behind the energy part
    profile_name: str = ""

    @property
    def usd_is_estimate(self) -> bool:
        """True when the $ figure rests on estimated energy (not on measurement)."""
        return self.energy_basis == ENERGY_ESTIMATE and self.energy_usd_per_million is not None

    @property
    def co2_is_estimate(self) -> bool:
        return self.energy_basis == ENERGY_ESTIMATE and self.co2_g_per_million is not None

    @property
    def is_estimate(self) -> bool:
        return self.usd_is_estimate or self.co2_is_estimate


# -- energy per inference of a run -----------------------------------------------------------


def _energy_interval(per_item_j: float, sensor_rel: float | None, run: RunResult) -> Interval:
    """Energy per item with sensor and timing uncertainty combined in quadrature.

    E/N over the measurement window: the sensor's own relative uncertainty and the timing
    uncertainty of the window (≈ rho) are independent, so they add in quadrature.
    """
    if sensor_rel is None:
        return Interval(per_item_j, None, None)
    thr = run.throughput_items_per_s
    timing_rel = thr.rel_half_width if thr is not None else None
    if timing_rel is None and run.latency is not None and math.isfinite(run.latency.rho):
        timing_rel = run.latency.rho
    if timing_rel is None:
        return Interval(per_item_j, None, None)
    rel = math.hypot(sensor_rel, timing_rel)
    return Interval(per_item_j, per_item_j * (1 - rel), per_item_j * (1 + rel))


def _sum_domains(
    parts: Sequence[EnergyFigure], run: RunResult
) -> tuple[Interval | None, str | None]:
    items = parts[0].items
    if items <= 0:
        return None, "the energy window covers no inferences"
    if any(e.items != items for e in parts):
        return None, "energy domains cover different numbers of inferences"
    total_j = sum(e.energy_j for e in parts)
    if not total_j > 0:
        return None, "the energy in the window is not positive"
    if any(e.rel_uncertainty is None for e in parts):
        sensor_rel = None
    else:
        sensor_rel = (
            math.sqrt(sum((e.rel_uncertainty or 0.0) ** 2 * e.energy_j**2 for e in parts)) / total_j
        )
    return _energy_interval(total_j / items, sensor_rel, run), None


def energy_per_item(run: RunResult, energy_view: str) -> tuple[Interval | None, str | None]:
    """Measured gross energy per inference in a view ("device" or "system"), or None + reason.

    Uses the aggregate figure of that domain when the run has one; otherwise sums the measured
    domains (ENERGY.md "Per run" 4): those of the run's own device for "device", every domain
    for "system". Estimates never count here (see estimated_energy_per_item).
    """
    measured = view_parts(run, energy_view, estimates=False)
    if len(measured) == 1 and measured[0].domain == energy_view:  # the sampler's aggregate
        e = measured[0]
        if not e.items or not e.energy_per_item_j > 0:
            return None, f"the {energy_view} energy figure covers no inferences"
        return _energy_interval(e.energy_per_item_j, e.rel_uncertainty, run), None
    if not measured:
        if run.energy_na_reason:
            return None, run.energy_na_reason
        if any(e.is_estimate for e in run.energy):
            return None, "only estimated energy is available for this run"
        return None, f"no measured {energy_view} energy for {run.spec.device}"
    return _sum_domains(measured, run)


def estimated_energy_per_item(
    run: RunResult, energy_view: str
) -> tuple[Interval | None, str | None, str]:
    """Energy per inference from the run's estimate figures (TDP model): (value, reason, source).

    Only for display marked "estimate" — never ranked against measurements. An estimate has
    no interval.
    """
    parts = view_parts(run, energy_view, estimates=True)
    if not parts:
        return None, f"no energy estimate for {run.spec.device} in this run", ""
    iv, reason = _sum_domains(parts, run)
    source = ", ".join(dict.fromkeys(e.source for e in parts))
    return (None if iv is None else Interval(iv.value)), reason, source


# -- cost figures ----------------------------------------------------------------------------


def _rel(iv: Interval | None) -> float | None:
    return None if iv is None else iv.rel_half_width


def _scaled(value: float, rel: float | None) -> Interval:
    """value with a symmetric relative half-width (no interval if rel unknown)."""
    if rel is None:
        return Interval(value, None, None)
    return Interval(value, value * (1 - rel), value * (1 + rel))


def _sum(parts: list[Interval]) -> Interval:
    """Sum of independent figures: half-widths combine in quadrature."""
    total = sum(p.value for p in parts)
    hws = []
    for p in parts:
        if p.lo is None or p.hi is None:
            return Interval(total, None, None)
        hws.append((p.hi - p.lo) / 2)
    hw = math.sqrt(sum(h * h for h in hws))
    return Interval(total, total - hw, total + hw)


def _kwh_per_million(energy_per_item_j: Interval) -> float:
    return energy_per_item_j.value * ITEMS_PER_MILLION / J_PER_KWH


def cost_figures(
    run: RunResult,
    profile: CostProfile,
    *,
    energy_view: str = "device",
    allow_estimate: bool = True,
) -> CostFigures:
    """$ and gCO2 per million inferences of one run on the profile's device.

    Throughput is the run's measured throughput; energy per inference is measured in the
    chosen view, or — with allow_estimate and no measurement — the run's estimate, in which
    case energy_basis is "estimate" and every energy-based figure is an estimate. A run that
    did not finish gives n/a figures with the reason. See cost_figures_from for the formulas.
    """
    check_energy_view(energy_view)
    if profile.device != run.spec.device:
        raise BadInputError(
            f"The cost profile is for {profile.device} but the run ran on {run.spec.device}: "
            f"use a profile for {run.spec.device}."
        )
    if run.status is not RunStatus.DONE or run.throughput_items_per_s is None:
        reason = (
            f"run {run.id[:8]} is {run.status.value}"
            if run.status is not RunStatus.DONE
            else "no throughput was recorded"
        )
        return CostFigures(None, reason, None, reason, profile_name=profile.name)
    energy, energy_reason = energy_per_item(run, energy_view)
    basis, source = ENERGY_MEASURED, ""
    if energy is not None:
        source = _sources(run, energy_view)
    elif allow_estimate:
        est, _, est_source = estimated_energy_per_item(run, energy_view)
        if est is not None:
            energy, basis, source = est, ENERGY_ESTIMATE, est_source
    if energy is None:
        basis = ENERGY_NONE
    figures = cost_figures_from(
        run.throughput_items_per_s, energy, profile, energy_na_reason=energy_reason
    )
    return replace(figures, energy_basis=basis, energy_source=source, profile_name=profile.name)


def _sources(run: RunResult, energy_view: str) -> str:
    parts = view_parts(run, energy_view, estimates=False)
    return ", ".join(dict.fromkeys(e.source for e in parts))


def cost_figures_from(
    throughput_items_per_s: Interval,
    energy_per_item_j: Interval | None,
    profile: CostProfile,
    *,
    energy_na_reason: str | None = None,
) -> CostFigures:
    """$ and gCO2 per million inferences from a throughput and an energy per inference.

    - cloud: cloud $/h × hours per million items (replaces capital and energy).
    - capital: price / (years × 8766 h × utilization) × hours per million items.
    - energy: J/item × 1e6 / 3.6e6 kWh × tariff × PUE.
    - CO2: J/item × 1e6 / 3.6e6 kWh × PUE × gCO2/kWh.
    Owned hardware with a tariff but unknown energy gives no $ figure (the energy part is never
    silently dropped); a profile without a price counts energy only, and says so in `basis`.
    energy_basis is left "measured" when energy is given (cost_figures marks estimates).
    """
    x = throughput_items_per_s.value
    if not x > 0 or not math.isfinite(x):
        reason = f"throughput {x!r} items/s is not a positive number"
        return CostFigures(None, reason, None, reason)
    hours_per_million = ITEMS_PER_MILLION / x / 3600.0
    rel_x = _rel(throughput_items_per_s)
    rel_e = _rel(energy_per_item_j)
    energy = (
        energy_per_item_j if energy_per_item_j is not None and energy_per_item_j.value > 0 else None
    )
    energy_basis = ENERGY_MEASURED if energy is not None else ENERGY_NONE
    no_energy = energy_na_reason or "energy per inference is not known for this run"

    # gCO2 per million
    co2: Interval | None = None
    co2_reason: str | None = None
    if profile.carbon_g_per_kwh is None:
        co2_reason = f"no carbon intensity in the cost profile for {profile.device}"
    elif energy is None:
        co2_reason = no_energy
    else:
        co2 = _scaled(_kwh_per_million(energy) * profile.pue * profile.carbon_g_per_kwh, rel_e)

    # $ per million
    if profile.cloud_usd_per_hour is not None:
        cloud = _scaled(profile.cloud_usd_per_hour * hours_per_million, rel_x)
        return CostFigures(
            cloud, None, co2, co2_reason, cloud_usd_per_million=cloud, basis="cloud",
            energy_basis=energy_basis,
        )  # fmt: skip
    capital: Interval | None = None
    energy_cost: Interval | None = None
    cap_per_h = profile.capital_usd_per_hour
    if cap_per_h is not None:
        capital = _scaled(cap_per_h * hours_per_million, rel_x)
    if profile.electricity_usd_per_kwh is not None:
        if energy is None:
            return CostFigures(
                None,
                f"{no_energy}, and the cost profile has an electricity tariff: the energy part "
                "of the cost cannot be computed",
                co2,
                co2_reason,
                capital_usd_per_million=capital,
                energy_basis=energy_basis,
            )
        energy_cost = _scaled(
            _kwh_per_million(energy) * profile.electricity_usd_per_kwh * profile.pue, rel_e
        )
    parts = [p for p in (capital, energy_cost) if p is not None]
    if not parts:
        return CostFigures(
            None,
            f"the cost profile for {profile.device} has no purchase price, electricity tariff "
            "or cloud rate",
            co2,
            co2_reason,
            energy_basis=energy_basis,
        )
    basis = (
        "capital + energy"
        if capital is not None and energy_cost is not None
        else ("capital only" if capital is not None else "energy only")
    )
    return CostFigures(
        _sum(parts),
        None,
        co2,
        co2_reason,
        capital_usd_per_million=capital,
        energy_usd_per_million=energy_cost,
        basis=basis,
        energy_basis=energy_basis,
    )


def usd_per_million_output_tokens(
    run: RunResult,
    profile: CostProfile,
    *,
    energy_view: str = "device",
    allow_estimate: bool = True,
) -> tuple[Interval | None, str | None, bool]:
    """$ per million output tokens of a generation run: (value, why n/a, is an estimate).

    A generation run's items are sequences of ``new_tokens`` output tokens each, so this is
    cost_figures' $ per million items ÷ new tokens (prompt tokens are not output; their cost is
    in the sequence's). Labelled an estimate when the energy part rests on an estimate.
    """
    if run.generation is None:
        return None, "not a generation run", False
    figures = cost_figures(run, profile, energy_view=energy_view, allow_estimate=allow_estimate)
    usd = figures.usd_per_million
    if usd is None:
        return None, figures.usd_na_reason, False
    tokens = run.generation.new_tokens
    return (
        Interval(
            usd.value / tokens,
            None if usd.lo is None else usd.lo / tokens,
            None if usd.hi is None else usd.hi / tokens,
        ),
        None,
        figures.usd_is_estimate,
    )
