"""What a user asks to run, in interface-neutral terms, and the runs it makes.

A ``RunRequest`` holds what a front end read from its fields or arguments (a model, devices,
runtimes, batch sizes, ...); ``plan.plan_runs`` turns it into a ``RunPlan``. The text parsers
(``parse_ints``, ``parse_pairs`` ...) read what people type in a field or an argument
("1, 8, 32", "seq_len=128") with the same rules in every front end. Nothing here imports the
catalog, the runtimes or the engine, so a form can hold a request at no cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import SLO_METRICS, RunSpec, Scenario


@dataclass(frozen=True)
class RunRequest:
    """What to run, as the user asked for it; empty ``runtimes`` = the model's own runtime."""

    model: str
    devices: tuple[str, ...] = ("cpu",)
    runtimes: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("fp32",)
    batch_sizes: tuple[int, ...] = (1,)
    threads: tuple[int | None, ...] = (None,)
    # runs of each configuration, in rounds; None = ``default_replicates`` of the plan
    repeats: int | None = None
    order_seed: int | None = None  # shuffles each round; None = a new seed for each plan
    scenario: Scenario = Scenario.SINGLE_STREAM
    preset: str = "default"
    epsilon: float | None = None
    t_max_s: float | None = None
    time_limit_s: float | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    input_shapes: Mapping[str, str] = field(default_factory=dict)
    prompt_tokens: int = 32
    new_tokens: int = 16
    # server scenario: arrival rate, concurrent streams (a sweep: 1, 2, 4 ...) and the SLO
    target_rate: float | None = None
    streams: tuple[int, ...] = (1,)
    slo_ms: float | None = None
    slo_percentile: float = 0.99
    slo_metric: str = "latency"  # what the SLO limits: latency, ttft, tpot (SLO_METRICS)
    ort_provider: str | None = None
    ort_graph_optimization: str = "all"
    sample_hz: float = 10.0
    idle_baseline: bool = True
    memory_pass: bool = True
    tags: tuple[str, ...] = ()
    # multi-instance CPU runs: instances per run (a sweep: 1, 2, 4 ...), each with ``threads``
    instance_counts: tuple[int, ...] = (1,)
    # training scenario: micro-batches per optimizer step, activations recomputed
    grad_accum: int = 1
    activation_checkpointing: bool = False
    find_micro_batch: bool = False
    data_parallel: int = 1


COMPARISON_REPLICATES = 2  # a between-run interval needs at least two runs per side


def default_replicates(configurations: int) -> int:
    """Runs of each configuration when the user did not say: a comparison (several
    configurations) gets ``COMPARISON_REPLICATES``, a single configuration one run."""
    return COMPARISON_REPLICATES if configurations > 1 else 1


@dataclass(frozen=True)
class RunPlan:
    """The runs a request makes, in the order they will be queued: in rounds, each round
    running every configuration once, shuffled by ``order_seed`` (``spec.interleave``)."""

    specs: tuple[RunSpec, ...]
    sweep_id: str | None = None
    # combinations left out because a device inventory says they cannot run, with why
    skipped: tuple[str, ...] = ()
    replicates: int = 1  # runs of each configuration: one per round
    order_seed: int | None = None
    replicates_defaulted: bool = False  # the user did not choose the number of replicates

    @property
    def configurations(self) -> int:
        return len({s.config_key() for s in self.specs})

    @property
    def rounds(self) -> tuple[tuple[RunSpec, ...], ...]:
        """The runs of each round, in the order they run."""
        by_round: dict[int, list[RunSpec]] = {}
        for spec in self.specs:
            by_round.setdefault(spec.repeat, []).append(spec)
        return tuple(tuple(runs) for runs in by_round.values())

    def order_summary(self) -> str:
        """How the runs are ordered, in a sentence: '2 configurations × 2 replicates, in 2
        rounds ...'."""
        configs, reps = self.configurations, self.replicates
        text = (
            f"{configs} configuration{'s' if configs != 1 else ''} × {reps} "
            f"replicate{'s' if reps != 1 else ''}"
        )
        if self.replicates_defaulted and configs > 1:
            text += " (the default for a comparison)"
        if configs > 1:
            rounds = "1 round" if reps == 1 else f"{reps} rounds"
            text += (
                f", in {rounds}: each round runs every configuration once, in a shuffled order "
                f"(order seed {self.order_seed})"
            )
        return text

    def order_lines(self, max_rounds: int = 10) -> list[str]:
        """One line per round naming its runs in order ('round 1: torch, onnxruntime'), the
        runs named by what sets their configurations apart; empty for a single configuration."""
        if self.configurations < 2:
            return []
        names = configuration_names(self.specs)
        rounds = self.rounds
        lines = [
            f"round {i}: " + ", ".join(names[s.config_key()] for s in runs)
            for i, runs in enumerate(rounds[:max_rounds], start=1)
        ]
        if len(rounds) > max_rounds:
            lines.append(f"… and {len(rounds) - max_rounds} more rounds")
        return lines


