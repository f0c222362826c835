"""The fleet options that ``wattbench run --on`` shares with ``scheduler``, ``agent`` and
``fleet hosts``: the scheduler's address, the TLS files, and the connection ``run --on`` opens."""

from __future__ import annotations

import argparse

from wattbench.service.fleet_agent import DEFAULT_PORT
from wattbench.service.fleet_link import SCHEDULER_ENV, TLS_ENV, Fleet, TlsFiles, parse_hosts


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS (a tls:// scheduler; default: $WATTBENCH_TLS_*)")
    for what, env in TLS_ENV.items():
        group.add_argument(
            f"--tls-{what}", metavar="PEM", default=None, help=f"the {what} file (${env})"
        )


def add_scheduler_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help=f"the fleet's scheduler, tcp://HOST:{DEFAULT_PORT} or tls://… (default: "
        f"${SCHEDULER_ENV})",
    )


def tls_from(args: argparse.Namespace) -> TlsFiles | None:
    given = TlsFiles.given(args.tls_ca, args.tls_cert, args.tls_key)
    return given if given is not None else TlsFiles.from_env()


def open_fleet(args: argparse.Namespace) -> tuple[Fleet, list[str]]:
    """``run --on``: the connection and the hosts chosen (BadInputError for an unknown one)."""
    names = parse_hosts(args.on)
    fleet = Fleet.connect(args.scheduler, tls_from(args))
    try:
        hosts = fleet.choose(names)
    except BaseException:
        fleet.close()
        raise
    return fleet, [h.name for h in hosts]


__all__ = ["add_scheduler_argument", "add_tls_arguments", "open_fleet", "tls_from"]
