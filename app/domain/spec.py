"""What to run: an immutable run specification, its presets, and sweep expansion."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from wattbench.domain.errors import BadInputError


class Scenario(StrEnum):
    SINGLE_STREAM = "single-stream"  # one request at a time, batch 1 by default: latency
    OFFLINE = "offline"  # batches back to back: throughput
    GENERATION = "generation"  # token generation: TTFT, TPOT, tokens/s


@dataclass(frozen=True)
class Preset:
    name: str
    epsilon: float  # target relative half-width of the 95 % CI of the mean latency
    t_max_s: float  # measurement stops here even if not converged
    warmup_max_s: float
    warmup_max_iters: int


PRESETS: dict[str, Preset] = {
    "quick": Preset("quick", epsilon=0.03, t_max_s=10.0, warmup_max_s=10.0, warmup_max_iters=300),
    "default": Preset(
        "default", epsilon=0.01, t_max_s=60.0, warmup_max_s=30.0, warmup_max_iters=300
    ),
    "rigorous": Preset(
        "rigorous", epsilon=0.005, t_max_s=120.0, warmup_max_s=30.0, warmup_max_iters=300
    ),
}

RUNTIMES = ("torch", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run. Plain data: JSON-able via to_dict/from_dict."""

    model: str  # catalog ref ("builtin:mlp-small", "onnx-zoo:resnet50") or a file path
    device: str = "cpu"  # "cpu", "cuda:0", "mps", "xpu:0"
    runtime: str = "torch"
    precision: str = "fp32"
    batch_size: int = 1
    threads: int | None = None  # intra-op threads; None = runtime default
    scenario: Scenario = Scenario.SINGLE_STREAM
    preset: str = "default"
    epsilon: float | None = None  # overrides the preset
    t_max_s: float | None = None  # overrides the preset
    dims: tuple[tuple[str, int], ...] = ()  # user-set dynamic dimensions, e.g. (("seq_len", 128),)
    # explicit input shapes for files that declare none (TorchScript): name -> "1x3x224x224:float32"
    input_shapes: tuple[tuple[str, str], ...] = ()
    prompt_tokens: int = 32  # generation: prompt length
    new_tokens: int = 16  # generation: fixed number of new tokens (min = max)
    ort_provider: str | None = None  # e.g. "CUDAExecutionProvider"; None = from device
    ort_graph_optimization: str = "all"  # disable | basic | extended | all
    percentiles: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99, 0.999)
    required_tails: tuple[float, ...] = ()  # tails that must be within 5 % before stopping
    idle_baseline: bool = True
    sample_hz: float = 10.0
    time_limit_s: float | None = None  # whole worker wall-clock limit; None = derived
    memory_pass: bool = True
    repeat: int = 0  # index of this replicate
    sweep_id: str | None = None
    tags: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise BadInputError(
                f"Unknown runtime {self.runtime!r}: choose one of {', '.join(RUNTIMES)}."
            )
        if self.precision not in PRECISIONS:
            raise BadInputError(
                f"Unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}."
            )
        if self.preset not in PRESETS:
            raise BadInputError(
                f"Unknown preset {self.preset!r}: choose one of {', '.join(PRESETS)}."
            )
        if self.batch_size < 1:
            raise BadInputError(f"Batch size must be at least 1 (got {self.batch_size}).")
        if self.threads is not None and self.threads < 1:
            raise BadInputError(f"Threads must be at least 1 (got {self.threads}).")
        if self.epsilon is not None and not (0 < self.epsilon < 1):
            raise BadInputError(f"Epsilon must be between 0 and 1 (got {self.epsilon}).")
        if self.new_tokens < 1 or self.prompt_tokens < 1:
            raise BadInputError("Generation needs at least 1 prompt token and 1 new token.")

    # -- derived -------------------------------------------------------------------------
    @property
    def preset_values(self) -> Preset:
        return PRESETS[self.preset]

    @property
    def target_epsilon(self) -> float:
        return self.epsilon if self.epsilon is not None else self.preset_values.epsilon

    @property
    def measurement_t_max_s(self) -> float:
        return self.t_max_s if self.t_max_s is not None else self.preset_values.t_max_s

    @property
    def dims_map(self) -> dict[str, int]:
        return dict(self.dims)

    @property
    def is_gpu(self) -> bool:
        return not self.device.startswith("cpu")

    def label(self) -> str:
        """A short human label: model · runtime · device · precision · batch · threads."""
        parts = [self.model, self.runtime, self.device, self.precision, f"b{self.batch_size}"]
        if self.threads:
            parts.append(f"t{self.threads}")
        if self.scenario is Scenario.GENERATION:
            parts.append(f"gen{self.new_tokens}")
        return " · ".join(parts)

    def workload_key(self) -> tuple[Any, ...]:
        """What must match for two runs to be compared (model hash is checked separately)."""
        return (
            self.model,
            self.scenario.value,
            self.precision,
            self.batch_size,
            self.dims,
            self.input_shapes,
            self.prompt_tokens if self.scenario is Scenario.GENERATION else None,
            self.new_tokens if self.scenario is Scenario.GENERATION else None,
        )

    def config_key(self) -> tuple[Any, ...]:
        """What identifies one configuration: replicates share it."""
        return (
            *self.workload_key(),
            self.runtime,
            self.device,
            self.threads,
            self.ort_provider,
            self.ort_graph_optimization,
        )

    # -- serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scenario"] = self.scenario.value
        d["dims"] = dict(self.dims)
        d["extra"] = dict(self.extra)
        d["input_shapes"] = dict(self.input_shapes)
        d["percentiles"] = list(self.percentiles)
        d["required_tails"] = list(self.required_tails)
        d["tags"] = list(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["scenario"] = Scenario(kw.get("scenario", Scenario.SINGLE_STREAM.value))
        kw["dims"] = tuple(sorted((str(k), int(v)) for k, v in dict(kw.get("dims") or {}).items()))
        kw["extra"] = tuple(
            sorted((str(k), str(v)) for k, v in dict(kw.get("extra") or {}).items())
        )
        kw["input_shapes"] = tuple(
            sorted((str(k), str(v)) for k, v in dict(kw.get("input_shapes") or {}).items())
        )
        for key in ("percentiles", "required_tails"):
            if key in kw:
                kw[key] = tuple(float(x) for x in kw[key])
        kw["tags"] = tuple(str(t) for t in kw.get("tags") or ())
        return cls(**kw)

    def with_(self, **changes: Any) -> RunSpec:
        return replace(self, **changes)


def expand_sweep(
    base: RunSpec,
    *,
    devices: Iterable[str] | None = None,
    runtimes: Iterable[str] | None = None,
    batch_sizes: Iterable[int] | None = None,
    threads: Iterable[int | None] | None = None,
    precisions: Iterable[str] | None = None,
    repeats: int = 1,
    sweep_id: str | None = None,
) -> list[RunSpec]:
    """Expand batch sizes × threads × precisions × devices × runtimes × repeats into runs."""
    axes = (
        list(devices or [base.device]),
        list(runtimes or [base.runtime]),
        list(precisions or [base.precision]),
        list(batch_sizes or [base.batch_size]),
        list(threads or [base.threads]),
    )
    if repeats < 1:
        raise BadInputError(f"Repeats must be at least 1 (got {repeats}).")
    out: list[RunSpec] = []
    for device, runtime, precision, batch, nthreads in itertools.product(*axes):
        for rep in range(repeats):
            out.append(
                replace(
                    base,
                    device=device,
                    runtime=runtime,
                    precision=precision,
                    batch_size=int(batch),
                    threads=nthreads,
                    repeat=rep,
                    sweep_id=sweep_id,
                )
            )
    return out
