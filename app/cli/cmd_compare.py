"""`wattbench compare ID...`: ratios to a baseline with 95 % intervals and verdicts.

The service compares (replicates of one configuration pooled, METHOD.md; the cost metric
with the cost profiles saved in the store); this prints the tables or the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any

from wattbench.cli.common import (
    EXIT_OK,
    Footnotes,
    plural,
    print_json,
    print_lines,
    print_table,
    workbench,
)
from wattbench.domain import units
from wattbench.domain.codec import to_document
from wattbench.engine.board import Board
from wattbench.engine.compare import Comparison
from wattbench.engine.metrics import METRICS, MetricEstimate, metric_name
from wattbench.engine.ratios import Ratio

log = logging.getLogger(__name__)

BOARD_HEADERS = ("QUESTION", "BEST, then RUNNER-UP", "FIGURE", "VS BASELINE, then BEST'S LEAD")


def _iv(value: Any) -> dict[str, Any] | None:
    return None if value is None else {"value": value.value, "lo": value.lo, "hi": value.hi}


def comparison_dict(c: Comparison, board: Board | None = None) -> dict[str, Any]:
    """The comparison (and its verdict board) as plain JSON-able data."""
    groups = []
    for g in c.groups:
        groups.append(
            {
                "label": g.label,
                "run_ids": list(g.run_ids),
                "replicates": g.replicates,
                "baseline": g is c.baseline,
                "estimates": {
                    m: {
                        "unit": METRICS[m].unit,
                        "value": _iv(e.value),
                        "na_reason": e.na_reason,
                        "replicates": e.replicates,
                        "method": e.method,
                    }
                    for m, e in g.estimates.items()
                },
            }
        )
    rows = [
        {
            "label": row.group.label,
            "comparable": row.comparable,
            "differences": list(row.differences),
            "unreliable": list(row.unreliable),
            "ratios": {m: dataclasses.asdict(r) for m, r in row.ratios.items()},
        }
        for row in c.rows
    ]
    return {
        "baseline": c.baseline.label,
        "metrics": list(c.metrics),
        "noise": c.noise,
        "energy_view": c.energy_view,
        "groups": groups,
        "rows": rows,
        "warnings": list(c.warnings),
        "sentences": c.sentences(),
        "board": None if board is None else to_document(board),
    }


def print_board(board: Board, c: Comparison, footnotes: Footnotes) -> None:
    """The answer at a glance: per question the best configuration (its figure, its ratio to
    the baseline) and under it the runner-up (its figure, the best's lead over it); then the
    lines that say once why a question has no answer and who was not ranked."""
    rows: list[list[str]] = []
    for a in board.answers:
        w, ru = a.winner, a.runner_up
        if w is None:
            marks = " ".join(footnotes.mark(r) for r in a.na_reasons)
            rows.append([a.heading, f"{units.NA} {marks}", "", ""])
            continue
        rows.append([a.heading, w.label, w.value_text(a.unit, interval=False), w.ratio_text()])
        if ru is not None:
            lead = a.lead_text()
            rows.append(
                ["", f"  {ru.label}", ru.value_text(a.unit, interval=False),
                 f"lead {lead}" if lead else ""]
            )  # fmt: skip
    print_table(
        BOARD_HEADERS,
        rows,
        title=f"Verdict board — baseline {board.baseline} "
        f"({plural(c.baseline.replicates, 'run')}); {c.energy_view} energy",
    )
    notes = [f"{a.heading}: {a.note}" for a in board.answers if a.winner is not None and a.note]
    lines = [*footnotes.take(), *dict.fromkeys(notes)]
    if board.not_ranked:
        lines.append("Not ranked: " + "; ".join(board.not_ranked) + ".")
    if any("no cost profile" in r for a in board.answers for r in a.na_reasons):
        lines.append("Per-dollar figures need a cost profile per device: `wattbench cost set`.")
    print_lines(lines)


def _value_text(e: MetricEstimate, unit: str, batch: int, footnotes: Footnotes) -> str:
    """The pooled figure with its interval; latencies per call, and per item for a batch.
    Where there is none, n/a with the mark of its reason (printed once below the tables)."""
    if e.value is None:
        return f"{units.NA} {footnotes.mark(e.na_reason)}" if e.na_reason else units.NA
    v = e.value
    if unit == "ns":
        text = units.duration_ns(v.value)
        brackets = units.span(v.lo, v.hi, units.duration_ns)
        per_item = f" ({units.per_item(v.value, batch)})" if batch > 1 else ""
        return text + (f" {brackets}" if brackets else "") + per_item
    brackets = units.span(v.lo, v.hi)
    return units.with_unit(v.value, unit) + (f" {brackets}" if brackets else "")


def _ratio_text(r: Ratio, footnotes: Footnotes) -> tuple[str, str]:
    """The ratio with its interval, and the verdict as the engine gives it (for no ratio, the
    mark of the reason, printed once below the tables)."""
    if r.value is None:
        if not r.na_reason:
            return units.NA, ""
        # "baseline: why" / "this configuration: why" (engine.ratios): the figure's own reason,
        # one footnote for the value cell and the ratio
        whose, sep, why = r.na_reason.partition(": ")
        if sep and whose in ("baseline", "this configuration"):
            return units.NA, f"{whose} n/a {footnotes.mark(why)}"
        return units.NA, footnotes.mark(r.na_reason)
    text = units.ratio(r.value, r.lo, r.hi)
    verdict = r.verdict or (f"no interval: {r.na_reason}" if r.na_reason else "no interval")
    return text, verdict


def print_comparison(c: Comparison, footnotes: Footnotes) -> None:
    print_lines([f"Baseline: {c.baseline.label} ({plural(c.baseline.replicates, 'run')})"])
    for m in c.metrics:
        info = METRICS[m]
        rows = []
        for g in c.groups:
            batch = g.spec.batch_size if m.startswith("latency") else 1  # per call, not token
            value = _value_text(g.estimates[m], info.unit, batch, footnotes)
            if g is c.baseline:
                rows.append([g.label, str(g.replicates), value, "1 (baseline)", ""])
                continue
            row = next(r for r in c.rows if r.group is g)
            ratio, verdict = _ratio_text(row.ratios[m], footnotes)
            rows.append([g.label, str(g.replicates), value, ratio, verdict])
        # Latencies are printed with their own unit (µs, ms), not in ns.
        unit = "" if info.unit == "ns" else f"{info.unit}, "
        print_table(
            ("CONFIGURATION", "RUNS", "VALUE [95 % CI]", "RATIO [95 % CI]", "VERDICT"),
            rows,
            title=f"{info.label} ({unit}{'higher' if info.higher_is_better else 'lower'} "
            "is better)",
        )
    out: list[str] = footnotes.take()
    # one sentence per row and metric, in that order; a ratio that is n/a is said by its table
    # and the footnote of its reason, so its sentence would only repeat them
    pairs = [(row, m) for row in c.rows for m in c.metrics]
    sentences = [
        text
        for (row, m), text in zip(pairs, c.sentences(), strict=True)
        if row.ratios[m].value is not None
    ]
    if sentences:
        out += ["", *sentences]
    print_lines(out)


def _cmd_compare(args: argparse.Namespace) -> int:
    metrics = tuple(dict.fromkeys(args.metric)) if args.metric else None
    with workbench(args) as wb:
        view = wb.compare(
            args.ids,
            baseline_id=args.baseline,
            metrics=metrics,
            energy_view=args.energy,
            noise=args.noise,
        )
    c = view.comparison
    # the reasons to read with care come before the comparison they qualify
    for w in c.warnings:
        print(f"wattbench: warning: {w}", file=sys.stderr)
    sys.stderr.flush()
    if args.json:
        print_json(comparison_dict(c, view.board))
        return EXIT_OK
    footnotes = Footnotes()  # a reason is said once per command
    if view.board is not None:
        print_board(view.board, c, footnotes)
    if not args.brief:
        print()
        print_comparison(c, footnotes)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare stored runs: ratios with 95 %% intervals and verdicts",
        description="Compare stored runs to a baseline. Runs of one configuration are pooled "
        "as replicates; each ratio comes with its 95 % interval and a verdict.",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="run ids (a unique prefix is enough)")
    p.add_argument(
        "--baseline",
        metavar="ID",
        default=None,
        help="run whose configuration is the baseline (default: the first finished)",
    )
    p.add_argument(
        "--metric",
        action="append",
        type=metric_name,
        choices=tuple(METRICS),
        default=None,
        help="metric to compare (repeatable; default: throughput, latencies, energy, "
        "inferences per joule, cost and CO2, and TTFT, TPOT, tokens/s, tokens/J and $ per M "
        "tokens for generation runs)",
    )
    p.add_argument(
        "--brief",
        action="store_true",
        help="print the verdict board only (the best configuration per question)",
    )
    p.add_argument(
        "--energy",
        choices=("device", "system"),
        default="device",
        help="energy view: the device's own domains, or every measured domain",
    )
    p.add_argument(
        "--noise",
        type=float,
        default=0.01,
        metavar="FRACTION",
        help="noise threshold of the verdicts (default 0.01 = ±1 %%)",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_cmd_compare)
