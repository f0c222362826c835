"""What to run: an immutable run specification, its presets, and sweep expansion."""

from __future__ import annotations

import itertools
import math
import random
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from wattbench.domain.errors import BadInputError


class Scenario(StrEnum):
    SINGLE_STREAM = "single-stream"  # one request at a time, batch 1 by default: latency
    OFFLINE = "offline"  # batches back to back: throughput
    GENERATION = "generation"  # token generation: TTFT, TPOT, tokens/s
    # Poisson arrivals served by concurrent streams: latency with queueing, an SLO's goodput
    # (one model call per request; for a generative model one request is a whole sequence:
    # prefill, then decode steps, with TTFT and TPOT per request)
    SERVER = "server"
    # a decoder language model's training step on synthetic tokens: forward, backward and an
    # AdamW step over ``grad_accum`` micro-batches of ``batch_size`` sequences of
    # ``prompt_tokens`` tokens; one call is one optimizer step, its items are the tokens
    TRAINING = "training"


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

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")
MAX_SAMPLE_HZ = 1000.0  # sysfs and NVML update at most every ~1 ms; faster only costs CPU
MIN_NEW_TOKENS = 2  # the time per output token needs a second token
MAX_GRAD_ACCUM = 1024
MAX_DATA_PARALLEL = 64
TRAINING_PRECISIONS = ("fp32", "bf16")
MAX_INSTANCES = 256  # worker processes of a multi-instance run, one per core set
SLO_METRICS = ("latency", "ttft", "tpot")  # what a server run's SLO may limit
MAX_STREAMS = 256
# a fleet host's name (``wattbench agent --name``): shown in labels, so plain and short
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOKENS_MATTER = frozenset(
    {Scenario.GENERATION, Scenario.SERVER}
)  # concurrent streams of a server run (threads in one worker process)
# refs of shape-only language models: real architectures with random weights, always said so
RANDOM_WEIGHTS_PREFIX = "llm:"
RANDOM_WEIGHTS = "random weights"


