"""``wattbench scheduler``, ``wattbench agent`` and ``wattbench fleet hosts``: a fleet of
hosts on Dask distributed (service/fleet.py). ``wattbench run --on`` dispatches to it.

Dask's wire protocol unpickles what it receives: the scheduler listens on loopback unless
``--host`` says otherwise, and anything beyond one machine should use TLS on a trusted network.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
from typing import Any

from wattbench.cli.common import EXIT_OK, print_json
from wattbench.cli.fleet_args import add_scheduler_argument, add_tls_arguments, tls_from
from wattbench.domain.codec import to_document
from wattbench.service.fleet_agent import DEFAULT_PORT
from wattbench.service.fleet_link import Fleet

log = logging.getLogger(__name__)

JSON_FORMAT = "wattbench.fleet-hosts"
JSON_FORMAT_VERSION = 1
TRUSTED = "Dask unpickles what it receives: use it on a trusted network only, with TLS"


def register(subparsers: Any) -> None:
    sched = subparsers.add_parser(
        "scheduler",
        help="start a fleet's scheduler (Dask distributed)",
        description=f"Start the scheduler that fleet agents join. It listens on loopback "
        f"unless --host names an interface. {TRUSTED}.",
    )
    sched.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    sched.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    add_tls_arguments(sched)
    sched.set_defaults(func=run_scheduler)

    agent = subparsers.add_parser(
        "agent",
        help="join this host to a fleet's scheduler",
        description="Run fleet runs on this host: one at a time, each in its own measuring "
        f"worker started with this host's environment. {TRUSTED}.",
    )
    add_scheduler_argument(agent)
    agent.add_argument(
        "--name", default=None, help="this host's name in the fleet (default: its hostname)"
    )
    agent.add_argument(
        "--listen",
        metavar="HOST",
        default=None,
        help="interface to listen on (default: loopback for a scheduler on loopback, else the "
        "one that reaches the scheduler)",
    )
    add_tls_arguments(agent)
    agent.set_defaults(func=run_agent)

    fleet = subparsers.add_parser(
        "fleet", help="the fleet's hosts", description="The hosts that joined the scheduler."
    )
    fleet_sub = fleet.add_subparsers(dest="fleet_command", metavar="COMMAND", required=True)
    hosts = fleet_sub.add_parser("hosts", help="list the connected hosts and their devices")
    add_scheduler_argument(hosts)
    add_tls_arguments(hosts)
    hosts.add_argument("--json", action="store_true", help="print one JSON object")
    hosts.set_defaults(func=run_hosts)


def _ready(what: str) -> Any:
    def said(address: str) -> None:
        print(f"wattbench {what} at {address}", flush=True)

    return said


def run_scheduler(args: argparse.Namespace) -> int:
    from wattbench.service.fleet_agent import serve_scheduler
    from wattbench.service.fleet_link import security_for

    tls = tls_from(args)
    address = f"{'tls' if tls else 'tcp'}://{args.host}:{args.port}"
    security = security_for(address, tls)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        print(f"wattbench: listening on {args.host}: {TRUSTED}.", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
        serve_scheduler(args.host, args.port, security, _ready("scheduler"))
    return EXIT_OK


def run_agent(args: argparse.Namespace) -> int:
    from wattbench.service.fleet_agent import serve_agent
    from wattbench.service.fleet_link import scheduler_address, security_for

    address = scheduler_address(args.scheduler)
    security = security_for(address, tls_from(args))
    name = args.name or socket.gethostname().split(".")[0]
    from wattbench.domain.spec import RunSpec

    RunSpec(model="-", host=name)  # the name's check, before anything starts
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
        serve_agent(address, name, args.listen, security, _ready(f"agent {name}"))
    return EXIT_OK


def run_hosts(args: argparse.Namespace) -> int:
    with Fleet.connect(args.scheduler, tls_from(args)) as fleet:
        hosts = fleet.hosts(fresh=True)
    if args.json:
        print_json(
            {
                "format": JSON_FORMAT,
                "format_version": JSON_FORMAT_VERSION,
                "scheduler": fleet.address,
                "hosts": to_document(hosts),
            }
        )
        return EXIT_OK
    if not hosts:
        print(
            f"No host has joined {fleet.address}: start `wattbench agent --scheduler "
            f"{fleet.address}` on each host."
        )
        return EXIT_OK
    print(f"{len(hosts)} host{'s' if len(hosts) != 1 else ''} at {fleet.address}")
    for h in hosts:
        state = "running a run" if h.running else "idle"
        print(f"\n{h.name}  ({h.address}, {state})")
        inv = h.inventory
        if inv is None:
            print(f"  inventory n/a: {h.problem}")
            continue
        print(
            f"  {inv.hostname}: {inv.cpu or 'CPU n/a'}, {inv.logical_cpus or '?'} CPUs, "
            f"{inv.architecture or '?'}; wattbench {inv.wattbench_version}"
        )
        for d in (d for d in inv.devices if d.runtimes):
            power = ", ".join(d.power) or "power n/a (no source reads it)"
            print(f"  {d.id:<8} {d.name}: {', '.join(d.runtimes)}; {power}")
        unusable = [d.id for d in inv.devices if not d.runtimes]
        if unusable:
            print(f"  no runtime here can use: {', '.join(unusable)}")
        for note in inv.notes:
            print(f"  note: {note}")
    return EXIT_OK


__all__ = ["register"]
