"""The headless ``wattbench`` command line.

Each command lives in its own module with ``register(subparsers)``; that function adds a
parser whose ``func`` default takes the parsed arguments and returns an exit code.
Exit codes: 0 ok, 1 internal error, 2 bad input, 3 a run failed, 4 cancelled, 5 a measured
run could not be stored (kept aside), 141 the reader of the output went away (``| head``).
Tracebacks are shown with -v only; otherwise one line says what happened.

Only the module of the command asked for is imported (each pulls in its own layers: the store,
the reports, the device inventory); ``--help``, no command or an unknown one build the parser
of every command.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from wattbench import __version__
from wattbench.domain.errors import WattbenchError

log = logging.getLogger(__name__)

# Command modules, in the order `--help` lists them, with the commands each registers.
COMMANDS: dict[str, tuple[str, ...]] = {
    "cmd_run": ("run",),
    "cmd_catalog": ("models", "devices"),
    "cmd_sensors": ("sensors",),
    "cmd_store": ("runs", "show", "tag", "note", "delete"),
    "cmd_compare": ("compare",),
    "cmd_bundle": ("export", "import"),
    "cmd_cost": ("cost",),
    "cmd_claim": ("claim",),
    "cmd_plan": ("plan",),
    "cmd_report": ("report",),
    "cmd_fleet": ("scheduler", "agent", "fleet"),
    "cmd_gui": ("gui",),
}
_OPTIONS_WITH_VALUE = ("--db",)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"wattbench.cli.{name}")


def command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not a top-level option)."""
    args = iter(argv)
    for arg in args:
        if arg in _OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
        elif arg in ("-h", "--help", "--version"):
            return None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every command, or only ``command`` (and its module) when
    it is a known one."""
    parser = argparse.ArgumentParser(
        prog="wattbench",
        description="Which of your devices runs this AI model best — per second, per joule, "
        "per dollar.",
    )
    parser.add_argument("--version", action="version", version=f"wattbench {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL or SQLite file of the run store (default: $WATTBENCH_DB or a "
        "file in the user's data folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [m for m, names in COMMANDS.items() if command in names] or list(COMMANDS)
    for name in modules:
        _module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``wattbench`` program (``argv`` None: the process's own arguments)."""
    program = argv is None
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        if program:
            # the interpreter's last garbage collection walks every object the run left (a
            # quarter of a second with SQLAlchemy loaded); the process ends next, so skip it
            gc.freeze()


def _main(argv: list[str]) -> int:
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    from wattbench.cli.common import (
        EXIT_BAD_INPUT,
        EXIT_BROKEN_PIPE,
        EXIT_CANCELLED,
        EXIT_ERROR,
        print_error,
    )

    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that went away is found here, not at interpreter exit
        return code
    except WattbenchError as exc:
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wattbench: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `wattbench runs | head`: the reader has what it wanted
        # stdout is gone; point it at /dev/null so the interpreter's final flush is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug: one line, the traceback with -v
        if args.verbose:
            raise
        print(
            f"wattbench: internal error: {type(exc).__name__}: {exc} (run again with -v for "
            "the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
