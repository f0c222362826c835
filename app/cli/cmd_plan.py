"""`wattbench plan ID... --budget 1MW`: the capacity planner on stored runs.

For each configuration of the runs, side by side: the inputs (each with where it came from:
measured, estimate or input) and what a power budget holds — servers, racks, aggregate
throughput — and what it costs over the period (engine/capacity.py has the arithmetic).
"""

from __future__ import annotations

import argparse
from typing import Any

from wattbench.cli.common import EXIT_OK, print_json, print_lines, print_table, workbench
from wattbench.domain.codec import to_document
from wattbench.domain.errors import BadInputError
from wattbench.engine.capacity import Facility
from wattbench.service.capacity import ServerInput, parse_power, parse_server
from wattbench.service.capacity_table import plan_notes, plan_table, plan_title


def add_planner_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    """The facility and server flags of the capacity planner: ``wattbench plan``, and
    ``wattbench report``, where the plan is optional (``required=False``)."""
    adds = "" if required else " (adds a capacity plan to the report)"
    p.add_argument("--budget", required=required,
                   help=f"facility power budget, e.g. 1MW or 600kW{adds}")  # fmt: skip
    p.add_argument("--pue", type=float, default=None, help="facility PUE, 1-5 (default 1.0)")
    p.add_argument("--rack-power", default=None, help="power limit per rack, e.g. 10kW")
    p.add_argument("--rack-slots", type=int, default=None, help="servers a rack holds")
    p.add_argument("--years", type=float, default=None, help="period costs count over (default 3)")
    p.add_argument(
        "--server",
        nargs=2,
        action="append",
        metavar=("DEVICE", "FIGURES"),
        help="what a server of DEVICE is: devices=8,power=10kW,idle=3kW,price=300000 (repeatable)",
    )


def planner_inputs(args: argparse.Namespace) -> tuple[Facility | None, list[ServerInput]]:
    """The facility and the stated servers from the planner flags; (None, []) without
    --budget, which every other planner flag needs."""
    if args.budget is None:
        given = [flag for flag, value in (("--pue", args.pue), ("--rack-power", args.rack_power),
                 ("--rack-slots", args.rack_slots), ("--years", args.years),
                 ("--server", args.server)) if value is not None]  # fmt: skip
        if given:
            raise BadInputError(f"{given[0]} is an input of the capacity plan: give --budget too "
                                "(for example --budget 1MW).")  # fmt: skip
        return None, []
    facility = Facility(
        budget_w=parse_power(args.budget),
        pue=1.0 if args.pue is None else args.pue,
        rack_power_w=None if args.rack_power is None else parse_power(args.rack_power,
                                                                        field="rack_power"),
        rack_slots=args.rack_slots,
        years=3.0 if args.years is None else args.years,
    )  # fmt: skip
    return facility, [parse_server(device, text) for device, text in args.server or []]


def _cmd_plan(args: argparse.Namespace) -> int:
    facility, servers = planner_inputs(args)
    assert facility is not None  # --budget is required here
    with workbench(args) as wb:
        rows = wb.plan_capacity(args.ids, facility, servers)
    if args.json:
        print_json({"facility": to_document(facility), "rows": [to_document(r) for r in rows]})
        return EXIT_OK
    headers, table = plan_table(rows, facility)
    print_table(headers, table, title=plan_title(facility))
    print_lines(plan_notes(rows))
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
    add_planner_flags(p, required=True)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_plan)
