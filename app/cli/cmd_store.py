"""`wattbench runs | show | tag | note | delete`: the stored runs from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BAD_INPUT = 2


# -- shared helpers (cmd_compare and cmd_bundle use them too) ---------------------------------


@contextmanager
def store_from(args: argparse.Namespace) -> Iterator[Any]:
    """The run store of --db / $WATTBENCH_DB / the default file, closed afterwards."""
    from wattbench.db.store import open_store

    store = open_store(getattr(args, "db", None))
    try:
        yield store
    finally:
        store.close()


def fmt_ns(ns: float | None) -> str:
    """A duration in the unit that suits it: 812 ns, 35.2 µs, 4.10 ms, 1.25 s."""
    if ns is None:
        return "n/a"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.0f} ns"


def fmt_num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 1e6:
        text = f"{x:.3e}"
    elif abs(x) >= 1e4:  # '14963', not '1.496e+04' (4 significant digits would go exponential)
        text = f"{x:.0f}"
    else:
        text = f"{x:.4g}"
    return f"{text} {unit}".rstrip()


def fmt_energy_j(j: float | None) -> str:
    if j is None:
        return "n/a"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6)):
        if abs(j) >= scale:
            return f"{j / scale:.3g} {unit}"
    return f"{j / 1e-9:.3g} nJ"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table (no colours: it is also read from files and pipes)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, allow_nan=False, default=str)
    sys.stdout.write("\n")


# -- runs ------------------------------------------------------------------------------------


def _cmd_runs(args: argparse.Namespace) -> int:
    with store_from(args) as store:
        runs = store.list_runs(
            model=args.model,
            device=args.device,
            tag=args.tag,
            status=args.status,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    if args.json:
        print_json([r.to_dict() for r in runs])
        return EXIT_OK
    if not runs:
        print(
            "No stored runs match."
            if any((args.model, args.device, args.tag, args.status, args.since, args.until))
            else "No runs stored yet: `wattbench run --model ... --device ...` makes one."
        )
        return EXIT_OK
    rows = []
    for r in runs:
        thr = fmt_num(r.throughput_items_per_s, "/s")
        if r.throughput_items_per_s and r.throughput_lo is not None and r.throughput_hi:
            thr += f" ±{(r.throughput_hi - r.throughput_lo) / 2 / r.throughput_items_per_s:.1%}"
        rows.append(
            [
                r.id[:8],
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.status.value,
                r.model_ref,
                r.runtime,
                r.device,
                r.precision,
                str(r.batch_size),
                thr,
                fmt_ns(r.p50_ns),
                fmt_ns(r.p99_ns),
                fmt_energy_j(r.energy_per_item_j)
                + (" (est.)" if r.energy_source and "estimate" in r.energy_source else ""),
                ",".join(r.tags),
            ]
        )
    print(
        table(
            [
                "ID",
                "CREATED (UTC)",
                "STATUS",
                "MODEL",
                "RUNTIME",
                "DEVICE",
                "PREC",
                "BATCH",
                "THROUGHPUT",
                "P50",
                "P99",
                "ENERGY/ITEM",
                "TAGS",
            ],
            rows,
        )
    )
    print(f"{len(runs)} run{'s' if len(runs) != 1 else ''}")
    return EXIT_OK


# -- show ------------------------------------------------------------------------------------


def show_dict(r: RunResult) -> dict[str, Any]:
    """The run as JSON: everything but the raw arrays, which are described by name and shape."""
    d = r.to_dict(include_arrays=False)
    d["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in r.arrays.items()}
    d["telemetry"] = {
        k: {"name": t.name, "unit": t.unit, "samples": int(t.values.size)}
        for k, t in r.telemetry.items()
    }
    from wattbench.db.values import finite_json

    out: dict[str, Any] = finite_json(d)
    return out


def _show_text(r: RunResult) -> str:
    s = r.spec
    lines = [
        f"Run {r.id}",
        f"  {s.label()}",
        f"  status       {r.status.value}" + (f": {r.reason}" if r.reason else ""),
        f"  created      {r.created_at}   finished {r.finished_at or 'n/a'}",
        f"  scenario     {s.scenario.value}, preset {s.preset}, replicate #{s.repeat + 1}"
        + (f", sweep {s.sweep_id}" if s.sweep_id else ""),
    ]
    if r.model is not None:
        lines.append(
            f"  model        {r.model.name} ({r.model.format}, sha256 {r.model.sha256[:12]})"
        )
    thr = r.throughput_items_per_s
    if thr is not None:
        ci = f" (95 % CI {fmt_num(thr.lo)}–{fmt_num(thr.hi)})" if thr.lo is not None else ""
        lines.append(f"  throughput   {fmt_num(thr.value, 'items/s')}{ci}")
    lat = r.latency
    if lat is not None:
        lines.append(
            f"  latency      mean {fmt_ns(lat.mean_ns)}  n={lat.n}  "
            f"rho={lat.rho:.2%}  converged={'yes' if r.converged else 'no'}"
        )
        for pe in lat.percentiles:
            ci = (
                f"  [{fmt_ns(pe.lo_ns)} – {fmt_ns(pe.hi_ns)}]"
                if pe.lo_ns is not None and pe.hi_ns is not None
                else ""
            )
            lines.append(f"    {pe.name:<7}{fmt_ns(pe.value_ns)}{ci}")
    if r.energy:
        lines.append("  energy")
        for e in r.energy:
            est = " (estimate)" if e.is_estimate else ""
            lines.append(
                f"    {e.domain:<13} {fmt_energy_j(e.energy_per_item_j)}/item  "
                f"{e.avg_power_w:.3g} W avg  [{e.source}]{est}"
            )
    elif r.energy_na_reason:
        lines.append(f"  energy       n/a: {r.energy_na_reason}")
    if r.flags:
        lines.append(f"  flags        {', '.join(r.flags)}")
    if s.tags:
        lines.append(f"  tags         {', '.join(s.tags)}")
    if r.notes:
        lines.append(f"  note         {r.notes}")
    if r.arrays or r.telemetry:
        parts = [f"{k}[{v.size}]" for k, v in r.arrays.items()]
        parts += [f"{k}[{t.values.size}]" for k, t in r.telemetry.items()]
        lines.append(f"  arrays       {', '.join(parts)}")
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace) -> int:
    with store_from(args) as store:
        r = store.get_run(args.id)
    if args.json:
        print_json(show_dict(r))
    else:
        print(_show_text(r))
    return EXIT_OK


# -- tag, note, delete -----------------------------------------------------------------------


def _cmd_tag(args: argparse.Namespace) -> int:
    if len(args.items) < 2:
        raise BadInputError("Give one or more run ids and then the tag: wattbench tag ID... TAG")
    *ids, tag = args.items
    with store_from(args) as store:
        full = [store.resolve_id(i) for i in ids]
        for rid in full:
            if args.remove:
                store.remove_tag(rid, tag)
            else:
                store.add_tag(rid, tag)
    verb = "removed from" if args.remove else "added to"
    print(f"Tag {tag!r} {verb} {len(full)} run{'s' if len(full) != 1 else ''}.")
    return EXIT_OK


def _cmd_note(args: argparse.Namespace) -> int:
    with store_from(args) as store:
        rid = store.resolve_id(args.id)
        store.set_note(rid, args.text)
    print(f"Note saved on run {rid[:8]}.")
    return EXIT_OK


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _cmd_delete(args: argparse.Namespace) -> int:
    with store_from(args) as store:
        full = list(dict.fromkeys(store.resolve_id(i) for i in args.ids))
        if not args.yes:
            if not sys.stdin or not sys.stdin.isatty():
                raise BadInputError(
                    f"Not deleting {len(full)} run(s) without confirmation: add --yes to delete "
                    "without asking."
                )
            label = ", ".join(i[:8] for i in full[:10]) + (" ..." if len(full) > 10 else "")
            if not _confirm(f"Delete {len(full)} run(s) ({label}) and their measurements?"):
                print("Nothing deleted.")
                return EXIT_OK
        n = store.delete_runs(full)
    print(f"Deleted {n} run{'s' if n != 1 else ''}.")
    return EXIT_OK


# -- registration ----------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "runs", help="list the stored runs", description="List the stored runs, newest first."
    )
    p.add_argument("--model", help="model reference or name (a part of it is enough)")
    p.add_argument("--device", help="device, e.g. cpu or cuda:0 (cuda matches every GPU)")
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument(
        "--status", choices=("pending", "running", "done", "failed", "cancelled", "interrupted")
    )
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="created at or after: ISO date/time (local) or an age like 7d, 12h",
    )
    p.add_argument("--until", metavar="WHEN", help="created at or before (same forms)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N runs")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_runs)

    p = subparsers.add_parser("show", help="show one stored run")
    p.add_argument("id", metavar="ID", help="run id (a unique prefix is enough)")
    p.add_argument("--json", action="store_true", help="print the run as JSON (arrays described)")
    p.set_defaults(func=_cmd_show)

    p = subparsers.add_parser("tag", help="tag runs (or remove a tag with --remove)")
    p.add_argument("items", nargs="+", metavar="ID... TAG", help="run ids, then the tag")
    p.add_argument("--remove", action="store_true", help="remove the tag instead")
    p.set_defaults(func=_cmd_tag)

    p = subparsers.add_parser("note", help="set the note of a run")
    p.add_argument("id", metavar="ID")
    p.add_argument("text", metavar="TEXT", help="the note ('' clears it)")
    p.set_defaults(func=_cmd_note)

    p = subparsers.add_parser("delete", help="delete runs and their measurements")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_cmd_delete)
