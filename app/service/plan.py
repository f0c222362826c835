"""Planning runs: a request from any front end becomes the list of run specs, checked.

``plan_runs`` expands a ``RunRequest`` (``request``) into a ``RunPlan``: every combination as
a ``RunSpec`` (a sweep id when there is more than one), with the checks that need no model or
runtime loaded, the store's limits on a run included (``db.values.check_storable``).
``check_plan`` then asks the engine to validate every distinct configuration (it resolves
models and imports runtimes: call it off a GUI thread). The CLI and the GUI both
come through here, so a GUI sweep and a CLI sweep are the same runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from typing import Protocol

from wattbench.backends.models import catalog
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes import registry
from wattbench.db.values import check_storable
from wattbench.domain.errors import BadInputError
from wattbench.domain.events import CancelToken
from wattbench.domain.spec import RunSpec, expand_sweep, interleave, new_order_seed
from wattbench.engine.validate import check_entry, check_memory, validate_many
from wattbench.service.request import RunPlan, RunRequest, default_replicates

ORT_ONLY_FIELDS = {
    "ort_provider": "the execution provider",
    "ort_graph_optimization": "the graph optimization level",
}


# what a request carries unchanged into each of its specs: the fields both have, except the
# model (canonicalised), the threads and streams (swept: tuples in the request) and the order
# seed (set by the plan's order)
_CARRIED = tuple(
    f.name
    for f in fields(RunRequest)
    if f.name in {g.name for g in fields(RunSpec)} - {"model", "threads", "streams", "order_seed"}
)


class Combinations(Protocol):
    """What a device inventory says about one device × runtime × precision (a quick check)."""

    def problem(
        self, model_format: str, device: str, runtime: str, precision: str
    ) -> str | None: ...


def _runtimes(request: RunRequest, model: str) -> tuple[str, ...]:
    if request.runtimes:
        return request.runtimes
    fmt = catalog.model_format(model)
    chosen = registry.runtime_for(fmt)
    if chosen is None:
        raise BadInputError(
            f"No installed runtime loads {fmt} models (runtimes: "
            f"{', '.join(registry.runtime_names()) or 'none'}).",
            field="runtime",
        )
    return (chosen,)


def _check_runtime_fields(request: RunRequest, runtimes: Sequence[str]) -> None:
    """ONNX Runtime options with no onnxruntime run are refused, not silently ignored."""
    if "onnxruntime" in runtimes:
        return
    given = [
        name
        for name in ORT_ONLY_FIELDS
        if (name == "ort_provider" and request.ort_provider is not None)
        or (name == "ort_graph_optimization" and request.ort_graph_optimization != "all")
    ]
    if given:
        what = " and ".join(ORT_ONLY_FIELDS[n] for n in given)
        raise BadInputError(
            f"{what[0].upper()}{what[1:]} applies to the onnxruntime runtime only: add "
            "onnxruntime to the runtimes or leave it out.",
            field=given[0],
        )


def plan_runs(request: RunRequest, *, combinations: Combinations | None = None) -> RunPlan:
    """Every run of ``request`` as a spec; BadInputError for what cannot work at all.

    The runs are in rounds (``spec.interleave``): each round runs every configuration once,
    in an order shuffled by the request's seed (or a new one, recorded in the plan); without a
    number of replicates, a comparison gets ``default_replicates``.
    With ``combinations`` (a device inventory), device × runtime × precision combinations
    that cannot run are left out with their reason instead of failing the whole plan.
    """
    model = catalog.canonical_ref(request.model)
    model_format = catalog.model_format(model)
    runtimes = _runtimes(request, model)
    _check_runtime_fields(request, runtimes)
    if not request.devices:
        raise BadInputError("Choose at least one device.", field="device")
    if not request.precisions:
        raise BadInputError("Choose at least one precision.", field="precision")
    if not request.batch_sizes:
        raise BadInputError("Give at least one batch size.", field="batch_size")
    base = RunSpec(
        model=model,
        device=request.devices[0],
        runtime=runtimes[0],
        precision=request.precisions[0],
        batch_size=request.batch_sizes[0],
        threads=request.threads[0] if request.threads else None,
        streams=request.streams[0] if request.streams else 1,
        **{name: getattr(request, name) for name in _CARRIED},
    )
    configurations: list[RunSpec] = []
    skipped: list[str] = []
    for device in request.devices:
        for runtime in runtimes:
            for precision in request.precisions:
                why = (
                    combinations.problem(model_format, device, runtime, precision)
                    if combinations is not None
                    else None
                )
                if why is not None:
                    skipped.append(f"{device} · {runtime} · {precision}: {why}")
                    continue
                configurations += expand_sweep(
                    base,
                    devices=[device],
                    runtimes=[runtime],
                    precisions=[precision],
                    batch_sizes=request.batch_sizes,
                    threads=request.threads or (None,),
                    streams=request.streams or (1,),
                )
    if request.instance_counts != (1,):  # instances × the rest (each spec checks its device)
        configurations = [
            c.with_(instances=n) for n in request.instance_counts for c in configurations
        ]
    if not configurations:
        raise BadInputError("\n".join(["No chosen combination can run:", *skipped]), field="device")
    for spec in configurations:  # what the store cannot hold is refused now, not once measured
        check_storable(spec)
    replicates = request.repeats
    if replicates is None:
        replicates = default_replicates(len({s.config_key() for s in configurations}))
    seed = request.order_seed if request.order_seed is not None else new_order_seed()
    specs = interleave(configurations, replicates, seed)
    if len(specs) == 1:  # a single run has no order to record
        return RunPlan((configurations[0],), None, tuple(skipped), 1, None)
    sweep_id = uuid.uuid4().hex
    return RunPlan(
        tuple(s.with_(sweep_id=sweep_id) for s in specs),
        sweep_id,
        tuple(skipped),
        replicates,
        seed,
        replicates_defaulted=request.repeats is None,
    )


def entry_problems(entry: ModelEntry, plan: RunPlan) -> list[str]:
    """What stops an already resolved model from running this plan, found without opening
    anything (the GUI asks as the form changes; ``check_plan`` asks again, thoroughly): its
    inputs and scenario, and whether a language model's weights and KV cache fit in the
    device's free memory."""
    problems: list[str] = []
    seen: set[tuple[object, ...]] = set()
    for spec in plan.specs:
        key = (*spec.workload_key(), spec.device)
        if key in seen:
            continue
        seen.add(key)
        try:
            check_entry(spec, entry)
            check_memory(spec, entry)
        except BadInputError as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
    return problems


def check_plan(plan: RunPlan, *, cancel: CancelToken | None = None) -> None:
    """Validate every distinct configuration (models resolved, runtimes asked); one
    BadInputError naming every problem. Slow the first time: it imports the runtimes. A model
    file is read in a probe process, which ``cancel`` (or Ctrl-C) stops."""
    validate_many(plan.specs, cancel=cancel)
