"""Cost profiles and $ / gCO2 per million inferences (PRODUCT.md "Cost").

A profile belongs to one device. Owned hardware costs capital (purchase price amortized over
its useful hours) plus electricity (measured energy × tariff × PUE); a cloud $/hour replaces
both. Relative uncertainties of throughput and energy propagate in quadrature.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from wattbench.engine.result import Interval
from wattbench.errors import BadInputError

log = logging.getLogger(__name__)

HOURS_PER_YEAR = 8766.0  # 365.25 days
J_PER_KWH = 3.6e6
ITEMS_PER_MILLION = 1e6

# (field, lowest allowed, highest allowed, lowest is exclusive)
_LIMITS: tuple[tuple[str, float, float, bool], ...] = (
    ("purchase_price_usd", 0.0, 1e8, False),
    ("amortization_years", 0.0, 50.0, True),
    ("utilization", 0.0, 1.0, True),
    ("electricity_usd_per_kwh", 0.0, 10.0, False),
    ("pue", 1.0, 5.0, False),
    ("carbon_g_per_kwh", 0.0, 5000.0, False),
    ("cloud_usd_per_hour", 0.0, 10000.0, False),
)


@dataclass(frozen=True)
class CostProfile:
    """What one device costs to own or rent. None = not set (never taken as 0)."""

    device: str
    name: str = ""
    purchase_price_usd: float | None = None
    amortization_years: float | None = None
    utilization: float = 1.0  # fraction of its life the device does useful work
    electricity_usd_per_kwh: float | None = None
    pue: float = 1.0  # facility power usage effectiveness
    carbon_g_per_kwh: float | None = None
    cloud_usd_per_hour: float | None = None

    def __post_init__(self) -> None:
        if not self.device.strip():
            raise BadInputError("A cost profile needs the device it applies to (e.g. 'cuda:0').")
        for name, low, high, exclusive in _LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadInputError(f"Cost profile {name} must be a number (got {value!r}).")
            v = float(value)
            too_low = v <= low if exclusive else v < low
            if not math.isfinite(v) or too_low or v > high:
                bound = f"above {low:g}" if exclusive else f"at least {low:g}"
                raise BadInputError(
                    f"Cost profile {name} = {value!r} is not plausible: give a value {bound} "
                    f"and at most {high:g}."
                )
        if (self.purchase_price_usd is None) != (self.amortization_years is None):
            raise BadInputError(
                "A purchase price needs an amortization period (years) and vice versa: "
                "set both or neither."
            )

    @property
    def capital_usd_per_hour(self) -> float | None:
        """Purchase price per useful hour: price / (years × 8766 h × utilization)."""
        if self.purchase_price_usd is None or self.amortization_years is None:
            return None
        return self.purchase_price_usd / (
            self.amortization_years * HOURS_PER_YEAR * self.utilization
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostProfile:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise BadInputError(
                f"Unknown cost profile field(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(names))}."
            )
        if "device" not in d:
            raise BadInputError("A cost profile needs a 'device' field.")
        return cls(**dict(d))


@dataclass(frozen=True)
class CostFigures:
    """$ and gCO2 per million inferences with their breakdown; None + reason when unknown."""

    usd_per_million: Interval | None
    usd_na_reason: str | None
    co2_g_per_million: Interval | None
    co2_na_reason: str | None
    capital_usd_per_million: Interval | None = None
    energy_usd_per_million: Interval | None = None
    cloud_usd_per_million: Interval | None = None
    basis: str = ""  # "cloud", "capital + energy", "capital only", "energy only"


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
    throughput_items_per_s: Interval,
    energy_per_item_j: Interval | None,
    profile: CostProfile,
) -> CostFigures:
    """$ and gCO2 per million inferences for one run on the profile's device.

    - cloud: cloud $/h × hours per million items (replaces capital and energy).
    - capital: price / (years × 8766 h × utilization) × hours per million items.
    - energy: J/item × 1e6 / 3.6e6 kWh × tariff × PUE.
    - CO2: J/item × 1e6 / 3.6e6 kWh × PUE × gCO2/kWh.
    Owned hardware with a tariff but unknown energy gives no $ figure (the energy part is never
    silently dropped); a profile without a price counts energy only, and says so in `basis`.
    """
    x = throughput_items_per_s.value
    if not x > 0 or not math.isfinite(x):
        reason = f"throughput {x!r} items/s is not a positive number"
        return CostFigures(None, reason, None, reason)
    hours_per_million = ITEMS_PER_MILLION / x / 3600.0
    rel_x = _rel(throughput_items_per_s)
    rel_e = _rel(energy_per_item_j)
    energy_known = energy_per_item_j is not None and energy_per_item_j.value > 0

    # gCO2 per million
    co2: Interval | None = None
    co2_reason: str | None = None
    if profile.carbon_g_per_kwh is None:
        co2_reason = f"no carbon intensity in the cost profile for {profile.device}"
    elif not energy_known or energy_per_item_j is None:
        co2_reason = "energy per inference is not known for this run"
    else:
        co2 = _scaled(
            _kwh_per_million(energy_per_item_j) * profile.pue * profile.carbon_g_per_kwh, rel_e
        )

    # $ per million
    if profile.cloud_usd_per_hour is not None:
        cloud = _scaled(profile.cloud_usd_per_hour * hours_per_million, rel_x)
        return CostFigures(cloud, None, co2, co2_reason, cloud_usd_per_million=cloud, basis="cloud")
    capital: Interval | None = None
    energy_cost: Interval | None = None
    cap_per_h = profile.capital_usd_per_hour
    if cap_per_h is not None:
        capital = _scaled(cap_per_h * hours_per_million, rel_x)
    if profile.electricity_usd_per_kwh is not None:
        if not energy_known or energy_per_item_j is None:
            return CostFigures(
                None,
                "energy per inference is not known for this run, and the cost profile has an "
                "electricity tariff: the energy part of the cost cannot be computed",
                co2,
                co2_reason,
                capital_usd_per_million=capital,
            )
        energy_cost = _scaled(
            _kwh_per_million(energy_per_item_j) * profile.electricity_usd_per_kwh * profile.pue,
            rel_e,
        )
    parts = [p for p in (capital, energy_cost) if p is not None]
    if not parts:
        return CostFigures(
            None,
            f"the cost profile for {profile.device} has no purchase price, electricity tariff "
            "or cloud rate",
            co2,
            co2_reason,
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
    )
