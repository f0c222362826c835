"""``wattbench sensors``: each device, each power source, its status; for an unreadable one,
why and the exact fix. ``--json`` prints the same as one JSON object."""

from __future__ import annotations

import argparse
import logging
import textwrap
from typing import Any

from wattbench.cli.common import EXIT_OK, print_json
from wattbench.domain.codec import to_document
from wattbench.service import inventory

log = logging.getLogger(__name__)

JSON_FORMAT = "wattbench.sensors"
JSON_FORMAT_VERSION = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sensors",
        help="list power sensors, their status and how to fix unreadable ones",
        description="Show every device and power source Wattbench can use to measure energy, "
        "whether it can be read, and for each one that cannot, why and the exact fix.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--sys-root",
        metavar="PATH",
        default=None,
        help="sysfs root to read (default: $WATTBENCH_SYSFS_ROOT or /sys)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rep = inventory.sensor_report(args.sys_root)
    if args.json:
        print_json(
            {
                "format": JSON_FORMAT,
                "format_version": JSON_FORMAT_VERSION,
                "sys_root": rep.sys_root,
                "discovery_s": rep.discovery_s,
                "measured": rep.measured,
                "sensors": to_document(rep.diagnoses),
            }
        )
        return EXIT_OK
    print(f"Power sensors (sysfs root {rep.sys_root}; discovery {rep.discovery_s:.3f} s)")
    devices: dict[str, list[Any]] = {}
    shown_fixes: dict[str, str] = {}  # each fix in full once, then referred to
    for d in rep.diagnoses:
        devices.setdefault(d.device, []).append(d)
    for device, diags in devices.items():
        print(f"\n{device}")
        for d in diags:
            label = d.method or d.path or ""
            print(f"  {d.source:<8} {d.name:<16} {d.status:<10} {label}")
            if d.estimate:
                print(
                    "      ESTIMATE — a model, not a measurement; never ranked with measured "
                    "figures"
                )
            for title, text in (("why", d.why), ("note", d.note)):
                if text:
                    print(
                        textwrap.fill(
                            text,
                            width=100,
                            initial_indent=f"      {title}: ",
                            subsequent_indent="        ",
                            break_on_hyphens=False,
                        )
                    )
            if d.fix and d.fix in shown_fixes:
                print(f"      fix: the same as for {shown_fixes[d.fix]} above")
            elif d.fix:
                shown_fixes[d.fix] = f"{d.source} {d.name}"
                print("      fix:")
                print(textwrap.indent(d.fix, "        "))
    print()
    if rep.measured:
        print("Energy will be measured with the sources marked ok.")
    else:
        print(
            "No power sensor can be read here: energy figures will be n/a or a TDP × load "
            "estimate (labelled as such)."
        )
    return EXIT_OK
