"""The report's Claims and Capacity plan tables, from ``reports.sizing``'s words."""

from __future__ import annotations

from wattbench.engine.claims import CONFIRMED, INCONCLUSIVE, REFUTED, UNRELIABLE, ClaimResult
from wattbench.reports.sizing import Sizing
from wattbench.reports.tables import Table, TCell

# a verdict's cell kind is its own name: each renderer gives it a colour and a tint
VERDICT_KINDS = {v: v for v in (CONFIRMED, REFUTED, INCONCLUSIVE, UNRELIABLE)}


def claims_table(sizing: Sizing) -> Table | None:
    """One row per claim: the claim, its sides, B / A, the verdict in its colour, and why."""
    if not sizing.claims:
        return None
    t = Table(
        "claims",
        "Claims",
        "Each claim is checked on every stored run matching its sides (docs/claims.md), "
        "which need not be among this report's runs: the runs each side used are listed by "
        "id. Confirmed or refuted when the whole 95 % interval of B / A lies on one side of the "
        "factor; no verdict rests on flagged runs.",
        ["Claim", "A (runs, quality)", "B (runs, quality)", "B / A [95 % interval]", "Verdict",
         "Why"],
        widths=(1.5, 1.55, 1.55, 1.15, 1.25, 1.8),
    )  # fmt: skip
    for c in sizing.claims:
        r = c.result
        ratio_kind = "" if r.ratio.value is not None else "na"
        t.rows.append([
            TCell(c.title), TCell(c.a), TCell(c.b), TCell(c.ratio, ratio_kind),
            TCell(c.verdict, VERDICT_KINDS.get(r.verdict, "na")), TCell(_why(r)),
        ])  # fmt: skip
    return t


def _why(r: ClaimResult) -> str:
    return r.why[:1].upper() + r.why[1:] + "."


def verdict_counts(sizing: Sizing) -> str:
    """'3 claims: 2 confirmed, 1 refuted.'"""
    counts: dict[str, int] = {}
    for c in sizing.claims:
        counts[c.result.verdict] = counts.get(c.result.verdict, 0) + 1
    n = len(sizing.claims)
    return (f"{n} claim{'' if n == 1 else 's'}: "
            + ", ".join(f"{k} {verdict}" for verdict, k in counts.items()) + ".")  # fmt: skip


def plan_table(sizing: Sizing) -> Table | None:
    """The plan as ``wattbench plan`` prints it: figures as rows, configurations as columns,
    every input labelled (measured / estimate / input); estimates in the caveat colour."""
    p = sizing.plan
    if p is None:
        return None
    columns = len(p.header) - 1
    t = Table(
        "capacity",
        "Servers, racks, throughput and cost per configuration",
        p.title + ". Inputs are labelled measured (from the runs), estimate (a power model, not "
        "a sensor) or input (stated, or a cost profile); the arithmetic is in docs/capacity.md.",
        list(p.header),
        widths=(1.1, *([min(2.0, 7.0 / max(columns, 1))] * columns)),
        notes=list(p.notes),
    )
    for row in p.table:
        name, *cells = row
        t.rows.append([TCell(name, "base"), *(TCell(c, _plan_kind(c)) for c in cells)])
    return t


def _plan_kind(text: str) -> str:
    if text.startswith("n/a"):
        return "na"
    return "est" if "(estimate)" in text else ""
