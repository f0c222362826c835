"""The capacity plan in words, for every front end: the title line, the figures as rows with the
configurations as columns (each input labelled measured / estimate / input), and the notes.

The CLI prints these as a text table; the GUI shows the same cells in a table widget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wattbench.domain import units
from wattbench.engine.capacity import CapacityRow, Facility, Sourced


def _sourced(s: Sourced | None, fmt: Callable[[float], str]) -> str:
    return units.NA if s is None else f"{fmt(s.value)} ({s.source})"


def _usd(x: float | None) -> str:
    return units.NA if x is None else f"${units.number(x)}"


def _energy(kwh: float | None) -> str:
    if kwh is None:
        return units.NA
    return f"{units.number(kwh / 1000)} MWh" if kwh >= 1000 else f"{units.number(kwh)} kWh"


def power_text(w: float | None) -> str:
    """A power as an input reads: 600 kW, 1 MW, 250 W."""
    if w is None:
        return units.NA
    for scale, unit in ((1e6, "MW"), (1e3, "kW")):
        if w >= scale:
            return f"{plain(round(w / scale, 3))} {unit}"
    return f"{plain(round(w, 1))} W"


def plain(x: float) -> str:
    """An input as the user gave it: 1, 1.2, 600 (no padding to three digits)."""
    return f"{x:,.6g}"


def plan_title(facility: Facility) -> str:
    """'Capacity plan: 600 kW facility at PUE 1 (600 kW for IT), racks of 10 kW, over 3 years'."""
    rack = f", racks of {power_text(facility.rack_power_w)}" if facility.rack_power_w else ""
    slots = f", {facility.rack_slots} slots a rack" if facility.rack_slots else ""
    return (
        f"Capacity plan: {power_text(facility.budget_w)} facility at PUE "
        f"{plain(facility.pue)} ({power_text(facility.budget_w / facility.pue)} for IT)"
        f"{rack}{slots}, over {plain(facility.years)} years"
    )


def plan_table(
    rows: Sequence[CapacityRow], facility: Facility
) -> tuple[list[str], list[list[str]]]:
    """The figures as rows, the configurations as columns: (headers, rows of cells)."""
    headers = ["", *(r.config.label for r in rows)]
    years = f"{plain(facility.years)} years"

    def line(name: str, cell: Callable[[CapacityRow], str]) -> list[str]:
        return [name, *(cell(r) for r in rows)]

    table = [
        line("throughput / device", lambda r: _sourced(
            r.config.throughput_per_device, lambda v: f"{units.number(v)} {r.config.unit}")),
        line("devices per server", lambda r: str(r.config.devices)),
        line("server power, load", lambda r: _sourced(r.config.power_w, power_text)),
        line("server power, idle", lambda r: _sourced(r.config.idle_w, power_text)),
        line("server price", lambda r: _sourced(r.config.price_usd, lambda v: _usd(v))),
        line("electricity", lambda r: _sourced(
            r.config.tariff_usd_per_kwh, lambda v: f"${units.number(v)}/kWh")),
        line("utilization", lambda r: f"{plain(r.config.utilization.value * 100)} % "
             f"({r.config.utilization.note})"),
        line("servers", lambda r: units.count(r.servers)),
        line("servers per rack", lambda r: units.count(r.servers_per_rack)),
        line("racks", lambda r: units.count(r.racks)),
        line("aggregate throughput", lambda r: units.NA if r.aggregate_per_s is None
             else f"{units.number(r.aggregate_per_s)} {r.config.unit}"),
        line("IT power at load", lambda r: power_text(r.it_power_w)),
        line(f"energy, {years}", lambda r: _energy(r.energy_kwh)),
        line("energy cost", lambda r: _usd(r.energy_usd)),
        line("capital cost", lambda r: _usd(r.capex_usd)),
        line("total cost", lambda r: _usd(r.total_usd)
             + (" (estimate)" if r.estimate and r.total_usd is not None else "")),
        line("$ per 1M", lambda r: _usd(r.usd_per_million)
             + (" (estimate)" if r.estimate and r.usd_per_million is not None else "")),
    ]  # fmt: skip
    return headers, table


def plan_notes(rows: Sequence[CapacityRow]) -> list[str]:
    """What goes under the table: each configuration's reasons, then where its server power
    came from."""
    notes = [f"{r.config.label}: {n}" for r in rows for n in r.notes]
    notes += [
        f"{r.config.label}, server power: {r.config.power_w.note}"
        for r in rows
        if r.config.power_w is not None and r.config.power_w.note
    ]
    return notes
