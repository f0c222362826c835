"""`wattbench claim`: check a claim such as "B ≥ 0.8 × A on tokens/s" on stored runs.

A claim comes from a TOML file (docs/claims.md) or from the flags; each is answered confirmed,
refuted, inconclusive (with the runs per side that would settle it) or unreliable, with the
ratio's 95 % interval and the runs behind each side. The exit status is 0 when every claim
could be evaluated, whatever its verdict; the verdicts are in the output (and in --json).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wattbench.cli.common import EXIT_OK, plural, print_json, print_lines, workbench
from wattbench.domain.claim import Claim, claims_from_toml, parse_expression, parse_side
from wattbench.domain.codec import to_document
from wattbench.domain.errors import BadInputError
from wattbench.service.claim_text import claim_lines


def read_claims_file(file: str) -> list[Claim]:
    """The claims of a TOML file (docs/claims.md), read as data."""
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"Cannot read the claims file {path}: {exc}.", field="file") from None
    return claims_from_toml(text)


def _claims(args: argparse.Namespace) -> list[Claim]:
    flags = (args.a, args.b, args.metric, args.claim)
    if args.file is not None:
        if any(flags):
            raise BadInputError(
                "Give a claims file or the --a/--b/--metric/--claim flags, not both."
            )
        return read_claims_file(args.file)
    if not all(flags):
        raise BadInputError(
            "Give a claims file, or all of --a, --b, --metric and --claim "
            "(for example --a device=cuda:0 --b device=cpu --metric throughput "
            "--claim 'B >= 0.8 * A')."
        )
    relation, factor = parse_expression(args.claim)
    return [Claim(parse_side(args.a), parse_side(args.b), args.metric, relation, factor, args.name)]


def _cmd_claim(args: argparse.Namespace) -> int:
    claims = _claims(args)
    with workbench(args) as wb:
        results = wb.check_claims(claims, energy_view=args.energy)
    if args.json:
        print_json({"claims": [to_document(r) for r in results]})
        return EXIT_OK
    out: list[str] = []
    for r in results:
        out += [*claim_lines(r), ""]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    out.append(
        f"{plural(len(results), 'claim')}: "
        + ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
        + "."
    )
    print_lines(out)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "claim",
        help="check a claim such as 'B >= 0.8 * A on tokens/s' on stored runs",
        description="Check claims on stored runs: confirmed, refuted, inconclusive or "
        "unreliable, by where the 95 %% interval of the ratio B/A lies against the factor. "
        "Sides are key=value lists: device, runtime, model, tag, ids (ids joined by +).",
    )
    p.add_argument("file", nargs="?", default=None, help="a TOML file of [[claim]] tables")
    p.add_argument("--a", metavar="SIDE", help="side A, e.g. device=cuda:0,tag=a100")
    p.add_argument("--b", metavar="SIDE", help="side B, e.g. device=cpu,runtime=onnxruntime")
    p.add_argument("--metric", metavar="METRIC", help="e.g. throughput, tokens/s, perf-per-watt")
    p.add_argument("--claim", metavar="EXPR", help="'B >= 0.8 * A' or 'B <= 1.2 * A'")
    p.add_argument("--name", default="", help="a name for the claim")
    p.add_argument(
        "--energy",
        choices=("device", "system"),
        default="device",
        help="energy view of energy-based metrics",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_claim)
