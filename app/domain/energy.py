"""Which energy figures a view of a run uses: the one home of that rule (ENERGY.md "Per run" 4).

A "device" view uses the run's own device (its GPU board, or its CPU packages + DRAM); a
"system" view every measured domain (a GPU server still powers its CPU and memory), a
whole-node meter only when nothing else was measured (it contains the others). The sampler
stores ready-made aggregate figures under the domains "device" and "system"; a run without
them (older runs, imports) is summed from its domains here. Measured figures and estimates
(a TDP model) are never mixed: every caller asks for one or the other.
"""

from __future__ import annotations

import math

from wattbench.domain.errors import BadInputError
from wattbench.domain.result import EnergyFigure, RunResult

ENERGY_VIEWS = ("device", "system")
AGGREGATE_DOMAINS = ("device", "system")  # EnergyFigure.domain of ready-made aggregate figures
NODE_SCOPE = "node"  # whole-node meters (IPMI...): context, never added to per-device domains


def check_energy_view(energy_view: str) -> None:
    """BadInputError unless energy_view is one of ENERGY_VIEWS."""
    if energy_view not in ENERGY_VIEWS:
        raise BadInputError(
            f"Unknown energy view {energy_view!r}: choose one of {', '.join(ENERGY_VIEWS)}.",
            field="energy_view",
        )


def view_parts(run: RunResult, energy_view: str, *, estimates: bool) -> list[EnergyFigure]:
    """The figures a view stands on: the view's aggregate figure when the run has one, else
    the per-domain figures it adds up; measured ones, or (``estimates``) estimates only."""
    check_energy_view(energy_view)
    aggregate = [e for e in run.energy if e.domain == energy_view and e.is_estimate == estimates]
    if aggregate:
        return aggregate[:1]
    domains = [
        e for e in run.energy if e.domain not in AGGREGATE_DOMAINS and e.is_estimate == estimates
    ]
    if energy_view == "device":
        return [e for e in domains if e.device == run.spec.device]
    own = [e for e in domains if e.scope != NODE_SCOPE and e.device != NODE_SCOPE]
    return own or [e for e in domains if e.scope == NODE_SCOPE or e.device == NODE_SCOPE][:1]


def view_figure(run: RunResult, energy_view: str = "device") -> EnergyFigure | None:
    """The view as one figure: measured when there is any, else the estimate (its flags and
    source say so), else None. Parts over the same window are summed."""
    parts = view_parts(run, energy_view, estimates=False) or view_parts(
        run, energy_view, estimates=True
    )
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    energy_j = sum(f.energy_j for f in parts)
    duration_s, items = parts[0].duration_s, parts[0].items
    methods = {f.method for f in parts}
    return EnergyFigure(
        domain=energy_view,
        device=run.spec.device if energy_view == "device" else NODE_SCOPE,
        source="+".join(f.source for f in parts),
        scope=energy_view,
        method=methods.pop() if len(methods) == 1 else "mixed",
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=energy_j / duration_s if duration_s > 0 else math.nan,
        items=items,
        energy_per_item_j=energy_j / items if items else math.nan,
        items_per_j=items / energy_j if energy_j > 0 else math.nan,
        flags=tuple(sorted({fl for f in parts for fl in f.flags})),
    )
