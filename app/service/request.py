"""What a user asks to run, in interface-neutral terms, and the runs it makes.

A ``RunRequest`` holds what a front end read from its fields or arguments (a model, devices,
runtimes, batch sizes, ...); ``plan.plan_runs`` turns it into a ``RunPlan``. The text parsers
(``parse_ints``, ``parse_pairs`` ...) read what people type in a field or an argument
("1, 8, 32", "seq_len=128") with the same rules in every front end. Nothing here imports the
catalog, the runtimes or the engine, so a form can hold a request at no cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import RunSpec, Scenario


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