def _finite_positive(value: float | None, field: str, what: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(f"{what} must be a number (got {value!r}).", field=field)
    if not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{what} must be a positive number (got {value:g}).", field=field)


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run: plain data, checked when made (domain.codec encodes it).

    The mappings (``dims``, ``input_shapes``, ``extra``) are read-only by convention.
    """

    model: str  # catalog ref ("builtin:mlp-small", "onnx-zoo:resnet50") or a file path
    device: str = "cpu"  # "cpu", "cuda:0", "mps", "xpu:0"
    runtime: str = "torch"  # a registered runtime plugin ("torch", "onnxruntime", ...)
    precision: str = "fp32"
    batch_size: int = 1
    threads: int | None = None  # intra-op threads; None = runtime default
    scenario: Scenario = Scenario.SINGLE_STREAM
    preset: str = "default"
    epsilon: float | None = None  # overrides the preset
    t_max_s: float | None = None  # overrides the preset
    dims: Mapping[str, int] = field(default_factory=dict)  # dynamic dimensions {"seq_len": 128}
    # explicit input shapes for files that declare none (TorchScript): name -> "1x3x224x224:float32"
    input_shapes: Mapping[str, str] = field(default_factory=dict)
    prompt_tokens: int = 32  # generation: prompt length
    new_tokens: int = 16  # generation: fixed number of new tokens (min = max)
    # server: Poisson arrivals per second (with an SLO, where its search starts; None = from
    # the measured call time), concurrent streams, and the latency SLO searched for
    target_rate: float | None = None
    streams: int = 1
    slo_ms: float | None = None
    slo_percentile: float = 0.99
    # what the SLO limits: "latency" (end to end), or for a generative model "ttft" (first
    # token − arrival) or "tpot" (time per output token after the first)
    slo_metric: str = "latency"
    ort_provider: str | None = None  # e.g. "CUDAExecutionProvider"; None = from device
    ort_graph_optimization: str = "all"  # disable | basic | extended | all
    percentiles: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99, 0.999)
    required_tails: tuple[float, ...] = ()  # tails that must be within 5 % before stopping
    idle_baseline: bool = True
    sample_hz: float = 10.0
    time_limit_s: float | None = None  # whole worker wall-clock limit; None = derived
    memory_pass: bool = True
    # the order of a plan's runs: replicates run in rounds, each configuration once per round
    repeat: int = 0  # index of this replicate, which is also its round (0 = the first)
    position: int = 0  # its place within its round (0 = the first to run)
    order_seed: int | None = None  # what shuffled each round; None = the listed order
    sweep_id: str | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    # multi-instance CPU runs (engine/instances.py): copies of the model run together, each
    # in its own worker pinned to its own cores with ``threads`` threads; ``cpu_set``: the
    # cores one worker is pinned to, applied when it starts (() = the cores it started with)
    instances: int = 1
    cpu_set: tuple[int, ...] = ()
    # the fleet host that runs it (the name its ``wattbench agent`` gave; service/fleet.py);
    # None = the machine that planned it. Part of the configuration: hosts are compared.
    host: str | None = None
    # training: micro-batches per optimizer step, and activations recomputed in the backward
    grad_accum: int = 1
    activation_checkpointing: bool = False
    # training: the largest micro-batch that fits, searched from ``batch_size`` up by
    # doubling until the device runs out of memory (engine/microbatch.py)
    find_micro_batch: bool = False
    # training: data-parallel ranks on this host, one process per device (gloo on the CPU,
    # NCCL/RCCL on GPUs), each with ``batch_size`` sequences per micro-batch
    data_parallel: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.scenario, Scenario):
            try:
                object.__setattr__(self, "scenario", Scenario(self.scenario))
            except ValueError:
                raise BadInputError(
                    f"Unknown scenario {self.scenario!r}: choose one of "
                    f"{', '.join(s.value for s in Scenario)}.",
                    field="scenario",
                ) from None
        if not self.model.strip():
            raise BadInputError("Choose a model: a catalog name or a model file.", field="model")
        if not self.runtime.strip():
            raise BadInputError("Choose a runtime.", field="runtime")
        if self.precision not in PRECISIONS:
            raise BadInputError(
                f"Unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}.",
                field="precision",
            )
        if self.preset not in PRESETS:
            raise BadInputError(
                f"Unknown preset {self.preset!r}: choose one of {', '.join(PRESETS)}.",
                field="preset",
            )
        if self.batch_size < 1:
            raise BadInputError(
                f"Batch size must be at least 1 (got {self.batch_size}).", field="batch_size"
            )
        if self.threads is not None and self.threads < 1:
            raise BadInputError(
                f"Threads must be at least 1 (got {self.threads}).", field="threads"
            )
        if self.epsilon is not None and not (0 < self.epsilon < 1):
            raise BadInputError(
                f"Epsilon must be between 0 and 1 (got {self.epsilon:g}).", field="epsilon"
            )
        _finite_positive(self.t_max_s, "t_max_s", "The longest measurement (T_max, seconds)")
        _finite_positive(self.time_limit_s, "time_limit_s", "The time limit (seconds)")
        _finite_positive(self.sample_hz, "sample_hz", "The power sampling rate (Hz)")
        if self.sample_hz > MAX_SAMPLE_HZ:
            raise BadInputError(
                f"The power sampling rate must be at most {MAX_SAMPLE_HZ:g} Hz "
                f"(got {self.sample_hz:g}).",
                field="sample_hz",
            )
        self._check_server()
        for name, size in self.dims.items():
            if size < 1:
                raise BadInputError(
                    f"Dimension {name} must be at least 1 (got {size}).", field="dims"
                )
        if self.prompt_tokens < 1:
            raise BadInputError("Generation needs at least 1 prompt token.", field="prompt_tokens")
        if self.new_tokens < 1 or (
            self.scenario is Scenario.GENERATION and self.new_tokens < MIN_NEW_TOKENS
        ):
            raise BadInputError(
                f"Generation needs at least {MIN_NEW_TOKENS} new tokens to measure the time "
                f"per output token (got {self.new_tokens}).",
                field="new_tokens",
            )
        self._check_instances()
        self._check_training()
        if self.host is not None and not HOST_NAME.fullmatch(self.host):
            raise BadInputError(
                f"A fleet host name is 1 to 64 letters, digits, '.', '_' or '-' "
                f"(got {self.host!r}).",
                field="host",
            )

    def _check_training(self) -> None:
        n = self.grad_accum
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_GRAD_ACCUM:
            raise BadInputError(
                f"Gradient accumulation is a whole number of micro-batches from 1 to "
                f"{MAX_GRAD_ACCUM} (got {n!r}).",
                field="grad_accum",
            )
        dp = self.data_parallel
        if isinstance(dp, bool) or not isinstance(dp, int) or not 1 <= dp <= MAX_DATA_PARALLEL:
            raise BadInputError(
                f"Data-parallel ranks are a whole number from 1 to {MAX_DATA_PARALLEL} "
                f"(got {dp!r}).",
                field="data_parallel",
            )
        if self.scenario is Scenario.TRAINING:
            if dp > 1 and self.instances > 1:
                raise BadInputError(
                    "Data-parallel ranks are the training run's processes: give no instances.",
                    field="instances",
                )
            if self.precision not in TRAINING_PRECISIONS:
                raise BadInputError(
                    f"A training step runs in {' or '.join(TRAINING_PRECISIONS)} (bf16 as "
                    f"autocast over fp32 weights), not {self.precision}.",
                    field="precision",
                )
            if self.prompt_tokens < 2:
                raise BadInputError(
                    "A training sequence needs at least 2 tokens (each predicts the next).",
                    field="prompt_tokens",
                )
            return
        given = [
            (name, field_)
            for name, field_, on in (
                ("Gradient accumulation", "grad_accum", n != 1),
                (
                    "Activation checkpointing",
                    "activation_checkpointing",
                    self.activation_checkpointing,
                ),
                ("The micro-batch search", "find_micro_batch", self.find_micro_batch),
                ("Data parallelism", "data_parallel", dp != 1),
            )
            if on
        ]
        if given:
            raise BadInputError(
                f"{given[0][0]} applies to the training scenario only: add --scenario training.",
                field=given[0][1],
            )

    def _check_instances(self) -> None:
        n = self.instances
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_INSTANCES:
            raise BadInputError(
                f"Instances must be a whole number from 1 to {MAX_INSTANCES} (got {n!r}).",
                field="instances",
            )
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in self.cpu_set):
            raise BadInputError(
                f"A CPU set lists CPU numbers from 0 (got {self.cpu_set!r}).", field="cpu_set"
            )
        if len(set(self.cpu_set)) != len(self.cpu_set):
            raise BadInputError(
                f"A CPU set names each CPU once (got {self.cpu_set!r}).", field="cpu_set"
            )
        if n == 1:
            return
        if self.is_gpu:
            raise BadInputError(
                f"Several instances are pinned to CPU cores: they run on the cpu device only "
                f"(got {self.device}); run one instance on {self.device}.",
                field="instances",
            )
        if self.scenario not in (Scenario.SINGLE_STREAM, Scenario.OFFLINE):
            raise BadInputError(
                f"Several instances run the single-stream or offline scenario (got "
                f"{self.scenario.value}); run one instance for {self.scenario.value}.",
                field="instances",
            )
        if self.cpu_set:
            raise BadInputError(
                "A multi-instance run chooses the cores of its instances: give no CPU set.",
                field="cpu_set",
            )

    def _check_server(self) -> None:
        _finite_positive(self.target_rate, "target_rate", "The arrival rate (requests/s)")
        _finite_positive(self.slo_ms, "slo_ms", "The latency SLO (ms)")
        if isinstance(self.streams, bool) or not isinstance(self.streams, int) or self.streams < 1:
            raise BadInputError(
                f"Streams must be a whole number of at least 1 (got {self.streams!r}).",
                field="streams",
            )
        if self.streams > MAX_STREAMS:
            raise BadInputError(
                f"Streams must be at most {MAX_STREAMS} (got {self.streams}).", field="streams"
            )
        if not 0 < self.slo_percentile < 1:
            raise BadInputError(
                f"The SLO percentile must be between 0 and 1, e.g. 0.99 for p99 "
                f"(got {self.slo_percentile:g}).",
                field="slo_percentile",
            )
        if self.slo_metric not in SLO_METRICS:
            raise BadInputError(
                f"The SLO limits one of {', '.join(SLO_METRICS)} (got {self.slo_metric!r}).",
                field="slo_ms",
            )
        if self.slo_metric == "tpot" and self.new_tokens < MIN_NEW_TOKENS:
            raise BadInputError(
                f"An SLO on the time per output token needs at least {MIN_NEW_TOKENS} new "
                f"tokens per request (got {self.new_tokens}).",
                field="new_tokens",
            )
        server = self.scenario is Scenario.SERVER
        if server and self.target_rate is None and self.slo_ms is None:
            raise BadInputError(
                "The server scenario needs an arrival rate (--rate), a latency SLO to search "
                "for (--slo p99=100ms), or both.",
                field="target_rate",
            )
        if not server and (self.target_rate is not None or self.slo_ms is not None):
            what = "An arrival rate" if self.target_rate is not None else "A latency SLO"
            raise BadInputError(
                f"{what} applies to the server scenario only: add --scenario server.",
                field="target_rate" if self.target_rate is not None else "slo_ms",
            )
        if not server and self.streams != 1:
            raise BadInputError(
                "Concurrent streams apply to the server scenario only: add --scenario server.",
                field="streams",
            )

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
    def is_gpu(self) -> bool:
        return not self.device.startswith("cpu")

    @property
    def model_label(self) -> str:
        """The model's ref, with "(random weights)" for a shape-only language model."""
        if self.model.startswith(RANDOM_WEIGHTS_PREFIX):
            return f"{self.model} ({RANDOM_WEIGHTS})"
        return self.model

    def label(self) -> str:
        """A short human label: model · runtime · device · precision · batch · threads."""
        parts = [self.model_label, self.runtime, self.device, self.precision]
        if self.host is not None:
            parts.insert(0, f"@{self.host}")
        parts.append(f"b{self.batch_size}")
        if self.threads:
            parts.append(f"t{self.threads}")
        if self.instances > 1:
            parts.append(f"i{self.instances}")
        if self.scenario is Scenario.GENERATION:
            parts.append(f"gen{self.new_tokens}")
        if self.scenario is Scenario.SERVER:
            parts.append(f"s{self.streams}")
            parts.append(self.server_load_label)
        if self.scenario is Scenario.TRAINING:
            parts.append(self.training_label)
        return join_label(parts)

    @property
    def training_label(self) -> str:
        """What one training step is: 'train s128 ×4 ckpt' (sequence, accumulation, recompute)."""
        if self.scenario is not Scenario.TRAINING:
            return ""
        accum = f" ×{self.grad_accum}" if self.grad_accum > 1 else ""
        ckpt = " ckpt" if self.activation_checkpointing else ""
        auto = " mb max" if self.find_micro_batch else ""
        dp = f" dp{self.data_parallel}" if self.data_parallel > 1 else ""
        return f"train s{self.prompt_tokens}{accum}{ckpt}{auto}{dp}"

    @property
    def server_load_label(self) -> str:
        """What load a server run offers: its SLO search ('p99≤100ms') or its rate ('100/s')."""
        if self.scenario is not Scenario.SERVER:
            return ""
        if self.slo_ms is not None:
            metric = "" if self.slo_metric == "latency" else f"{self.slo_metric}:"
            return f"{metric}p{self.slo_percentile * 100:g}≤{self.slo_ms:g}ms"
        return f"{self.target_rate:g}/s"

    def workload_key(self) -> tuple[Any, ...]:
        """What must match for two runs to be compared (model hash is checked separately)."""
        return (
            self.model,
            self.scenario.value,
            self.precision,
            self.batch_size,
            tuple(sorted(self.dims.items())),
            tuple(sorted(self.input_shapes.items())),
            # (a server run of a generative model serves generation requests of this size)
            self.prompt_tokens if self.scenario in _TOKENS_MATTER else None,
            self.new_tokens if self.scenario in _TOKENS_MATTER else None,
            self.server_load_label or None,
            self.training_label or None,
        )

    def config_key(self) -> tuple[Any, ...]:
        """What identifies one configuration: replicates share it."""
        return (
            *self.workload_key(),
            self.runtime,
            self.device,
            self.threads,
            self.instances,
            self.streams,
            self.ort_provider,
            self.ort_graph_optimization,
            self.host,
        )

    def with_(self, **changes: Any) -> RunSpec:
        return replace(self, **changes)


MAX_ORDER_SEED = 2**32 - 1


LABEL_SEPARATOR = " · "


def join_label(parts: Iterable[str]) -> str:
    """Every run and configuration label: its fields joined by " · ", an empty field left
    out (no "a ·  · b", no trailing separator)."""
    return LABEL_SEPARATOR.join(p.strip() for p in parts if p and p.strip())


def new_order_seed() -> int:
    """A fresh seed for the order of a plan's runs (recorded, so the order can be repeated)."""
    return secrets.randbelow(MAX_ORDER_SEED + 1)


def interleave(
    configurations: Sequence[RunSpec], replicates: int, seed: int | None = None
) -> list[RunSpec]:
    """The runs of ``replicates`` replicates of each configuration, in rounds: every round runs
    each configuration once, so a drift of the host spreads over all of them instead of landing
    between them. With a ``seed`` each round is shuffled (``random.Random(seed)``, one shuffle
    per round: the same seed and configurations give the same order); without one, every round
    keeps the listed order. Each run records its round (``repeat``), ``position`` and the seed.
    """
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise BadInputError(f"Repeats must be at least 1 (got {replicates}).", field="repeat")
    if seed is not None and not 0 <= seed <= MAX_ORDER_SEED:
        raise BadInputError(
            f"The order seed must be a whole number from 0 to {MAX_ORDER_SEED} (got {seed}).",
            field="order_seed",
        )
    rng = random.Random(seed)
    out: list[RunSpec] = []
    for rnd in range(replicates):
        order = list(range(len(configurations)))
        if seed is not None:
            rng.shuffle(order)
        out += [
            replace(configurations[i], repeat=rnd, position=pos, order_seed=seed)
            for pos, i in enumerate(order)
        ]
    return out


def expand_sweep(
    base: RunSpec,
    *,
    devices: Iterable[str] | None = None,
    runtimes: Iterable[str] | None = None,
    batch_sizes: Iterable[int] | None = None,
    threads: Iterable[int | None] | None = None,
    precisions: Iterable[str] | None = None,
    streams: Iterable[int] | None = None,
    repeats: int = 1,
    sweep_id: str | None = None,
    seed: int | None = None,
) -> list[RunSpec]:
    """Expand devices × runtimes × precisions × batch sizes × threads × streams (server) into
    configurations, and ``repeats`` replicates of them into runs, in rounds (``interleave``)."""
    axes = (
        list(devices or [base.device]),
        list(runtimes or [base.runtime]),
        list(precisions or [base.precision]),
        list(batch_sizes or [base.batch_size]),
        list(threads or [base.threads]),
        list(streams or [base.streams]),
    )
    configurations = [
        replace(
            base,
            device=device,
            runtime=runtime,
            precision=precision,
            batch_size=int(batch),
            threads=nthreads,
            streams=int(nstreams),
            sweep_id=sweep_id,
        )
        for device, runtime, precision, batch, nthreads, nstreams in itertools.product(*axes)
    ]
    return interleave(configurations, repeats, seed)
