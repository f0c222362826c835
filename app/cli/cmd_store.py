"""`wattbench runs | show | tag | note | delete`: the stored runs from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from wattbench.cli.common import (
    EXIT_OK,
    plural,
    print_json,
    print_lines,
    print_table,
    workbench,
)
from wattbench.cli.run_output import generation_lines, inference_cost_text
from wattbench.domain import units
from wattbench.domain.codec import to_document
from wattbench.domain.cost import CostProfile, profiles_by_device
from wattbench.domain.errors import BadInputError
from wattbench.domain.instances import instances_lines
from wattbench.domain.interference import interference_text
from wattbench.domain.result import RunResult, RunStatus, result_document
from wattbench.domain.server import server_lines

log = logging.getLogger(__name__)

RUNS_HEADERS = (
    "ID",
    "CREATED (UTC)",
    "STATUS",
    "MODEL",
    "RUNTIME",
    "DEVICE",
    "PREC",
    "BATCH",
    "THREADS",
    "SCENARIO",
    "THROUGHPUT",
    "P50",
    "P99",
    "ENERGY/ITEM",
    "TAGS",
)
# left out, in this order, where the console is too narrow for every column (``show ID`` and
# ``--json`` have them all): the creation minute, the median beside the p99, the tags, the
# precision (fp32 for most runs)
RUNS_DROPPABLE = ("CREATED (UTC)", "P50", "TAGS", "PREC")


# -- runs ------------------------------------------------------------------------------------


def _cmd_runs(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        runs = wb.list_runs(
            model=args.model,
            device=args.device,
            tag=args.tag,
            status=args.status,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    if args.json:
        print_json(to_document(runs))
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
        thr = units.with_unit(r.throughput_items_per_s, "/s")
        if units.finite(r.throughput_items_per_s):
            brackets = units.span(r.throughput_lo, r.throughput_hi)
            thr += f" {brackets}" if brackets else ""
        estimate = r.energy_source is not None and "estimate" in r.energy_source
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
                str(r.threads) if r.threads else "default",
                r.scenario,
                thr,
                units.duration_ns(r.p50_ns),
                units.duration_ns(r.p99_ns),
                units.energy_j(r.energy_per_item_j) + (" (est.)" if estimate else ""),
                ",".join(r.tags),
            ]
        )
    print_table(RUNS_HEADERS, rows, droppable=RUNS_DROPPABLE)
    print(plural(len(runs), "run"))
    return EXIT_OK


# -- show ------------------------------------------------------------------------------------


def show_dict(r: RunResult) -> dict[str, Any]:
    """The run as JSON: everything but the raw arrays, which are described by name and shape."""
    d = result_document(r)
    d["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in r.arrays.items()}
    d["telemetry"] = {
        k: {"name": t.name, "unit": t.unit, "samples": int(t.values.size)}
        for k, t in r.telemetry.items()
    }
    return d


def _show_text(r: RunResult, profile: CostProfile | None = None) -> list[str]:
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
        lines.append(f"  throughput   {units.estimate(thr.value, thr.lo, thr.hi)} items/s")
    lat = r.latency
    if lat is not None:
        lines.append(
            f"  latency      {units.per_call_label(s.batch_size)}: mean "
            f"{units.estimate(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns, units.duration_ns)}"
            + (f", {units.per_item(lat.mean_ns, s.batch_size)}" if s.batch_size > 1 else "")
        )
        lines.append(
            f"  precision    {units.rho(lat.rho)}  n={units.count(lat.n)}  "
            f"converged={'yes' if r.converged else 'no'}"
        )
        for pe in lat.percentiles:
            est = units.estimate(pe.value_ns, pe.lo_ns, pe.hi_ns, units.duration_ns)
            lines.append(f"    {pe.name:<7}{est}" + ("" if pe.headline else " (not a headline)"))
    if r.phases.harness_efficiency is not None:
        lines.append(f"  harness      {units.eta(r.phases.harness_efficiency)}")
    lines += [f"  {line}" for line in generation_lines(r, profile)]
    lines += [f"  {line}" for line in (instances_lines(r.instances) if r.instances else [])]
    lines += [f"  {line}" for line in (server_lines(r.server) if r.server else [])]
    if profile is not None and r.generation is None and r.status is RunStatus.DONE:
        lines.append(f"  cost         {inference_cost_text(r, profile)}")
    if r.energy:
        lines.append("  energy")
        for e in r.energy:
            est = " (estimate)" if e.is_estimate else ""
            lines.append(
                f"    {e.domain:<13} {units.energy_j(e.energy_per_item_j)}/item  "
                f"{units.power_w(e.avg_power_w)} avg  [{e.source}]{est}"
            )
    elif r.energy_na_reason:
        lines.append(f"  energy       n/a: {r.energy_na_reason}")
    if r.flags:
        lines.append(f"  flags        {', '.join(r.flags)}")
    if r.ok:
        lines.append(f"  interference {interference_text(r.interference)}")
    if s.tags:
        lines.append(f"  tags         {', '.join(s.tags)}")
    if r.notes:
        lines.append(f"  note         {r.notes}")
    if r.arrays or r.telemetry:
        parts = [f"{k}[{v.size}]" for k, v in r.arrays.items()]
        parts += [f"{k}[{t.values.size}]" for k, t in r.telemetry.items()]
        lines.append(f"  arrays       {', '.join(parts)}")
    return lines


def _cmd_show(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        r = wb.get_run(args.id)
        # $ per million (inferences or output tokens) needs the device's cost profile
        profile = None
        if not args.json:
            profile = profiles_by_device(wb.cost_profiles(r.spec.device)).get(r.spec.device)
    if args.json:
        print_json(show_dict(r))
    else:
        print_lines(_show_text(r, profile))
    return EXIT_OK


# -- tag, note, delete -----------------------------------------------------------------------


def _cmd_tag(args: argparse.Namespace) -> int:
    if len(args.items) < 2:
        raise BadInputError("Give one or more run ids and then the tag: wattbench tag ID... TAG")
    *ids, tag = args.items
    with workbench(args) as wb:
        full = wb.remove_tag(ids, tag) if args.remove else wb.add_tag(ids, tag)
    verb = "removed from" if args.remove else "added to"
    print(f"Tag {tag!r} {verb} {plural(len(full), 'run')}.")
    return EXIT_OK


def _cmd_note(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        rid = wb.set_note(args.id, args.text)
    print(f"Note saved on run {rid[:8]}.")
    return EXIT_OK


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _cmd_delete(args: argparse.Namespace) -> int:
    with workbench(args) as wb:
        full = wb.resolve_ids(args.ids)
        if not args.yes:
            if not sys.stdin or not sys.stdin.isatty():
                raise BadInputError(
                    f"Not deleting {plural(len(full), 'run')} without confirmation: add --yes "
                    "to delete without asking."
                )
            label = ", ".join(i[:8] for i in full[:10]) + (" ..." if len(full) > 10 else "")
            if not _confirm(f"Delete {plural(len(full), 'run')} ({label}) and their measurements?"):
                print("Nothing deleted.")
                return EXIT_OK
        n = wb.delete_runs(full)
    print(f"Deleted {plural(n, 'run')}.")
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
