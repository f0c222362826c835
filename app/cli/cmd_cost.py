"""`wattbench cost set | list | show | delete`: the cost profiles behind the per-dollar figures
(PRODUCT.md "Cost"), from the command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, fields
from typing import Any

from wattbench.cli.common import EXIT_OK, print_json, print_lines, print_table, workbench
from wattbench.cli.run_output import inference_cost
from wattbench.domain import units
from wattbench.domain.cost import HOURS_PER_YEAR, CostProfile
from wattbench.domain.errors import BadInputError

# (field, flag, help with its unit) of every number `cost set` takes
_NUMBERS: tuple[tuple[str, str, str], ...] = (
    ("purchase_price_usd", "--purchase-price", "purchase price of the device, USD"),
    ("amortization_years", "--years", "years the purchase is written off over"),
    ("utilization", "--utilization", "fraction of its life the device does useful work, 0-1"),
    ("electricity_usd_per_kwh", "--electricity", "electricity price, USD per kWh"),
    ("pue", "--pue", "facility power usage effectiveness, 1-5 (1 = none)"),
    ("carbon_g_per_kwh", "--carbon", "grid carbon intensity, g CO2 per kWh"),
    ("cloud_usd_per_hour", "--cloud-hourly", "cloud rental price, USD per hour"),
)
_LABELS = {
    "purchase_price_usd": "purchase price",
    "amortization_years": "amortization",
    "utilization": "utilization",
    "electricity_usd_per_kwh": "electricity",
    "pue": "PUE",
    "carbon_g_per_kwh": "carbon intensity",
    "cloud_usd_per_hour": "cloud price",
}


def _value_text(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    if name == "purchase_price_usd":
        return f"${value:,.2f}"
    if name == "amortization_years":
        return f"{units.number(value)} years"
    if name == "utilization":
        return units.percent(value)
    if name == "electricity_usd_per_kwh":
        return f"${units.number(value)}/kWh"
    if name == "carbon_g_per_kwh":
        return f"{units.number(value)} g/kWh"
    if name == "cloud_usd_per_hour":
        return f"${units.number(value)}/h"
    return units.number(value)


def _usd_per_hour(value: float | None) -> str:
    return "—" if value is None else f"${units.number(value)}/h"


def _implied(p: CostProfile) -> list[str]:
    """What the profile means for the per-dollar figures, one line each."""
    lines = []
    capital = p.capital_usd_per_hour
    if capital is not None:
        hours = (p.amortization_years or 0.0) * HOURS_PER_YEAR * p.utilization
        lines.append(
            f"Amortised hardware: {_usd_per_hour(capital)} of useful work "
            f"({_value_text('purchase_price_usd', p.purchase_price_usd)} over "
            f"{hours:,.0f} useful hours)."
        )
    if p.cloud_usd_per_hour is not None:
        lines.append(f"Cloud rental: {_usd_per_hour(p.cloud_usd_per_hour)}.")
    if p.electricity_usd_per_kwh is not None:
        per_kwh = p.electricity_usd_per_kwh * p.pue
        lines.append(
            f"Energy: ${units.number(per_kwh)} per kWh drawn at the device "
            f"(PUE {units.number(p.pue)} included); needs a measured or estimated energy figure."
        )
    if not lines:
        lines.append("No prices set: per-dollar figures stay n/a for this device.")
    return lines


def _profile_json(p: CostProfile) -> dict[str, Any]:
    return {**asdict(p), "capital_usd_per_hour": p.capital_usd_per_hour}


def _cmd_set(args: argparse.Namespace) -> int:
    values: dict[str, float] = {}
    for name, _flag, _help in _NUMBERS:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    profile = CostProfile(device=args.device, name=args.name, **values)
    with workbench(args) as wb:
        if not args.replace:
            # a flag left out keeps what the stored profile holds
            old = [p for p in wb.cost_profiles(args.device) if p.name == args.name]
            if old:
                kept = {f.name: getattr(old[0], f.name) for f in fields(CostProfile)}
                profile = CostProfile(**{**kept, **values})
        wb.save_cost_profile(profile)
    print(f"Saved the cost profile of {_title(profile)}:")
    _print_profile(profile)
    return EXIT_OK


def _title(p: CostProfile) -> str:
    return p.device + (f" ({p.name})" if p.name else "")


def _print_profile(p: CostProfile) -> None:
    print_table(("field", "value"), [(_LABELS[n], _value_text(n, getattr(p, n))) for n in _LABELS])
    print_lines(_implied(p))


def _cmd_list(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        profiles = wb.cost_profiles(args.device)
    if args.json:
        print_json([_profile_json(p) for p in profiles])
        return EXIT_OK
    if not profiles:
        print("No cost profiles: add one with `wattbench cost set DEVICE --purchase-price ...`.")
        return EXIT_OK
    print_table(
        ("device", "name", "purchase", "years", "util.", "hardware $/h", "cloud $/h", "$/kWh"),
        [
            (
                p.device,
                p.name or "—",
                _value_text("purchase_price_usd", p.purchase_price_usd),
                units.number(p.amortization_years) if p.amortization_years else "—",
                units.percent(p.utilization),
                _usd_per_hour(p.capital_usd_per_hour),
                _usd_per_hour(p.cloud_usd_per_hour),
                "—"
                if p.electricity_usd_per_kwh is None
                else f"${units.number(p.electricity_usd_per_kwh)}",
            )
            for p in profiles
        ],
    )
    return EXIT_OK


def _find(args: argparse.Namespace, profiles: list[CostProfile]) -> CostProfile:
    for p in profiles:
        if p.name == args.name:
            return p
    names = ", ".join(repr(p.name) for p in profiles)
    raise BadInputError(
        f"No cost profile for {args.device}"
        + (f" named {args.name!r}" if args.name else "")
        + (f" (its profiles: {names}); give --name." if profiles else "; `wattbench cost list`.")
    )


def _cmd_show(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        p = _find(args, wb.cost_profiles(args.device))
        runs = wb.load_runs(args.run, with_arrays=False) if args.run else []
    for r in runs:
        if r.spec.device != p.device:
            raise BadInputError(
                f"Run {r.id[:8]} ran on {r.spec.device}, not {p.device}: show the profile of "
                f"{r.spec.device} for it."
            )
    costs = [{"run": r.id, **inference_cost(r, p)} for r in runs]
    if args.json:
        print_json({**_profile_json(p), "runs": costs})
        return EXIT_OK
    print(f"Cost profile of {_title(p)}:")
    _print_profile(p)
    if costs:
        print_table(
            ("run", "$ per 1M inferences", "counts", "with estimated energy"),
            [(c["run"][:8], c["usd_per_million"], c["counts"], c["estimate"]) for c in costs],
        )
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        p = _find(args, wb.cost_profiles(args.device))
        if not args.yes:
            if not sys.stdin or not sys.stdin.isatty():
                raise BadInputError(
                    f"Not deleting the cost profile of {_title(p)} without confirmation: add "
                    "--yes to delete without asking."
                )
            try:
                answer = input(f"Delete the cost profile of {_title(p)}? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return EXIT_OK
        wb.delete_cost_profile(p.device, p.name)
    print(f"Deleted the cost profile of {_title(p)}.")
    return EXIT_OK


def register(subparsers: Any) -> None:
    cost = subparsers.add_parser(
        "cost",
        help="set, list, show or delete the cost profiles of devices",
        description="What each device costs to own or rent: the per-dollar figures of "
        "`compare` and the reports come from these profiles.",
    )
    sub = cost.add_subparsers(dest="cost_command", metavar="ACTION", required=True)

    p = sub.add_parser("set", help="save a device's cost profile (flags left out are kept)")
    p.add_argument("device", metavar="DEVICE", help="device, e.g. cpu or cuda:0")
    p.add_argument("--name", default="", help="profile name (default: the device's main one)")
    for name, flag, text in _NUMBERS:
        p.add_argument(flag, dest=name, type=float, default=None, metavar="X", help=text)
    p.add_argument(
        "--replace", action="store_true", help="replace the stored profile instead of updating it"
    )
    p.set_defaults(func=_cmd_set)

    p = sub.add_parser("list", help="list the cost profiles")
    p.add_argument("--device", default=None, help="only this device's profiles")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="show one profile and the hourly costs it implies")
    p.add_argument("device", metavar="DEVICE")
    p.add_argument("--name", default="", help="profile name (default: the unnamed one)")
    p.add_argument(
        "--run",
        nargs="+",
        default=[],
        metavar="ID",
        help="also the $ per million inferences of these runs on the device",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("delete", help="delete one profile")
    p.add_argument("device", metavar="DEVICE")
    p.add_argument("--name", default="", help="profile name (default: the unnamed one)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_cmd_delete)
