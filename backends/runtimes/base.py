"""The inference-runtime plugin interface.

A runtime is found through the ``wattbench.runtimes`` entry point group; built-ins register
the same way a third party would. Vendor imports (torch, onnxruntime) happen inside the
plugin's methods, never at module import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from wattbench.backends.models.base import ModelEntry


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (from its metadata: nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str  # why it is (not) usable, in words for the user
    version: str | None = None


@dataclass(frozen=True)
class DeviceInfo:
    """A compute device as one runtime sees it."""

    id: str  # "cpu", "cuda:0", "mps", "xpu:0"
    kind: str  # cpu | cuda | rocm | mps | xpu
    name: str
    runtime: str  # torch | onnxruntime
    usable: bool
    reason: str  # why it is (not) usable
    details: dict[str, Any] = field(default_factory=dict)  # memory, capability, driver, providers
    precisions: tuple[str, ...] = ("fp32",)


@dataclass(frozen=True)
class RuntimeOptions:
    """What a runtime plugin is asked to do (the engine makes it from a RunSpec)."""

    precision: str = "fp32"
    batch_size: int = 1
    threads: int | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    input_shapes: Mapping[str, str] = field(default_factory=dict)  # name -> "1x3x224:float32"
    ort_provider: str | None = None
    ort_graph_optimization: str = "all"
    prompt_tokens: int = 32
    new_tokens: int = 16
    seed: int = 0
    generation: bool = False  # prefill + decode steps with a KV cache (GenerativeModel)
    # a training step per run_once (forward, backward, optimizer step): ``batch_size``
    # sequences of ``prompt_tokens`` tokens per micro-batch, ``grad_accum`` micro-batches
    training: bool = False
    grad_accum: int = 1
    activation_checkpointing: bool = False
    find_micro_batch: bool = False  # the engine searches the largest micro-batch that fits
    # data-parallel ranks, one process and device each (torch_ddp.py); ``batch_size`` per rank
    data_parallel: int = 1


@dataclass(frozen=True)
class DeviceMemory:
    """Device memory of a loaded model as its runtime sees it; None = not measurable here."""

    allocated_peak_bytes: int | None = None  # the framework allocator's peak (torch)
    reserved_peak_bytes: int | None = None  # ... and what it reserved from the device
    process_bytes: int | None = None  # the device's own figure for this process (NVML)
    notes: tuple[str, ...] = ()  # why a figure is n/a


class LoadedModel(Protocol):
    """A model loaded on a device with synthesized inputs, ready to be timed.

    One loaded model may be called from several threads at once (the server scenario's
    streams). A model whose runtime keeps settings per thread also defines
    ``prepare_thread()``, which each such thread calls once before its first ``run_once``.
    """

    items_per_call: int  # inferences per run_once (the batch size)
    input_shapes: tuple[tuple[str, tuple[int, ...], str], ...]

    def run_once(self) -> None:
        """One inference on the prepared inputs; returns only when the device is done."""

    def synchronize(self) -> None:
        """Wait for the device (no-op on the CPU)."""

    def close(self) -> None: ...

    def settings(self) -> dict[str, Any]:
        """Effective runtime settings (threads, providers, options) for the system record."""
        ...

    def reset_peak_memory(self) -> None:
        """Start a new peak for peak_memory() (the memory pass calls it first)."""

    def peak_memory(self) -> DeviceMemory:
        """Device memory since reset_peak_memory(): vendor queries stay in the plugin."""
        ...


class GenerativeModel(LoadedModel, Protocol):
    """A decoder that generates a fixed number of tokens with a KV cache."""

    def prefill(self) -> None:
        """Process the prompt and produce the first token (synchronized)."""

    def decode_step(self) -> None:
        """Produce one more token from the cache (synchronized)."""

    def reset(self) -> None:
        """Drop the cache so that the next prefill starts a new sequence (not timed)."""


@runtime_checkable
class Runtime(Protocol):
    name: str
    # model formats it loads, its native ones first: "torch-module", "onnx", "torchscript" ...
    # (a model runs on the runtime that lists its format first when none is chosen)
    formats: tuple[str, ...]

    def available(self) -> Availability: ...

    def devices(self) -> list[DeviceInfo]: ...

    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        """Raise UnsupportedOptionError / DeviceError before a run if this cannot work."""

    def load(self, model: ModelEntry, device: str, options: RuntimeOptions) -> LoadedModel: ...
