"""Whether a language model run fits in its device's memory, decided before the run.

The footprint is the weights at the run's precision plus the KV cache of every concurrent
sequence at its full context (prompt + new tokens): 2 (key and value) × layers × KV heads ×
head size × batch × context × bytes per value. Activations of one step are small beside these
(prefill computes the logits of the last position only) and are not counted. ``check_fits``
refuses a run whose footprint exceeds the device's free memory, with the numbers: available RAM
on the CPU, free GPU memory from NVML on CUDA (no CUDA context is made in the caller's process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from wattbench.backends.models.base import DecoderShape
from wattbench.domain.errors import BadInputError

GB = 1e9
# bytes per weight; the KV cache is held in the compute type (16-bit for fp16/bf16, else fp32)
WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
KV_BYTES = {"fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class Footprint:
    weights_bytes: int
    kv_cache_bytes: int
    precision: str
    batch: int
    context: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes


def kv_cache_bytes(shape: DecoderShape, precision: str, batch: int, context: int) -> int:
    per_value = KV_BYTES.get(precision, 4)
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * batch * context * per_value


def footprint(
    shape: DecoderShape, parameters: int, precision: str, batch: int, context: int
) -> Footprint:
    """Weights + KV cache of ``batch`` sequences of ``context`` tokens at ``precision``."""
    weights = int(parameters * WEIGHT_BYTES.get(precision, 4.0))
    kv = kv_cache_bytes(shape, precision, batch, context)
    return Footprint(weights, kv, precision, batch, context)


def _gb(n: float) -> str:
    return f"{n / GB:,.1f} GB"


def describe(fp: Footprint) -> str:
    return (
        f"needs {_gb(fp.total_bytes)} (weights {_gb(fp.weights_bytes)} {fp.precision} + KV "
        f"cache {_gb(fp.kv_cache_bytes)} for {fp.batch:,} × {fp.context:,} tokens)"
    )


def check_fits(fp: Footprint, free_bytes: int, device: str, model: str) -> None:
    """BadInputError (field batch_size) when ``fp`` exceeds ``free_bytes`` on ``device``."""
    if fp.total_bytes <= free_bytes:
        return
    raise BadInputError(
        f"{model} does not fit: it {describe(fp)}; {_gb(free_bytes)} free on {device}. Use a "
        "smaller batch or context, a lower precision, or a device with more memory.",
        field="batch_size",
    )


def free_bytes(device: str) -> int | None:
    """Memory free for a run on ``device`` now: available RAM on the CPU, free memory of an
    NVIDIA GPU as NVML reports it (no CUDA context is made in the caller's process); None
    where it cannot be known (other devices, no NVML)."""
    if device == "cpu":
        import psutil

        return int(psutil.virtual_memory().available)
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return _nvml_free(index)
    return None


def _nvml_index(index: int) -> int | None:
    """The NVML index of CUDA device ``index`` (CUDA_VISIBLE_DEVICES renumbers them)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return index
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if index >= len(ids) or not ids[index].isdigit():
        return None  # hidden, or named by UUID: not worth guessing
    return int(ids[index])


def _nvml_free(index: int) -> int | None:
    nvml_index = _nvml_index(index)
    if nvml_index is None:
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(nvml_index))
        return int(info.free)
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
