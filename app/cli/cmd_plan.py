"""`wattbench plan ID... --budget 1MW`: the capacity planner on stored runs.

For each configuration of the runs, side by side: the inputs (each with where it came from:
measured, estimate or input) and what a power budget holds — servers, racks, aggregate
throughput — and what it costs over the period (engine/capacity.py has the arithmetic).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from wattbench.cli.common import EXIT_OK, print_json, print_lines, print_table, workbench
from wattbench.domain import units
from wattbench.domain.codec import to_document
from wattbench.engine.capacity import CapacityRow, Facility, Sourced
from wattbench.service.capacity import parse_power, parse_server


def _sourced(s: Sourced | None, fmt: Callable[[float], str]) -> str:
    return units.NA if s is None else f"{fmt(s.value)} ({s.source})"


def _usd(x: float | None) -> str:
    return units.NA if x is None else f"${units.number(x)}"


def _energy(kwh: float | None) -> str:
    if kwh is None:
        return units.NA
    return f"{units.number(kwh / 1000)} MWh" if kwh >= 1000 else f"{units.number(kwh)} kWh"


def _power(w: float | None) -> str:
    if w is None:
        return units.NA
    for scale, unit in ((1e6, "MW"), (1e3, "kW")):
        if w >= scale:
            return f"{_plain(round(w / scale, 3))} {unit}"
    return f"{_plain(round(w, 1))} W"


def _count(n: int | None) -> str:
    return units.count(n)


def _plain(x: float) -> str:
    """An input as the user gave it: 1, 1.2, 600 (no padding to three digits)."""
    return f"{x:,.6g}"


def plan_table(rows: list[CapacityRow], facility: Facility) -> tuple[list[str], list[list[str]]]:
    """The figures as rows, the configurations as columns."""
    headers = ["", *(r.config.label for r in rows)]
    years = f"{_plain(facility.years)} years"

    def line(name: str, cell: Callable[[CapacityRow], str]) -> list[str]:
        return [name, *(cell(r) for r in rows)]

    table = [
        line("throughput / device", lambda r: _sourced(
            r.config.throughput_per_device, lambda v: f"{units.number(v)} {r.config.unit}")),
        line("devices per server", lambda r: str(r.config.devices)),
        line("server power, load", lambda r: _sourced(r.config.power_w, _power)),
        line("server power, idle", lambda r: _sourced(r.config.idle_w, _power)),
        line("server price", lambda r: _sourced(r.config.price_usd, lambda v: _usd(v))),
        line("electricity", lambda r: _sourced(
            r.config.tariff_usd_per_kwh, lambda v: f"${units.number(v)}/kWh")),
        line("utilization", lambda r: f"{_plain(r.config.utilization.value * 100)} % "
             f"({r.config.utilization.note})"),
        line("servers", lambda r: _count(r.servers)),
        line("servers per rack", lambda r: _count(r.servers_per_rack)),
        line("racks", lambda r: _count(r.racks)),
        line("aggregate throughput", lambda r: units.NA if r.aggregate_per_s is None
             else f"{units.number(r.aggregate_per_s)} {r.config.unit}"),
        line("IT power at load", lambda r: _power(r.it_power_w)),
        line(f"energy, {years}", lambda r: _energy(r.energy_kwh)),
        line("energy cost", lambda r: _usd(r.energy_usd)),
        line("capital cost", lambda r: _usd(r.capex_usd)),
        line("total cost", lambda r: _usd(r.total_usd)
             + (" (estimate)" if r.estimate and r.total_usd is not None else "")),
        line("$ per 1M", lambda r: _usd(r.usd_per_million)
             + (" (estimate)" if r.estimate and r.usd_per_million is not None else "")),
    ]  # fmt: skip
    return headers, table


def _cmd_plan(args: argparse.Namespace) -> int:
    facility = Facility(
        budget_w=parse_power(args.budget),
        pue=args.pue,
        rack_power_w=None if args.rack_power is None else parse_power(args.rack_power,
                                                                        field="rack_power"),
        rack_slots=args.rack_slots,
        years=args.years,
    )  # fmt: skip
    servers = [parse_server(device, text) for device, text in args.server or []]
    with workbench(args) as wb:
        rows = wb.plan_capacity(args.ids, facility, servers)
    if args.json:
        print_json({"facility": to_document(facility), "rows": [to_document(r) for r in rows]})
        return EXIT_OK
    rack = f", racks of {_power(facility.rack_power_w)}" if facility.rack_power_w else ""
    slots = f", {facility.rack_slots} slots a rack" if facility.rack_slots else ""
    headers, table = plan_table(rows, facility)
    print_table(
        headers,
        table,
        title=f"Capacity plan: {_power(facility.budget_w)} facility at PUE "
        f"{_plain(facility.pue)} ({_power(facility.budget_w / facility.pue)} for IT)"
        f"{rack}{slots}, over {_plain(facility.years)} years",
    )
    notes = [f"{r.config.label}: {n}" for r in rows for n in r.notes]
    notes += [
        f"{r.config.label}, server power: {r.config.power_w.note}"
        for r in rows
        if r.config.power_w is not None and r.config.power_w.note
    ]
    print_lines(notes)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plan",
        help="capacity planner: servers, racks, throughput and cost a power budget holds",
        description="From stored runs: how many servers of each configuration a power budget "
        "holds, their aggregate throughput and their cost over a period. Server power comes "
        "from the runs (system view, else the device's own, else an estimate) unless --server "
        "states it; price, tariff and utilization come from the device's cost profile.",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="run ids (a unique prefix is enough)")
    p.add_argument("--budget", required=True, help="facility power budget, e.g. 1MW or 600kW")
    p.add_argument("--pue", type=float, default=1.0, help="facility PUE, 1-5 (default 1.0)")
    p.add_argument("--rack-power", default=None, help="power limit per rack, e.g. 10kW")
    p.add_argument("--rack-slots", type=int, default=None, help="servers a rack holds")
    p.add_argument("--years", type=float, default=3.0, help="period costs count over (default 3)")
    p.add_argument(
        "--server",
        nargs=2,
        action="append",
        metavar=("DEVICE", "FIGURES"),
        help="what a server of DEVICE is: devices=8,power=10kW,idle=3kW,price=300000 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_plan)
