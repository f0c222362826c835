"""The stored runs and everything done with them: one ``Workbench`` per open run store.

A front end opens one (``Workbench.open(db_url)``) and reaches the store only through it:
listing, loading, tagging, notes, deletion, cost profiles, bundles, comparisons and reports.
It is also the run queue's recorder (``begin_run`` / ``finish_run``). Every method is a plain
blocking call: the GUI's controller calls them on its database thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Unpack

from wattbench.db.bundle import ExportSummary, ImportSummary, export_bundle
from wattbench.db.bundle_read import import_bundle
from wattbench.db.store import Store, open_store
from wattbench.db.values import RunFilters, RunSummary
from wattbench.domain.claim import Claim, Side
from wattbench.domain.cost import CostProfile, profiles_by_device
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.board import BOARD_METRICS, Board, verdict_board
from wattbench.engine.board import Answer as Answer  # the GUI reads the board through here
from wattbench.engine.board import Standing as Standing
from wattbench.engine.capacity import CapacityRow, Facility
from wattbench.engine.claims import ClaimResult, check_claim
from wattbench.engine.compare import Comparison, compare_runs
from wattbench.engine.metrics import DEFAULT_METRICS, GENERATION_METRICS, SERVER_METRICS
from wattbench.engine.training_metrics import TRAINING_METRICS
from wattbench.reports import write_report
from wattbench.service.capacity import ServerInput, capacity_plan
from wattbench.service.report_sizing import report_sizing

log = logging.getLogger(__name__)

MAX_COMPARED = 500
DEFAULT_NOISE = 0.01


@dataclass(frozen=True)
class ComparisonView:
    """A comparison with the runs behind it and the cost profiles it used, ready to draw."""

    comparison: Comparison
    runs: tuple[RunResult, ...]
    baseline_id: str | None
    energy_view: str
    cost_profiles: Mapping[str, CostProfile] = field(default_factory=dict)
    board: Board | None = None  # the verdict board (None: not asked for)


def comparison_metrics(runs: Sequence[RunResult]) -> tuple[str, ...]:
    """The metrics a comparison shows by default: the engine's default ones, after the
    generation ones (TTFT, TPOT, tokens/s, tokens/J, $/M tokens ...) when a run generated
    tokens, and goodput when a run is a server run; a training run's own (tokens/s, step time,
    J per trained token ...: its items are trained tokens)."""
    if any(r.spec.scenario is Scenario.TRAINING for r in runs):
        return TRAINING_METRICS
    metrics = DEFAULT_METRICS
    if any(r.generation is not None for r in runs):
        metrics = GENERATION_METRICS + metrics
    if any(r.server is not None for r in runs):
        metrics = SERVER_METRICS + metrics
    return metrics


def compare_loaded(
    runs: Sequence[RunResult],
    *,
    baseline_id: str | None = None,
    metrics: Sequence[str] | None = None,
    energy_view: str = "device",
    noise: float | None = None,
    cost_profiles: Sequence[CostProfile] = (),
    board: bool = True,
) -> ComparisonView:
    """Compare runs already loaded (the GUI keeps recent ones); one profile per device.
    Without ``metrics``: ``comparison_metrics`` of the runs. With ``board``, the verdict board
    too (its figures are computed once, with the comparison's; the metrics shown stay those
    asked for)."""
    if len(runs) > MAX_COMPARED:
        raise BadInputError(f"Compare at most {MAX_COMPARED} runs at a time.", field="run_ids")
    profiles = profiles_by_device(cost_profiles)
    shown = tuple(comparison_metrics(runs) if metrics is None else metrics)
    computed = tuple(dict.fromkeys(shown + (BOARD_METRICS if board else ())))
    comparison = compare_runs(
        runs,
        baseline_id=baseline_id,
        metrics=computed,
        noise=noise,
        energy_view=energy_view,
        cost_profiles=profiles,
    )
    if computed != shown:
        comparison = replace(comparison, metrics=shown)
    return ComparisonView(
        comparison,
        tuple(runs),
        baseline_id,
        energy_view,
        profiles,
        verdict_board(comparison, profiles) if board else None,
    )


class Workbench:
    """One open run store and the operations on it; ``close()`` when done."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, db_url: str | None = None) -> Workbench:
        """The run store at ``db_url`` ($WATTBENCH_DB, else the default file), migrated."""
        return cls(open_store(db_url))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """Where the store is, its schema and size (passwords hidden)."""
        return self.store.describe()

    # -- the queue's recorder ---------------------------------------------------------------
    def begin_run(self, spec: RunSpec, run_id: str) -> None:
        self.store.begin_run(spec, run_id)

    def finish_run(self, result: RunResult) -> None:
        self.store.finish_run(result)

    # -- runs -----------------------------------------------------------------------------------
    def list_runs(
        self, *, limit: int | None = None, **filters: Unpack[RunFilters]
    ) -> list[RunSummary]:
        """Stored runs, newest first, filtered."""
        return self.store.list_runs(limit=limit, order="-created", **filters)

    def resolve_ids(self, ids: Sequence[str]) -> list[str]:
        """Full ids of ids or unique prefixes, each once, in order (UnknownRunError)."""
        return list(dict.fromkeys(self.store.resolve_id(i) for i in ids))

    def get_run(self, run_id: str, *, with_arrays: bool = True) -> RunResult:
        return self.store.get_run(run_id, with_arrays=with_arrays)

    def load_runs(self, ids: Sequence[str], *, with_arrays: bool = True) -> list[RunResult]:
        return self.store.load_runs(list(ids), with_arrays=with_arrays)

    def add_tag(self, ids: Sequence[str], tag: str) -> list[str]:
        full = self.resolve_ids(ids)
        for rid in full:
            self.store.add_tag(rid, tag)
        return full

    def remove_tag(self, ids: Sequence[str], tag: str) -> list[str]:
        full = self.resolve_ids(ids)
        for rid in full:
            self.store.remove_tag(rid, tag)
        return full

    def set_note(self, run_id: str, text: str) -> str:
        rid = self.store.resolve_id(run_id)
        self.store.set_note(rid, text)
        return rid

    def delete_runs(self, ids: Sequence[str]) -> int:
        return self.store.delete_runs(self.resolve_ids(ids))

    # -- cost profiles ----------------------------------------------------------------------------
    def cost_profiles(self, device: str | None = None) -> list[CostProfile]:
        return self.store.list_cost_profiles(device)

    def save_cost_profile(self, profile: CostProfile) -> None:
        self.store.save_cost_profile(profile)

    def delete_cost_profile(self, device: str, name: str = "") -> bool:
        return self.store.delete_cost_profile(device, name)

    # -- bundles ----------------------------------------------------------------------------------
    def export_bundle(self, ids: Sequence[str] | None, path: str | Path) -> ExportSummary:
        """Write the runs (None = every run) to a bundle file."""
        return export_bundle(self.store, None if ids is None else list(ids), path)

    def import_bundle(self, path: str | Path) -> ImportSummary:
        """Check the whole bundle, then add its new runs in one transaction."""
        return import_bundle(self.store, path)

    # -- comparison and reports -------------------------------------------------------------------
    def _runs_for(
        self, ids: Sequence[str], baseline_id: str | None, *, with_arrays: bool
    ) -> tuple[list[RunResult], str | None]:
        if len(ids) > MAX_COMPARED:
            raise BadInputError(f"Compare at most {MAX_COMPARED} runs at a time.", field="run_ids")
        full = self.resolve_ids(ids)
        baseline = self.store.resolve_id(baseline_id) if baseline_id else None
        if baseline is not None and baseline not in full:
            full.insert(0, baseline)
        return self.load_runs(full, with_arrays=with_arrays), baseline

    def compare(
        self,
        ids: Sequence[str],
        *,
        baseline_id: str | None = None,
        metrics: Sequence[str] | None = None,
        energy_view: str = "device",
        noise: float | None = None,
        with_arrays: bool = False,
    ) -> ComparisonView:
        """Load the runs (ids or prefixes, the baseline added if missing) and compare them."""
        runs, baseline = self._runs_for(ids, baseline_id, with_arrays=with_arrays)
        if len({r.id for r in runs}) < 2:
            raise BadInputError("Give at least two different runs to compare.", field="run_ids")
        return compare_loaded(
            runs,
            baseline_id=baseline,
            metrics=metrics,
            energy_view=energy_view,
            noise=noise,
            cost_profiles=self.cost_profiles(),  # the board asks per dollar
        )

    def side_runs(self, side: Side) -> list[RunResult]:
        """The stored runs one side of a claim stands on (ids, or every finished run matching
        its fields), without arrays."""
        if side.ids:
            return self.load_runs(self.resolve_ids(side.ids), with_arrays=False)
        found = self.list_runs(
            limit=MAX_COMPARED + 1,
            device=side.device,
            runtime=side.runtime,
            model=side.model,
            tag=side.tag,
            status="done",
        )
        if len(found) > MAX_COMPARED:
            raise BadInputError(
                f"Side {side.describe()} matches more than {MAX_COMPARED} runs: narrow it.",
                field="side",
            )
        found = [s for s in found if side.batch is None or s.batch_size == side.batch]
        return self.load_runs([s.id for s in found], with_arrays=False)

    def check_claims(
        self, claims: Sequence[Claim], *, energy_view: str = "device"
    ) -> list[ClaimResult]:
        """Each claim evaluated on its sides' stored runs (cost with the stored profiles)."""
        profiles = profiles_by_device(self.cost_profiles())
        return [
            check_claim(
                c,
                self.side_runs(c.a),
                self.side_runs(c.b),
                energy_view=energy_view,
                cost_profiles=profiles,
            )
            for c in claims
        ]

    def plan_capacity(
        self, ids: Sequence[str], facility: Facility, servers: Sequence[ServerInput] = ()
    ) -> list[CapacityRow]:
        """The capacity planner on stored runs (service.capacity), one row per configuration."""
        if len(ids) > MAX_COMPARED:
            raise BadInputError(f"Plan with at most {MAX_COMPARED} runs.", field="run_ids")
        runs = self.load_runs(self.resolve_ids(ids), with_arrays=False)
        return capacity_plan(runs, facility, profiles_by_device(self.cost_profiles()), servers)

    def report_material(
        self,
        ids: Sequence[str],
        baseline_id: str | None,
        *,
        claims: Sequence[Claim] = (),
        facility: Facility | None = None,
        servers: Sequence[ServerInput] = (),
        energy_view: str = "device",
    ) -> ReportMaterial:
        """What a report of these runs needs from the store (runs with arrays, profiles), with
        the claims checked on the store and the capacity plan of the runs when given."""
        runs, baseline = self._runs_for(ids, baseline_id, with_arrays=True)
        profiles = tuple(self.cost_profiles())
        checked = tuple(self.check_claims(claims, energy_view=energy_view)) if claims else ()
        plan = () if facility is None else tuple(
            capacity_plan(runs, facility, profiles_by_device(profiles), servers))  # fmt: skip
        return ReportMaterial(tuple(runs), baseline, profiles, checked, plan, facility)

    def write_report(
        self,
        ids: Sequence[str],
        path: str | Path,
        *,
        baseline_id: str | None = None,
        energy_view: str = "device",
        noise: float | None = None,
        claims: Sequence[Claim] = (),
        facility: Facility | None = None,
        servers: Sequence[ServerInput] = (),
    ) -> tuple[Path, int]:
        """Compare the runs and write the report (the suffix picks the format), with the
        claims and the capacity plan when given; returns the file and the number of runs."""
        material = self.report_material(ids, baseline_id, claims=claims, facility=facility,
                                        servers=servers, energy_view=energy_view)  # fmt: skip
        return render_report(material, path, energy_view=energy_view, noise=noise), len(
            material.runs
        )


@dataclass(frozen=True)
class ReportMaterial:
    runs: tuple[RunResult, ...]
    baseline_id: str | None
    cost_profiles: tuple[CostProfile, ...]
    claims: tuple[ClaimResult, ...] = ()  # checked on the store (Workbench.check_claims)
    capacity: tuple[CapacityRow, ...] = ()  # the plan of the runs under the facility
    facility: Facility | None = None


def render_report(
    material: ReportMaterial,
    path: str | Path,
    *,
    energy_view: str = "device",
    noise: float | None = None,
) -> Path:
    """Write the report of loaded runs (no store needed: the GUI renders off its DB thread)."""
    return write_report(
        material.runs,
        path,
        baseline_id=material.baseline_id,
        energy_view=energy_view,
        noise=noise,
        cost_profiles=profiles_by_device(material.cost_profiles),
        sizing=report_sizing(material.claims, material.capacity, material.facility),
    )
