"""The capacity planner: how many servers of each configuration a power budget holds, what they
deliver together and what they cost over a period (PRODUCT.md "Serving and sizing").

Per configuration, from its measured runs and the planner's inputs:

- IT power = budget ÷ PUE. Servers = ⌊IT power ÷ server power at load⌋ (the budget must hold
  every server at full load). Servers per rack = ⌊rack power ÷ server power⌋, at most the rack's
  slots; racks = ⌈servers ÷ servers per rack⌉.
- Aggregate throughput = servers × devices per server × the throughput of one device (the
  measured figure, in inferences/s or output tokens/s).
- Energy over the period = servers × (u × P_load + (1 − u) × P_idle) × PUE × hours, u the
  utilization: with the idle power measured (its idle/above-idle split), else P_load all the time
  (an upper bound, labelled). Energy cost = energy × tariff. Capex = servers × server price.
- $ per million = (capex + energy cost) ÷ (aggregate throughput × u × period seconds) × 10⁶.

Every input is carried with where it came from (measured, estimate, input); a figure that rests
on an estimate is marked as one, and one that cannot be had is None with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wattbench.domain.errors import BadInputError

HOURS_PER_YEAR = 8766.0

MEASURED = "measured"
ESTIMATE = "estimate"
INPUT = "input"


@dataclass(frozen=True)
class Sourced:
    """A figure and where it came from: MEASURED, ESTIMATE or INPUT, with a short note."""

    value: float
    source: str
    note: str = ""

    @property
    def is_estimate(self) -> bool:
        return self.source == ESTIMATE


@dataclass(frozen=True)
class Facility:
    """The planner's facility inputs."""

    budget_w: float  # power budget of the facility (what the utility delivers)
    pue: float = 1.0  # facility power ÷ IT power
    rack_power_w: float | None = None  # power limit per rack
    rack_slots: int | None = None  # servers a rack holds physically
    years: float = 3.0  # the period costs are counted over

    def __post_init__(self) -> None:
        for name, value in (("budget", self.budget_w), ("years", self.years)):
            if not (math.isfinite(value) and value > 0):
                raise BadInputError(f"The {name} must be a positive number.", field=name)
        if not (math.isfinite(self.pue) and 1.0 <= self.pue <= 5.0):
            raise BadInputError("The PUE is between 1 and 5 (1 = no overhead).", field="pue")
        if self.rack_power_w is not None and not self.rack_power_w > 0:
            raise BadInputError("The rack power must be a positive number.", field="rack_power")
        if self.rack_slots is not None and self.rack_slots < 1:
            raise BadInputError("A rack holds at least one server.", field="rack_slots")


@dataclass(frozen=True)
class ServerConfig:
    """One configuration as a server: its per-device throughput and the server's figures."""

    label: str
    unit: str  # "inferences/s" or "output tokens/s"
    throughput_per_device: Sourced | None
    devices: int
    power_w: Sourced | None  # the server at load
    idle_w: Sourced | None
    price_usd: Sourced | None  # one server
    tariff_usd_per_kwh: Sourced | None
    utilization: Sourced
    na_reason: str = ""  # why throughput or power is missing


@dataclass(frozen=True)
class CapacityRow:
    config: ServerConfig
    servers: int | None
    servers_per_rack: int | None
    racks: int | None
    aggregate_per_s: float | None
    it_power_w: float | None  # drawn by the servers at load
    energy_kwh: float | None  # over the period, facility side (× PUE)
    energy_usd: float | None
    capex_usd: float | None
    total_usd: float | None
    usd_per_million: float | None
    estimate: bool  # a figure rests on an estimate
    notes: tuple[str, ...]  # the reasons and labels that go with the figures


def plan_capacity(facility: Facility, config: ServerConfig) -> CapacityRow:
    """The capacity of one configuration under the facility's budget (see the module doc)."""
    c = config
    notes: list[str] = []
    if c.power_w is None or c.throughput_per_device is None:
        why = c.na_reason or "no throughput or power for this configuration"
        return CapacityRow(c, None, None, None, None, None, None, None, None, None, None,
                           False, (why,))  # fmt: skip
    if c.na_reason:
        notes.append(c.na_reason)
    p_load = c.power_w.value
    it_budget = facility.budget_w / facility.pue
    servers = math.floor(it_budget / p_load)
    per_rack: int | None = None
    racks: int | None = None
    if facility.rack_power_w is not None:
        per_rack = math.floor(facility.rack_power_w / p_load)
        if facility.rack_slots is not None:
            per_rack = min(per_rack, facility.rack_slots)
        if per_rack < 1:
            notes.append(f"one server ({p_load:,.0f} W) exceeds the rack power")
            per_rack = None
    elif facility.rack_slots is not None:
        per_rack = facility.rack_slots
    if per_rack:
        racks = math.ceil(servers / per_rack)
    aggregate = servers * c.devices * c.throughput_per_device.value
    u = c.utilization.value
    hours = facility.years * HOURS_PER_YEAR
    if c.idle_w is not None:
        avg_w = u * p_load + (1 - u) * c.idle_w.value
    else:
        avg_w = p_load
        if u < 1:
            notes.append("idle power unknown: the energy counts load power all the time (an "
                         "upper bound)")  # fmt: skip
    energy_kwh = servers * avg_w * facility.pue * hours / 1000
    energy_usd = None if c.tariff_usd_per_kwh is None else energy_kwh * c.tariff_usd_per_kwh.value
    if c.tariff_usd_per_kwh is None:
        notes.append("no electricity tariff: the energy cost is not counted")
    capex = None if c.price_usd is None else servers * c.price_usd.value
    if c.price_usd is None:
        notes.append("no server price: the capital cost is not counted")
    parts = [x for x in (capex, energy_usd) if x is not None]
    total = sum(parts) if parts else None
    work = aggregate * u * hours * 3600
    per_million = None if total is None or work <= 0 else total / work * 1e6
    sources = [c.throughput_per_device, c.power_w, c.idle_w, c.price_usd, c.tariff_usd_per_kwh]
    estimate = any(s is not None and s.is_estimate for s in sources)
    return CapacityRow(
        c, servers, per_rack, racks, aggregate, servers * p_load, energy_kwh, energy_usd, capex,
        total, per_million, estimate, tuple(notes),
    )  # fmt: skip
