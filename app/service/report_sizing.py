"""The words of a report's Claims and Capacity plan sections: the texts the CLI and the app
print (``claim_text``, ``capacity_table``), handed to the report beside their figures."""

from __future__ import annotations

from collections.abc import Sequence

from wattbench.engine.capacity import CapacityRow, Facility
from wattbench.engine.claims import ClaimResult
from wattbench.reports.sizing import ClaimWords, PlanWords, Sizing
from wattbench.service.capacity_table import plan_notes, plan_table, plan_title
from wattbench.service.claim_text import claim_title, ratio_text, side_text, verdict_text


def report_sizing(
    claims: Sequence[ClaimResult], capacity: Sequence[CapacityRow], facility: Facility | None
) -> Sizing:
    """The checked claims and the capacity plan (without a facility: none) in words."""
    words = tuple(
        ClaimWords(r, claim_title(r), side_text(r.a), side_text(r.b), ratio_text(r),
                   verdict_text(r))
        for r in claims
    )  # fmt: skip
    if facility is None or not capacity:
        return Sizing(words)
    header, table = plan_table(capacity, facility)
    return Sizing(
        words,
        PlanWords(facility, tuple(capacity), plan_title(facility), tuple(header),
                  tuple(tuple(row) for row in table), tuple(plan_notes(capacity))),
    )  # fmt: skip
