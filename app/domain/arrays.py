"""Compact, pickle-free encoding of numeric arrays (for the worker pipe, the store, bundles)."""

from __future__ import annotations

import base64
import math
import zlib
from typing import Any

import numpy as np
from wattbench.domain.errors import BundleError

# Only plain numeric dtypes are ever decoded: nothing in a stored array can execute code.
ALLOWED_DTYPES = ("<i8", "<i4", "<f8", "<f4", "|u1", "<u8", "|b1")
MAX_ELEMENTS = 200_000_000


def pack_array(a: np.ndarray, level: int = 1) -> bytes:
    """Header-free compressed bytes; dtype and shape travel alongside (see array_to_dict)."""
    return zlib.compress(np.ascontiguousarray(a).tobytes(), level)


def storable(a: np.ndarray) -> np.ndarray:
    """``a`` in little-endian order, contiguous; ValueError unless its dtype is allowed."""
    a = np.ascontiguousarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dt.str not in ALLOWED_DTYPES:
        raise ValueError(f"an array of dtype {dt.str} cannot be stored or sent")
    return a.astype(dt, copy=False)


def layout(dtype: object, shape: object) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """Check an encoded array's dtype and shape: (dtype, shape, bytes expected).

    BundleError when the dtype is not a plain numeric one, the shape is not a list of
    non-negative ints, or the array would exceed MAX_ELEMENTS.
    """
    if dtype not in ALLOWED_DTYPES:
        raise BundleError(f"Array dtype {dtype!r} is not allowed; the data may be tampered.")
    if not isinstance(shape, list | tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise BundleError(f"Array shape {shape!r} is invalid; the data may be tampered.")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise BundleError(f"Array of {count} elements is larger than allowed ({MAX_ELEMENTS}).")
    dt = np.dtype(str(dtype))
    return dt, tuple(shape), count * dt.itemsize


def unpack_array(data: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dt, shape, expected = layout(dtype, shape)
    try:
        d = zlib.decompressobj()
        raw = d.decompress(data, expected + 1)
    except zlib.error as exc:
        raise BundleError(f"Array data is corrupt ({exc}); re-export it.") from exc
    if len(raw) != expected or d.unconsumed_tail:
        raise BundleError(
            f"Array data has {len(raw)} bytes where {expected} were expected; it is truncated "
            "or tampered."
        )
    out = np.frombuffer(raw, dtype=dt).reshape(shape)
    out.flags.writeable = False
    return out


def array_to_dict(a: np.ndarray) -> dict[str, Any]:
    a = storable(a)
    return {
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "zlib_b64": base64.b64encode(pack_array(a)).decode("ascii"),
    }


def array_from_dict(d: Any) -> np.ndarray:
    if not isinstance(d, dict) or not {"dtype", "shape", "zlib_b64"} <= set(d):
        raise BundleError("An array entry is malformed; the data may be truncated or tampered.")
    if not isinstance(d["shape"], list) or not isinstance(d["zlib_b64"], str):
        raise BundleError("An array entry has wrong types; the data may be tampered.")
    try:
        data = base64.b64decode(d["zlib_b64"], validate=True)
    except (ValueError, TypeError) as exc:
        raise BundleError("An array entry is not valid base64; the data may be tampered.") from exc
    return unpack_array(data, str(d["dtype"]), tuple(d["shape"]))