def configuration_names(specs: Sequence[RunSpec]) -> dict[tuple[object, ...], str]:
    """A short name for each configuration: the settings in which they differ
    ('onnxruntime · b8'), or the whole label when nothing tells them apart."""
    axes: list[Callable[[RunSpec], str]] = [
        lambda s: s.device,
        lambda s: s.runtime,
        lambda s: s.precision,
        lambda s: f"b{s.batch_size}",
        lambda s: f"t{s.threads}" if s.threads else "threads default",
        lambda s: f"i{s.instances}",
        lambda s: f"s{s.streams}",
        lambda s: s.ort_provider or "provider default",
        lambda s: f"graph-opt {s.ort_graph_optimization}",
    ]
    varying = [axis for axis in axes if len({axis(s) for s in specs}) > 1]
    return {
        s.config_key(): " · ".join(axis(s) for axis in varying) if varying else s.label()
        for s in specs
    }


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


class Slo(NamedTuple):
    """A server run's SLO: this percentile of ``metric`` at most ``limit_ms``."""

    percentile: float  # 0.99 for p99
    limit_ms: float
    metric: str = "latency"  # one of SLO_METRICS: latency (end to end), ttft, tpot


def parse_slo(text: str | None) -> Slo | None:
    """'p99=100ms' (or 'p90=0.25s', 'p99.9=20ms') -> Slo(0.99, 100.0, 'latency'): the
    percentile and its limit in milliseconds; a generative model's TTFT or TPOT with the
    metric first ('ttft:p99=500ms', 'tpot:p90=100ms'); '' -> None."""
    text = (text or "").strip().lower()
    if not text:
        return None
    example = (
        "a percentile and a limit, e.g. p99=100ms or p90=0.5s (end-to-end latency), "
        "ttft:p99=500ms or tpot:p90=100ms"
    )
    metric, colon, rest = text.partition(":")
    if not colon:
        metric, rest = "latency", text
    metric = metric.strip()
    if metric not in SLO_METRICS:
        raise BadInputError(
            f"The SLO {text!r} limits {metric!r}: choose one of {', '.join(SLO_METRICS)} "
            f"before the colon, e.g. tpot:p90=100ms.",
            field="slo_ms",
        )
    name, sep, limit = rest.strip().partition("=")
    if not sep or not name.startswith("p"):
        raise BadInputError(f"The SLO {text!r} must be {example}.", field="slo_ms")
    scale = 1.0
    for unit, factor in (("ms", 1.0), ("us", 1e-3), ("µs", 1e-3), ("s", 1e3)):
        if limit.endswith(unit):
            limit, scale = limit[: -len(unit)], factor
            break
    try:
        percentile = float(name[1:]) / 100
        limit_ms = float(limit) * scale
    except ValueError:
        raise BadInputError(f"The SLO {text!r} must be {example}.", field="slo_ms") from None
    if not 0 < percentile < 1:
        raise BadInputError(
            f"The SLO's percentile must be between p0 and p100 exclusive (got {name}).",
            field="slo_percentile",
        )
    return Slo(percentile, limit_ms, metric)


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
