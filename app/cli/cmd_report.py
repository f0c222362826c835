"""``wattbench report ID... [--baseline ID] [--energy device|system] [--claims FILE]
[--budget 1MW ...] -o FILE``.

The service loads the runs and writes a comparison report whose format follows FILE's
suffix: .html (self-contained), .pdf, .csv (one row per run) or .json (docs/report-json.md).
Cost figures use the store's cost profiles (one per device: the unnamed one, else the first).
--claims adds the claims of a TOML file (as ``wattbench claim`` reads it), checked on the
store; --budget and the other flags of ``wattbench plan`` add the capacity plan of the runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from wattbench.cli.cmd_claim import read_claims_file
from wattbench.cli.cmd_plan import add_planner_flags, planner_inputs
from wattbench.cli.common import EXIT_OK, workbench
from wattbench.domain.errors import BadInputError
from wattbench.reports import REPORT_SUFFIXES

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a comparison report (HTML, PDF, CSV or JSON)",
        description="Compare stored runs and write the report to FILE; the suffix picks the "
        "format: .html (one self-contained file), .pdf, .csv (one row per run) or .json. "
        "--claims adds each claim of a file with its verdict, checked on the store; --budget "
        "(and the other flags of `wattbench plan`) adds the capacity plan of the runs.",
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
    parser.add_argument("--claims", metavar="FILE", default=None,
                        help="a TOML file of [[claim]] tables (docs/claims.md): each claim, "
                        "checked on the stored runs, with its verdict")  # fmt: skip
    add_planner_flags(parser, required=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = str(args.output)
    if not out.lower().endswith(REPORT_SUFFIXES):
        raise BadInputError(f"-o {out!r}: the report file must end in "
                            f"{', '.join(REPORT_SUFFIXES)}.")  # fmt: skip
    facility, servers = planner_inputs(args)
    claims = [] if args.claims is None else read_claims_file(args.claims)
    with workbench(args) as wb:
        path, n = wb.write_report(args.ids, out, baseline_id=args.baseline,
                                  energy_view=args.energy, noise=args.noise, claims=claims,
                                  facility=facility, servers=servers)  # fmt: skip
    print(f"Wrote {path} ({n} runs).", file=sys.stderr)
    return EXIT_OK
