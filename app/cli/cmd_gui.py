"""`wattbench gui`: open the desktop workbench (or say how to use the CLI without a display)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="open the desktop workbench",
        description="Open the Wattbench window: pick, run, watch and compare.",
    )
    from wattbench.gui.launch import add_arguments  # stdlib only: no Qt is imported here

    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Qt is imported by launch.run_app only when a display exists, so this command (and the
    # rest of the CLI) works on machines without Qt's system libraries.
    from wattbench.gui.launch import run_app

    return run_app(db_url=getattr(args, "db", None), page=args.page, theme_name=args.theme)
