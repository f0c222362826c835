"""``wattbench report ID... [--baseline ID] [--energy device|system] -o FILE``.

The service loads the runs and writes a comparison report whose format follows FILE's
suffix: .html (self-contained), .pdf, .csv (one row per run) or .json (docs/report-json.md).
Cost figures use the store's cost profiles (one per device: the unnamed one, else the first).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from wattbench.cli.common import EXIT_OK, workbench
from wattbench.domain.errors import BadInputError
from wattbench.reports import REPORT_SUFFIXES

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a comparison report (HTML, PDF, CSV or JSON)",
        description="Compare stored runs and write the report to FILE; the suffix picks the "
        "format: .html (one self-contained file), .pdf, .csv (one row per run) or .json.",
    )
    parser.add_argument("ids", nargs="+", metavar="ID", help="run ids (a unique prefix is enough)")
    parser.add_argument(
        "--baseline",
        metavar="ID",
        default=None,
        help="the run whose configuration is the baseline (default: the first)",
    )
    parser.add_argument(
        "--energy",
        choices=("device", "system"),
        default="device",
        help="energy view: the device's own domains, or every measured domain",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=None,
        metavar="FRACTION",
        help="noise threshold of the verdicts (default 0.01 = ±1 %%)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="report file: .html, .pdf, .csv or .json")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = str(args.output)
    if not out.lower().endswith(REPORT_SUFFIXES):
        raise BadInputError(f"-o {out!r}: the report file must end in "
                            f"{', '.join(REPORT_SUFFIXES)}.")  # fmt: skip
    with workbench(args) as wb:
        path, n = wb.write_report(
            args.ids, out, baseline_id=args.baseline, energy_view=args.energy, noise=args.noise
        )
    print(f"Wrote {path} ({n} runs).", file=sys.stderr)
    return EXIT_OK
