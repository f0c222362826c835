"""What a device costs to own or rent: the cost profile value (PRODUCT.md "Cost")."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from wattbench.domain.errors import BadInputError

HOURS_PER_YEAR = 8766.0  # 365.25 days

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
        # a stored profile may hold NULL for the defaulted fields: take the defaults
        if self.utilization is None:
            object.__setattr__(self, "utilization", 1.0)
        if self.pue is None:
            object.__setattr__(self, "pue", 1.0)
        if not isinstance(self.device, str) or not self.device.strip():
            raise BadInputError("A cost profile needs the device it applies to (e.g. 'cuda:0').")
        for name, low, high, exclusive in _LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadInputError(
                    f"Cost profile {name} must be a number (got {value!r}).", field=name
                )
            v = float(value)
            too_low = v <= low if exclusive else v < low
            if not math.isfinite(v) or too_low or v > high:
                bound = f"above {low:g}" if exclusive else f"at least {low:g}"
                raise BadInputError(
                    f"Cost profile {name} = {value!r} is not plausible: give a value {bound} "
                    f"and at most {high:g}.",
                    field=name,
                )
        if (self.purchase_price_usd is None) != (self.amortization_years is None):
            raise BadInputError(
                "A purchase price needs an amortization period (years) and vice versa: "
                "set both or neither.",
                field="purchase_price_usd"
                if self.purchase_price_usd is None
                else "amortization_years",
            )

    @property
    def capital_usd_per_hour(self) -> float | None:
        """Purchase price per useful hour: price / (years × 8766 h × utilization)."""
        if self.purchase_price_usd is None or self.amortization_years is None:
            return None
        return self.purchase_price_usd / (
            self.amortization_years * HOURS_PER_YEAR * self.utilization
        )


def profiles_by_device(profiles: Iterable[CostProfile]) -> dict[str, CostProfile]:
    """One profile per device, the one a comparison uses: the unnamed one when there is one,
    else the first by name."""
    out: dict[str, CostProfile] = {}
    for p in sorted(profiles, key=lambda p: (p.device, p.name != "", p.name)):
        out.setdefault(p.device, p)
    return out
