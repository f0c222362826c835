"""Planning runs: one request from any front end becomes the list of run specs, checked.

A ``RunRequest`` says what the user asked for in interface-neutral terms (a model, devices,
runtimes, batch sizes, ...); ``plan_runs`` expands it into a ``RunPlan``: every combination as
a ``RunSpec`` (a sweep id when there is more than one), with the checks that need no model or
runtime loaded. ``check_plan`` then asks the engine to validate every distinct configuration
(it resolves models and imports runtimes: call it off a GUI thread). The CLI and the GUI both
come through here, so a GUI sweep and a CLI sweep are the same runs.

The text parsers (``parse_ints``, ``parse_pairs`` ...) read what people type in a field or an
argument ("1, 8, 32", "seq_len=128") with the same rules in every front end.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol

from wattbench.backends.models import catalog
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes import registry
from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import RunSpec, Scenario, expand_sweep
from wattbench.engine.validate import check_entry, validate_many

ORT_ONLY_FIELDS = {
    "ort_provider": "the execution provider",
    "ort_graph_optimization": "the graph optimization level",
}


@dataclass(frozen=True)
class RunRequest:
    """What to run, as the user asked for it; empty ``runtimes`` = the model's own runtime."""

    model: str
    devices: tuple[str, ...] = ("cpu",)
    runtimes: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    batch_sizes: tuple[int, ...] = (1,)
    threads: tuple[int | None, ...] = (None,)
    repeats: int = 1
    scenario: Scenario = Scenario.SINGLE_STREAM
    preset: str = "default"
    epsilon: float | None = None
    t_max_s: float | None = None
    time_limit_s: float | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    input_shapes: Mapping[str, str] = field(default_factory=dict)
    prompt_tokens: int = 32
    new_tokens: int = 16
    ort_provider: str | None = None
    ort_graph_optimization: str = "all"
    sample_hz: float = 10.0
    idle_baseline: bool = True
    memory_pass: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunPlan:
    """The runs a request makes, in the order they will be queued."""

    specs: tuple[RunSpec, ...]
    sweep_id: str | None = None
    # combinations left out because a device inventory says they cannot run, with why
    skipped: tuple[str, ...] = ()

    @property
    def configurations(self) -> int:
        return len({s.config_key() for s in self.specs})


# what a request carries unchanged into each of its specs: the fields both have, except the
# model (canonicalised) and the threads (swept: a tuple in the request)
_CARRIED = tuple(
    f.name
    for f in fields(RunRequest)
    if f.name in {g.name for g in fields(RunSpec)} - {"model", "threads"}
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
        **{name: getattr(request, name) for name in _CARRIED},
    )
    specs: list[RunSpec] = []
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
                specs += expand_sweep(
                    base,
                    devices=[device],
                    runtimes=[runtime],
                    precisions=[precision],
                    batch_sizes=request.batch_sizes,
                    threads=request.threads or (None,),
                    repeats=request.repeats,
                )
    if not specs:
        raise BadInputError("\n".join(["No chosen combination can run:", *skipped]), field="device")
    sweep_id = uuid.uuid4().hex if len(specs) > 1 else None
    if sweep_id is not None:
        specs = [s.with_(sweep_id=sweep_id) for s in specs]
    return RunPlan(tuple(specs), sweep_id, tuple(skipped))


def entry_problems(entry: ModelEntry, plan: RunPlan) -> list[str]:
    """What stops an already resolved model from running this plan, found without opening
    anything (the GUI asks as the form changes; ``check_plan`` asks again, thoroughly)."""
    problems: list[str] = []
    seen: set[tuple[object, ...]] = set()
    for spec in plan.specs:
        key = spec.workload_key()
        if key in seen:
            continue
        seen.add(key)
        try:
            check_entry(spec, entry)
        except BadInputError as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
    return problems


def check_plan(plan: RunPlan) -> None:
    """Validate every distinct configuration (models resolved, runtimes asked); one
    BadInputError naming every problem. Slow the first time: it imports the runtimes."""
    validate_many(plan.specs)


# -- what people type -----------------------------------------------------------------------


def split_list(text: str | None) -> list[str]:
    """'a, b c;d' -> ['a', 'b', 'c', 'd'] (commas, semicolons or spaces)."""
    return [p for p in (text or "").replace(",", " ").replace(";", " ").split() if p]


def parse_ints(text: str | None, *, what: str, field: str, minimum: int = 1) -> list[int]:
    """'1, 8, 32' -> [1, 8, 32] (no repeats); BadInputError naming ``what``."""
    out: list[int] = []
    for item in split_list(text):
        try:
            number = int(item)
        except ValueError:
            raise BadInputError(
                f"{what.capitalize()} {item!r} is not a whole number.", field=field
            ) from None
        if number < minimum:
            raise BadInputError(
                f"{what.capitalize()} must be at least {minimum} (got {number}).", field=field
            )
        if number not in out:
            out.append(number)
    return out


def parse_threads(text: str | None) -> list[int | None]:
    """'' or 'default' = the runtime's own choice; otherwise thread counts."""
    if (text or "").strip().lower() in ("", "default", "auto"):
        return [None]
    return list(parse_ints(text, what="thread count", field="threads"))


def parse_pairs(items: Sequence[str], *, what: str, field: str, example: str) -> dict[str, str]:
    """['a=1', 'b=2'] (each item may hold several, comma-separated) -> {'a': '1', 'b': '2'}."""
    out: dict[str, str] = {}
    for item in items:
        for part in [p.strip() for p in item.replace(";", ",").split(",") if p.strip()]:
            name, sep, value = part.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise BadInputError(
                    f"{what.capitalize()} {part!r} must look like {example}.", field=field
                )
            out[name.strip()] = value.strip()
    return out


def parse_dims(items: Sequence[str]) -> dict[str, int]:
    """['seq_len=128'] -> {'seq_len': 128}."""
    out: dict[str, int] = {}
    for name, value in parse_pairs(
        items, what="dimension", field="dims", example="NAME=SIZE, e.g. seq_len=128"
    ).items():
        try:
            out[name] = int(value)
        except ValueError:
            raise BadInputError(
                f"Dimension {name}={value}: the size must be a whole number.", field="dims"
            ) from None
    return out


def parse_input_shapes(items: Sequence[str]) -> dict[str, str]:
    """['x=1x3x224x224:float32'] -> {'x': '1x3x224x224:float32'}."""
    return parse_pairs(
        items, what="input shape", field="input_shapes", example="NAME=1x3x224x224:float32"
    )
