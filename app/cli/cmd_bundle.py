"""`wattbench export` and `wattbench import`: runs to and from portable bundles
(docs/bundle-format.md)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from wattbench.cli.cmd_store import store_from
from wattbench.domain.errors import BadInputError

log = logging.getLogger(__name__)

EXIT_OK = 0


def _cmd_export(args: argparse.Namespace) -> int:
    from wattbench.db.bundle import export_bundle

    if bool(args.ids) == bool(args.all):
        raise BadInputError("Give run ids or --all (not both): wattbench export ID... -o FILE")
    with store_from(args) as store:
        s = export_bundle(store, None if args.all else args.ids, args.output)
    print(
        f"Exported {len(s.run_ids)} run{'s' if len(s.run_ids) != 1 else ''} from "
        f"{s.machines} machine{'s' if s.machines != 1 else ''} to {s.path} "
        f"({s.bytes_written / 1e6:.2f} MB)."
    )
    return EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    from wattbench.db.bundle import import_bundle

    with store_from(args) as store:
        s = import_bundle(store, args.file)
    msg = f"Imported {len(s.added)} run{'s' if len(s.added) != 1 else ''}"
    if s.already_present:
        msg += f"; {len(s.already_present)} were already in the store and were left as they are"
    print(msg + ".")
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
