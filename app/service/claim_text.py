"""Checked claims in words, for every front end: the claim, the ratio B / A with its interval,
the verdict, and the runs behind each side with their quality.

The CLI prints ``claim_lines``; the GUI shows the same pieces as the cells of a table.
"""

from __future__ import annotations

from wattbench.domain import units
from wattbench.engine.claims import ALIASES, SideResult
from wattbench.engine.claims import ClaimResult as ClaimResult  # the GUI reads results here
from wattbench.engine.metrics import METRICS


def metric_choices() -> list[tuple[str, str]]:
    """(name a claim takes, what it measures) for every metric a claim can name, the short
    names people write first (tokens/s …)."""
    short = [(alias, METRICS[name].label) for alias, name in ALIASES.items() if "/" in alias]
    return short + [(name, info.label) for name, info in METRICS.items()]


def claim_title(r: ClaimResult) -> str:
    """'MI250 at 80 %: B ≥ 0.8 × A on decode tokens per second'."""
    c = r.claim
    return f"{c.name + ': ' if c.name else ''}{c.expression} on {METRICS[r.metric].label}"


def ratio_text(r: ClaimResult, sep: str = " ") -> str:
    """'2.5× [2.4–2.6] (between runs (Welch))', or n/a with the reason; sep goes before
    the method."""
    ratio = r.ratio
    if ratio.value is None:
        return units.na(ratio.na_reason)
    method = f"{sep}({ratio.method})" if ratio.method else ""
    return units.ratio(ratio.value, ratio.lo, ratio.hi) + method


def verdict_text(r: ClaimResult, sep: str = ", ") -> str:
    """'CONFIRMED', or 'INCONCLUSIVE, indicative (one run each)' (sep before 'indicative')."""
    return r.verdict.upper() + (f"{sep}indicative ({r.indicative})" if r.indicative else "")


def side_text(s: SideResult, *, ids: bool = True) -> str:
    """'cpu · torch (3 runs: 1a2b3c4d, …); no quality flags' (without the ids: 'cpu · torch
    (3 runs)', its quality said only when it is flagged)."""
    n = len(s.run_ids)
    runs = f"{n} run{'' if n == 1 else 's'}"
    flagged = f"unreliable: {', '.join(s.causes)}" if s.causes else ""
    if not ids:
        return f"{s.label} ({runs})" + (f"; {flagged}" if flagged else "")
    listed = ", ".join(i[:8] for i in s.run_ids)
    return f"{s.label} ({runs}: {listed}); {flagged or 'no quality flags'}"


def claim_lines(r: ClaimResult) -> list[str]:
    """One checked claim as lines of text."""
    return [
        claim_title(r),
        f"  A = {side_text(r.a)}",
        f"  B = {side_text(r.b)}",
        f"  B / A = {ratio_text(r)}",
        f"  {verdict_text(r)}: {r.why}.",
    ]
