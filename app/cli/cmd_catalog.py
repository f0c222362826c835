"""``wattbench models`` and ``wattbench devices``: what can be run, and where.

``models`` lists the catalog (or describes one model, a file included, with its inputs);
``devices`` lists every device each runtime reaches and why it is or is not usable.
Both print a plain table, or JSON with ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from wattbench.backends.models.base import ModelEntry
from wattbench.backends.models.inputs import format_shape
from wattbench.cli.common import EXIT_OK, print_json, print_table
from wattbench.domain import units
from wattbench.domain.codec import to_document
from wattbench.service import inventory
from wattbench.service.request import parse_dims, parse_input_shapes

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list the model catalog, or describe one model")
    p.add_argument("ref", nargs="?", help="a catalog ref or a model file to describe")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--dim", action="append", default=[], metavar="NAME=SIZE", help="a dynamic dimension"
    )
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=SHAPE",
        help="an input's shape, e.g. x=1x3x224x224:float32 (TorchScript files)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="the batch size to check the inputs with (default: the file's fixed batch, else 1)",
    )
    p.set_defaults(func=run_models)
    d = sub.add_parser("devices", help="list the compute devices and whether they are usable")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.add_argument("--runtime", action="append", default=None, help="only this runtime")
    d.set_defaults(func=run_devices)


def _model_dict(entry: ModelEntry) -> dict[str, Any]:
    return {
        "ref": entry.ref,
        "name": entry.name,
        "family": entry.family,
        "format": entry.format,
        "description": entry.description,
        "parameters": entry.parameters,
        "generative": entry.generative,
        "path": entry.path,
        "inputs": [
            {"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in entry.inputs
        ],
        "default_dims": dict(entry.default_dims),
    }


def _inputs_text(entry: ModelEntry) -> str:
    return ", ".join(f"{s.name}[{format_shape(s.shape)}]:{s.dtype}" for s in entry.inputs)


def _params_text(n: int | None) -> str:
    if n is None:
        return "?"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{units.number(n / scale, 2)}{unit}"
    return str(n)


def run_models(args: argparse.Namespace) -> int:
    if args.ref:
        entries = [
            inventory.describe_model(
                args.ref,
                dims=parse_dims(args.dim) if args.dim else None,
                batch=args.batch,
                input_shapes=parse_input_shapes(args.input_shape),
            )
        ]
    else:
        entries = inventory.list_models()
    if args.json:
        print_json([_model_dict(e) for e in entries])
        return EXIT_OK
    rows = [
        [
            e.ref,
            e.format + (" gen" if e.generative else ""),
            _params_text(e.parameters),
            _inputs_text(e),
            e.description,
        ]
        for e in entries
    ]
    print_table(("MODEL", "FORMAT", "PARAMS", "INPUTS", "DESCRIPTION"), rows)
    print(
        "\nDynamic dimensions: 'batch' is --batch; set others with --dim NAME=SIZE "
        "(built-in transformers default to seq_len=128). A model file is given by its path."
    )
    return EXIT_OK


def run_devices(args: argparse.Namespace) -> int:
    inv = inventory.device_inventory(args.runtime, with_sensors=False)
    if args.json:
        print_json(
            {
                "runtimes": {
                    n: {"available": a.ok, "reason": a.reason, "version": a.version}
                    for n, a in inv.runtimes.items()
                },
                "cpu": dict(inv.cpu),
                "devices": to_document(list(inv.infos)),
            }
        )
        return EXIT_OK
    cpu = inv.cpu
    print(
        f"CPU: {cpu.get('model') or 'unknown model'} · sockets {cpu.get('sockets') or '?'} · "
        f"cores {cpu.get('physical_cores') or '?'} · threads {cpu.get('logical_cpus') or '?'}"
        f" · ISA {' '.join(cpu.get('isa') or []) or 'unknown'}"
    )
    for n, a in inv.runtimes.items():
        state = f"{a.version}" if a.ok else "NOT AVAILABLE"
        print(f"runtime {n}: {state} — {a.reason}")
    for note in inv.notes:
        print(f"note: {note}")
    rows = [
        [
            i.id,
            i.runtime,
            i.kind,
            i.name,
            "yes" if i.usable else "no",
            ",".join(i.precisions) or "-",
            i.reason,
        ]
        for i in inv.infos
    ]
    print_table(("DEVICE", "RUNTIME", "KIND", "NAME", "USABLE", "PRECISIONS", "WHY"), rows)
    return EXIT_OK
