"""Weight-only int8 on torch, through torchao (torch's own ``torch.ao.quantization`` is
deprecated): every ``nn.Linear`` keeps int8 weights with a scale per output channel and
computes in float32. The CPU only here; other devices are refused before a run."""

from __future__ import annotations

import importlib.util
from typing import Any

from wattbench.backends.models.base import ModelEntry
from wattbench.domain.errors import UnsupportedOptionError

INT8 = "int8"
INT8_DEVICES = ("cpu",)
METHOD = "torchao Int8WeightOnlyConfig: nn.Linear weights int8 per channel, float32 compute"


def available() -> bool:
    return importlib.util.find_spec("torchao") is not None


def check(device_kind: str, model: ModelEntry) -> None:
    """UnsupportedOptionError when weight-only int8 cannot run ``model`` on this device."""
    if device_kind not in INT8_DEVICES:
        raise UnsupportedOptionError(
            f"int8 on torch is weight-only int8 on the CPU; {device_kind} is not supported "
            "here: use fp16/bf16 on the GPU, or run int8 on the CPU.",
            field="precision",
        )
    if model.format != "torch-module" and model.decoder is None:
        raise UnsupportedOptionError(
            f"int8 on torch quantizes the weights of a model Wattbench builds (built-ins, "
            f"language models); {model.ref} is a {model.format} file: run it at "
            "fp32/bf16/fp16.",
            field="precision",
        )
    if not available():
        raise UnsupportedOptionError(
            "int8 on torch needs torchao: pip install torchao.", field="precision"
        )


def quantized_layers(module: Any) -> int:
    """How many layers of ``module`` hold int8 weights (what a run records)."""
    return sum(1 for m in module.modules() if "Int8" in type(getattr(m, "weight", None)).__name__)


def quantize(module: Any) -> Any:
    """``module`` with its Linear weights quantized to int8 in place (float32 otherwise)."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantize_(module, Int8WeightOnlyConfig())
    return module
