"""The result of a run: immutable values with metadata.

The worker sends a ``Measurement`` over its pipe; the supervisor adds energy and makes it a
``RunResult``, and that same value goes into the store, the GUI and reports, encoded and decoded
by ``domain.codec`` (never pickle). Unknown figures are None with a reason (NaN for a stored
figure that could not be computed), never 0.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from wattbench import __version__
from wattbench.domain import codec
from wattbench.domain.instances import InstancesSummary
from wattbench.domain.interference import Interference
from wattbench.domain.percentile import PercentileEstimate as PercentileEstimate
from wattbench.domain.server import ServerSummary
from wattbench.domain.spec import RunSpec
from wattbench.domain.training import TrainingSummary

RESULT_FORMAT_VERSION = 1  # RunResult documents (store, bundles, run --json)
MEASUREMENT_FORMAT_VERSION = 1  # what a worker process sends back


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


# Quality flags (METHOD.md post-checks and ENERGY.md); stored as plain strings.
FLAG_WARMUP_UNSTEADY = "warmup_unsteady"
FLAG_NOT_CONVERGED = "not_converged"
# stopped before T_max, not converged, because rho had stopped shrinking above epsilon
FLAG_RHO_PLATEAU = "rho_plateau"
FLAG_DRIFT = "drift"
FLAG_HIGH_CV = "high_cv"
FLAG_AUTOCORRELATED = "autocorrelated"
FLAG_OUTLIERS = "outliers"
FLAG_THROTTLED = "throttled"
FLAG_BLOCK_TIMING = "block_timing"
FLAG_GC_ENABLED = "gc_enabled"
FLAG_LOW_N_EFF = "tail_low_n_eff"
# the bare loop run right after the window went > 10 % faster or slower than the measured
# loop: the host's own speed changed (shared machine, CPU steal, clocks), so η is not a
# harness figure and throughput may not repeat
FLAG_HOST_UNSTEADY = "host_unsteady"
# other processes used a share of the cores (or the GPU) the run used beyond a threshold
# while it measured: its figures include their interference
FLAG_CONTENDED = "contended"
# a training run whose loss did not fall on its fixed batch: the step may not train
FLAG_LOSS_FLAT = "loss_not_decreasing"


@dataclass(frozen=True)
class Interval:
    """A value with its 95 % confidence interval (lo/hi None when it cannot be computed)."""

    value: float
    lo: float | None = None
    hi: float | None = None

    @property
    def rel_half_width(self) -> float | None:
        if self.lo is None or self.hi is None or self.value == 0:
            return None
        return (self.hi - self.lo) / 2 / abs(self.value)


@dataclass(frozen=True)
class LatencySummary:
    """Per-call latency statistics (block timings already divided by the block size)."""

    n: int
    mean_ns: float
    sd_ns: float
    cv: float
    median_ns: float
    iqr_ns: float
    mad_ns: float
    min_ns: float
    max_ns: float
    mean_lo_ns: float
    mean_hi_ns: float
    rho: float  # relative half-width of the 95 % CI of the mean (batch means, k=20)
    r1: float  # lag-1 autocorrelation
    n_eff: float
    outliers_low: int
    outliers_high: int
    drift: float  # (mean of 2nd half − mean of 1st half) / mean
    percentiles: tuple[PercentileEstimate, ...] = ()

    def percentile(self, p: float) -> PercentileEstimate | None:
        for pe in self.percentiles:
            if abs(pe.p - p) < 1e-9:
                return pe
        return None


@dataclass(frozen=True)
class PhaseEnergy:
    """One energy view's figure split between the prefill and the decode phases of a
    generation run (engine/generation.py says how). prefill_j + decode_j = energy_j, the
    view's energy over the measurement window; above idle subtracts idle_w × each phase's time.
    """

    view: str  # "device" | "system"
    estimate: bool  # the split (or the energy under it) is an estimate, not a measurement
    method: str  # "counter-difference" | "integrated-samples" | "time-share"
    energy_j: float
    prefill_j: float
    decode_j: float
    prefill_s: float  # the phases' shares of the window's duration
    decode_s: float
    prefill_tokens: int  # prompt tokens × sequences × calls
    decode_tokens: int  # (new tokens − 1) × sequences × calls
    output_tokens: int  # new tokens × sequences × calls
    idle_w: float | None = None
    source: str = ""
    note: str = ""  # why the split is an estimate


@dataclass(frozen=True)
class GenerationSummary:
    """Generation figures per sequence (a call runs ``sequences`` sequences concurrently).

    Fields after e2e_tokens_per_s have defaults: documents written before they existed decode.
    """

    prompt_tokens: int
    new_tokens: int
    ttft_ns: Interval  # time to first token
    tpot_ns: Interval  # time per output token = (latency − TTFT) / (tokens − 1)
    decode_tokens_per_s: Interval
    e2e_tokens_per_s: Interval
    sequences: int = 1  # concurrent sequences per call (the batch)
    calls: int = 0  # timed calls (0: not recorded)
    e2e_latency_ns: Interval | None = None  # per sequence: prefill + every decode step
    prefill_tokens_per_s: Interval | None = None  # prompt tokens × sequences / TTFT
    # inter-token latency: percentiles of the per-step decode times (stored raw as
    # arrays["decode_step_ns"])
    itl_ns: tuple[PercentileEstimate, ...] = ()
    itl_steps: int = 0  # decode steps behind itl_ns
    # per-sequence figures whose interval is wider than epsilon (the stopping rule runs on
    # the end-to-end latency; these are checked against the same epsilon after it)
    unconverged: tuple[str, ...] = ()
    phase_energy: tuple[PhaseEnergy, ...] = ()
    phase_energy_na_reason: str | None = None

    def itl(self, p: float) -> PercentileEstimate | None:
        for pe in self.itl_ns:
            if abs(pe.p - p) < 1e-9:
                return pe
        return None


@dataclass(frozen=True)
class MemoryFigures:
    """From a separate pass, so it cannot disturb timing. None = not measurable here."""

    peak_rss_bytes: int | None = None
    torch_allocated_peak_bytes: int | None = None
    torch_reserved_peak_bytes: int | None = None
    gpu_process_peak_bytes: int | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhaseTimings:
    worker_start_s: float | None = None  # spawn → worker ready (reported apart from the run)
    preflight_s: float | None = None
    cold_load_s: float | None = None  # model load
    first_call_ns: int | None = None  # first inference, timed alone
    warmup_iterations: int = 0
    warmup_s: float = 0.0
    warmup_steady: bool = False
    null_call_ns: float | None = None  # per-iteration cost of the timing loop itself
    block_size: int = 1  # calls per timed sample
    harness_overhead_fraction: float | None = None  # loop cost ÷ one inference
    # η = reported throughput ÷ bare-loop throughput (same process, right after measuring)
    harness_efficiency: float | None = None
    measure_s: float = 0.0
    total_s: float | None = None
    gc_disabled: bool = True
    # why measuring stopped: converged | rho_plateau (stopped shrinking) | t_max (None: older)
    stop_reason: str | None = None


@dataclass(frozen=True)
class EnergyFigure:
    """One energy domain over the measurement window (ENERGY.md 'Per run')."""

    domain: str  # "package-0", "dram-0", "gpu0", "power1" ...
    device: str  # compute device this domain belongs to: "cpu", "cuda:0", "node"
    source: str  # "rapl.package-0", "nvml.total_energy", "hwmon.power1_input∫", "estimate.tdp"
    scope: str  # "cpu-package", "dram", "gpu-board", "gpu-module", "node"
    method: str  # "counter-difference", "integrated-samples", "model"
    energy_j: float
    duration_s: float
    avg_power_w: float
    items: int
    energy_per_item_j: float  # gross
    items_per_j: float
    idle_power_w: float | None = None
    energy_per_item_above_idle_j: float | None = None
    rel_uncertainty: float | None = None
    flags: tuple[str, ...] = ()

    @property
    def is_estimate(self) -> bool:
        return self.method == "model" or "estimate" in self.flags


@dataclass(frozen=True)
class Trace:
    """A sampled time series on the monotonic clock shared with the worker."""

    name: str
    unit: str
    t_ns: np.ndarray  # int64, perf_counter_ns
    values: np.ndarray  # float64


@dataclass(frozen=True)
class ModelInfo:
    ref: str
    name: str
    family: str  # builtin | onnx-zoo | file
    format: str  # torch-module | onnx | torchscript | torch-export
    sha256: str
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]  # (name, concrete shape, dtype)
    parameters: int | None = None


@dataclass(frozen=True)
class Measurement:
    """What a run's worker process measured, sent back over the pipe as it is (versioned).

    Its fields are RunResult's measured fields under the same names, plus the measurement
    window on the shared monotonic clock and the item count that energy figures need.
    """

    phases: PhaseTimings
    latency: LatencySummary
    throughput_items_per_s: Interval
    converged: bool
    flags: tuple[str, ...]
    items: int
    window_ns: tuple[int, int]
    system: Mapping[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None
    generation: GenerationSummary | None = None
    memory: MemoryFigures | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    interference: Interference | None = None  # other processes on the run's cores/GPU
    server: ServerSummary | None = None  # the server scenario's load and SLO figures
    training: TrainingSummary | None = None  # the training scenario's step and loss
    notes: str = ""
    format_version: int = MEASUREMENT_FORMAT_VERSION

    def result_fields(self) -> dict[str, Any]:
        """The fields a RunResult takes over as they are."""
        names = {f.name for f in dataclasses.fields(RunResult)} - {"format_version"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in names}


def new_run_id() -> str:
    """A fresh run id: 32 hex digits (a UUID4), stable across stores and bundles."""
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    status: RunStatus
    id: str = field(default_factory=new_run_id)
    reason: str | None = None  # why it failed / was cancelled / why figures are missing
    # what kind of failure: bad_input | crash | time_limit | out_of_memory | error | None
    error_kind: str | None = None
    created_at: str = field(default_factory=_now)
    finished_at: str | None = None
    wattbench_version: str = __version__
    system: Mapping[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None
    phases: PhaseTimings = field(default_factory=PhaseTimings)
    latency: LatencySummary | None = None
    throughput_items_per_s: Interval | None = None
    converged: bool = False
    flags: tuple[str, ...] = ()
    generation: GenerationSummary | None = None
    memory: MemoryFigures | None = None
    energy: tuple[EnergyFigure, ...] = ()
    energy_na_reason: str | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    telemetry: Mapping[str, Trace] = field(default_factory=dict)
    # what other processes did on the run's cores (and GPU) while it measured; None for runs
    # measured before it was recorded (an optional field: older documents still read)
    interference: Interference | None = None
    # the server scenario's own figures (None for other scenarios and for older documents)
    server: ServerSummary | None = None
    # a multi-instance CPU run's instances (its throughput is their sum); None for one instance
    instances: InstancesSummary | None = None
    # the training scenario's step, FLOPs per token and loss (None for other scenarios)
    training: TrainingSummary | None = None
    notes: str = ""
    format_version: int = RESULT_FORMAT_VERSION

    # -- convenience -------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status is RunStatus.DONE

    def with_(self, **changes: Any) -> RunResult:
        return dataclasses.replace(self, **changes)


def host_of(system: Mapping[str, Any]) -> str | None:
    """The machine's name in a system description (None when it was not recorded)."""
    for key in ("host", "hostname", "host_name", "node", "computer_name"):
        value = system.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


# what a system description says about the moment of the run, not about the machine: a
# machine's identity (its row in the store) leaves these out, so runs on one host share it
RUN_STATE_KEYS = frozenset(
    {
        "memory_available_bytes",
        "load_average",
        "affinity",
        "boot_time_s",
        "thread_env",
        "worker_process",
        "unknown",
    }
)


def machine_identity(system: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a system description that names the machine as set up (host, OS, CPU,
    memory, GPUs, frequency settings, package versions), without the state of one run."""
    return {k: v for k, v in system.items() if k not in RUN_STATE_KEYS}


def result_document(result: RunResult, *, dropped: list[str] | None = None) -> dict[str, Any]:
    """A run as its documented JSON (store, bundles, ``run --json``), without raw arrays.

    Non-finite numbers become null (their paths go to ``dropped``); read it back with
    ``codec.from_document(doc, RunResult)``.
    """
    doc: dict[str, Any] = codec.to_document(
        dataclasses.replace(result, arrays={}, telemetry={}), dropped=dropped
    )
    del doc["arrays"], doc["telemetry"]
    return doc
