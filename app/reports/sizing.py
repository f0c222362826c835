"""Claims and the capacity plan in a report: checked claims with their verdicts, and what a power
budget holds per configuration, as data (``sizing_tables`` arranges them as report tables).

The words come from the layer above (``service.claim_text`` and ``service.capacity_table``,
which the CLI and the app print too), handed down as ``ClaimWords`` and ``PlanWords`` beside the
figures they describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wattbench.domain.codec import to_document
from wattbench.engine.capacity import CapacityRow, Facility
from wattbench.engine.claims import ClaimResult


@dataclass(frozen=True)
class ClaimWords:
    """One checked claim and its texts (``service.claim_text``)."""

    result: ClaimResult
    title: str  # 'name: B ≥ 0.8 × A on throughput'
    a: str  # side A: configuration, runs by id, quality
    b: str
    ratio: str  # B / A with its interval and method
    verdict: str  # 'CONFIRMED', 'INCONCLUSIVE, indicative (one run each)'


@dataclass(frozen=True)
class PlanWords:
    """The capacity plan and its texts (``service.capacity_table``): the title names every
    facility input; the table has the configurations as columns."""

    facility: Facility
    rows: tuple[CapacityRow, ...]
    title: str
    header: tuple[str, ...]
    table: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Sizing:
    """What a report adds when claims or a facility are given (empty: nothing)."""

    claims: tuple[ClaimWords, ...] = ()
    plan: PlanWords | None = None

    def __bool__(self) -> bool:
        return bool(self.claims) or self.plan is not None


NO_SIZING = Sizing()


def sizing_json(sizing: Sizing) -> dict[str, Any]:
    """The report's ``claims`` and ``capacity`` keys (docs/report-json.md)."""
    p = sizing.plan
    return {
        "claims": [to_document(c.result) for c in sizing.claims],
        "capacity": None
        if p is None
        else {"facility": to_document(p.facility), "rows": [to_document(r) for r in p.rows]},
    }
