"""`wattbench export` and `wattbench import`: runs to and from portable bundles
(docs/bundle-format.md)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from wattbench.cli.common import EXIT_OK, plural, workbench
from wattbench.domain import units
from wattbench.domain.errors import BadInputError

log = logging.getLogger(__name__)


def _cmd_export(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all):
        raise BadInputError("Give run ids or --all (not both): wattbench export ID... -o FILE")
    with workbench(args) as wb:
        s = wb.export_bundle(None if args.all else args.ids, args.output)
    print(
        f"Exported {plural(len(s.run_ids), 'run')} from {plural(s.machines, 'machine')} to "
        f"{s.path} ({units.size_bytes(s.bytes_written)})"
        + (
            f", with {plural(s.cost_profiles, 'cost profile')} of their devices."
            if s.cost_profiles
            else "."
        )
    )
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        s = wb.import_bundle(args.file)
    msg = f"Imported {plural(len(s.added), 'run')}"
    if s.already_present:
        msg += f"; {len(s.already_present)} were already in the store and were left as they are"
    print(msg + ".")
    if s.profiles_added:
        print(
            f"Added {plural(len(s.profiles_added), 'cost profile')}: {', '.join(s.profiles_added)}."
        )
    if s.profiles_kept:
        print(
            f"Kept this store's own cost profile of {', '.join(s.profiles_kept)} (the "
            "bundle's was not imported; `wattbench cost show` shows the one in use)."
        )
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="write runs to a portable bundle file",
        description="Write runs with their machines and raw arrays to "
        "a bundle (a zip of JSON and compressed arrays).",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="run ids (a unique prefix is enough)")
    p.add_argument("--all", action="store_true", help="export every stored run")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="bundle file to write")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser(
        "import",
        help="add the runs of a bundle file to the store",
        description="Check the whole bundle, then add its runs; runs "
        "already in the store are kept once.",
    )
    p.add_argument("file", metavar="FILE", help="bundle written by `wattbench export`")
    p.set_defaults(func=_cmd_import)
