"""The inference-runtime plugin interface.

A runtime is found through the ``wattbench.runtimes`` entry point group; built-ins register
the same way a third party would. Vendor imports (torch, onnxruntime) happen inside the
plugin's methods, never at module import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from wattbench.backends.models.base import ModelEntry


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
    precision: str = "fp32"
    batch_size: int = 1
    threads: int | None = None
    dims: tuple[tuple[str, int], ...] = ()
    input_shapes: tuple[tuple[str, str], ...] = ()  # name -> "1x3x224x224:float32"
    ort_provider: str | None = None
    ort_graph_optimization: str = "all"
    prompt_tokens: int = 32
    new_tokens: int = 16
    seed: int = 0


class LoadedModel(Protocol):
    """A model loaded on a device with synthesized inputs, ready to be timed."""

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

    def available(self) -> Availability: ...

    def devices(self) -> list[DeviceInfo]: ...

    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        """Raise UnsupportedOptionError / DeviceError before a run if this cannot work."""

    def load(self, model: ModelEntry, device: str, options: RuntimeOptions) -> LoadedModel: ...
