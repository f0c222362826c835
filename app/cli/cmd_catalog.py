"""``wattbench models`` and ``wattbench devices``: what can be run, and where.

``models`` lists the catalog (or describes one model, a file included, with its inputs);
``devices`` lists every device each runtime reaches and why it is or is not usable.
Both print a plain table, or JSON with ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from wattbench.domain.errors import BadInputError

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


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BadInputError(f"Cannot read {what} {item!r}: write NAME=VALUE.")
        out[name.strip()] = value.strip()
    return out


def _model_dict(entry: Any) -> dict[str, Any]:
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


def _inputs_text(entry: Any) -> str:
    from wattbench.backends.models.inputs import format_shape

    return ", ".join(f"{s.name}[{format_shape(s.shape)}]:{s.dtype}" for s in entry.inputs)


def _params_text(n: int | None) -> str:
    if n is None:
        return "?"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def run_models(args: argparse.Namespace) -> int:
    from wattbench.backends.models import catalog

    if args.ref:
        dims = {k: int(v) for k, v in _pairs(args.dim, "--dim").items() if v.isdigit()}
        bad = [k for k, v in _pairs(args.dim, "--dim").items() if not v.isdigit()]
        if bad:
            raise BadInputError(f"--dim {bad[0]} needs a whole number, e.g. --dim {bad[0]}=8.")
        shapes = _pairs(args.input_shape, "--input-shape")
        if args.batch is not None:
            dims[catalog.BATCH] = args.batch
        entries = [catalog.resolve_model(args.ref, dims=dims or None, input_shapes=shapes or None)]
    else:
        entries = catalog.list_models()
    if args.json:
        json.dump([_model_dict(e) for e in entries], sys.stdout, indent=2)
        print()
        return 0
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
    print(_table(rows, ["MODEL", "FORMAT", "PARAMS", "INPUTS", "DESCRIPTION"]))
    print(
        "\nDynamic dimensions: 'batch' is --batch; set others with --dim NAME=SIZE "
        "(built-in transformers default to seq_len=128). A model file is given by its path."
    )
    return 0


def run_devices(args: argparse.Namespace) -> int:
    from wattbench.backends import devices, system
    from wattbench.backends.runtimes import registry

    names = args.runtime or registry.runtime_names()
    for name in names:
        registry.get_runtime(name)  # unknown name -> a clear error
    status = {n: a for n, a in devices.runtime_status().items() if n in names}
    infos = devices.list_devices(names)
    cpu = system.cpu_summary()
    if args.json:
        out = {
            "runtimes": {
                n: {"available": a.ok, "reason": a.reason, "version": a.version}
                for n, a in status.items()
            },
            "cpu": cpu,
            "devices": [devices.device_dict(i) for i in infos],
        }
        json.dump(out, sys.stdout, indent=2, default=str)
        print()
        return 0
    print(
        f"CPU: {cpu.get('model') or 'unknown model'} · sockets {cpu.get('sockets') or '?'} · "
        f"cores {cpu.get('physical_cores') or '?'} · threads {cpu.get('logical_cpus') or '?'}"
        f" · ISA {' '.join(cpu.get('isa') or []) or 'unknown'}"
    )
    for n, a in status.items():
        state = f"{a.version}" if a.ok else "NOT AVAILABLE"
        print(f"runtime {n}: {state} — {a.reason}")
    print()
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
        for i in infos
    ]
    print(_table(rows, ["DEVICE", "RUNTIME", "KIND", "NAME", "USABLE", "PRECISIONS", "WHY"]))
    return 0
