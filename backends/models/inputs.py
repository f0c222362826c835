"""Explicit input-shape parsing and seeded synthetic input data.

No model is downloaded and no data set is read: inputs are synthesized from the model's
declared inputs, the same for every runtime and device given the same seed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
from wattbench.domain.errors import ShapeError

log = logging.getLogger(__name__)

# Integer inputs with no declared range get token ids in [0, DEFAULT_INT_HIGH).
DEFAULT_INT_HIGH = 100

DTYPE_ALIASES = {
    "float": "float32",
    "fp32": "float32",
    "f32": "float32",
    "float32": "float32",
    "half": "float16",
    "fp16": "float16",
    "f16": "float16",
    "float16": "float16",
    "double": "float64",
    "fp64": "float64",
    "float64": "float64",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "int": "int64",
    "long": "int64",
    "int64": "int64",
    "i64": "int64",
    "int32": "int32",
    "i32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}

_SHAPE_HELP = 'write it as DIMSxDIMS[:dtype], e.g. "1x3x224x224:float32" or "1x128:int64"'


def normalize_dtype(text: str) -> str:
    """A numpy dtype name from a user or model spelling ("fp16", "float", "int64")."""
    key = text.strip().lower()
    if key not in DTYPE_ALIASES:
        raise ShapeError(
            f"Unknown dtype {text!r}: use one of {', '.join(sorted(set(DTYPE_ALIASES.values())))}.",
            field="input_shapes",
        )
    return DTYPE_ALIASES[key]


def parse_shape(text: str) -> tuple[tuple[int, ...], str]:
    """Parse "1x3x224x224:float32" (dtype optional, default float32) into (shape, dtype)."""
    raw = text.strip()
    shape_part, _, dtype_part = raw.partition(":")
    dtype = normalize_dtype(dtype_part) if dtype_part.strip() else "float32"
    shape_part = shape_part.strip().lower()
    if shape_part in ("", "scalar"):
        return (), dtype
    pieces = re.split(r"\s*[x×,]\s*", shape_part)
    try:
        dims = tuple(int(p) for p in pieces)
    except ValueError:
        raise ShapeError(
            f"Cannot read the shape {text!r}: {_SHAPE_HELP}.", field="input_shapes"
        ) from None
    if any(d < 1 for d in dims):
        raise ShapeError(
            f"Every dimension of {text!r} must be at least 1: {_SHAPE_HELP}.", field="input_shapes"
        )
    return dims, dtype


def format_shape(shape: Sequence[int | str]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _is_mask(name: str) -> bool:
    return "mask" in name.lower()


def synthesize(
    inputs: Sequence[tuple[str, tuple[int, ...], str]],
    seed: int = 0,
    highs: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded input arrays: floats standard normal, masks ones, integers in [0, high).

    ``highs`` gives the exclusive upper bound of integer inputs (a vocabulary size); integer
    inputs without one get [0, DEFAULT_INT_HIGH). The same seed gives the same data.
    """
    rng = np.random.default_rng(seed)
    highs = highs or {}
    out: dict[str, np.ndarray] = {}
    for name, shape, dtype in inputs:
        if dtype == "bfloat16":
            raise ShapeError(
                f"Input {name!r} is bfloat16, which numpy cannot hold: synthesize it as float32 "
                "and convert on the device."
            )
        np_dtype = np.dtype(dtype)
        if np_dtype.kind == "f":
            out[name] = rng.standard_normal(shape, dtype=np.float32).astype(np_dtype, copy=False)
        elif np_dtype.kind == "b":
            out[name] = np.ones(shape, dtype=np_dtype)
        elif np_dtype.kind in "iu":
            if _is_mask(name):
                out[name] = np.ones(shape, dtype=np_dtype)
            else:
                high = int(highs.get(name, DEFAULT_INT_HIGH))
                if high < 1:
                    raise ShapeError(f"Input {name!r}: the value range [0, {high}) is empty.")
                out[name] = rng.integers(0, high, size=shape, dtype=np_dtype)
        else:
            raise ShapeError(
                f"Input {name!r} has dtype {dtype}, which Wattbench cannot synthesize: "
                "supported are float, integer and bool inputs."
            )
    return out
