"""Message codec for the worker pipe: a JSON header followed by raw array bytes.

Nothing is pickled: a message is ``kind`` + a JSON-able payload + named numeric arrays. The
frame is ``b"WBM1" | u32 header length | header JSON | array bytes...``; the header lists each
array's dtype, shape and byte length. Only plain numeric dtypes are accepted on decode, so a
message cannot carry anything executable. Arrays travel uncompressed (the pipe is local).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from wattbench.domain.arrays import ALLOWED_DTYPES, MAX_ELEMENTS

log = logging.getLogger(__name__)

MAGIC = b"WBM1"
_LEN = struct.Struct("<I")

# Message kinds sent by the worker.
KIND_READY = "ready"
KIND_PROGRESS = "progress"
KIND_RESULT = "result"
KIND_ERROR = "error"
KINDS = (KIND_READY, KIND_PROGRESS, KIND_RESULT, KIND_ERROR)


class MessageError(ValueError):
    """A frame on the worker pipe is malformed (truncated, wrong magic, bad dtype)."""


@dataclass(frozen=True)
class Message:
    kind: str
    payload: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def encode_message(
    kind: str, payload: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> bytes:
    """Frame one message as bytes for ``Connection.send_bytes``."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    descs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, arr in (arrays or {}).items():
        a = np.ascontiguousarray(arr)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        a = a.astype(dt, copy=False)
        if dt.str not in ALLOWED_DTYPES:
            raise ValueError(f"array {name!r} has dtype {dt.str}, which cannot be sent")
        raw = a.tobytes()
        descs.append(
            {"name": str(name), "dtype": dt.str, "shape": list(a.shape), "nbytes": len(raw)}
        )
        blobs.append(raw)
    header = json.dumps(
        {"kind": kind, "payload": dict(payload), "arrays": descs}, allow_nan=False
    ).encode("utf-8")
    return b"".join([MAGIC, _LEN.pack(len(header)), header, *blobs])


def decode_message(data: bytes) -> Message:
    """Parse a frame made by :func:`encode_message`; raises MessageError when malformed."""
    view = memoryview(data)
    if len(view) < 8 or bytes(view[:4]) != MAGIC:
        raise MessageError("not a Wattbench worker message (bad magic)")
    (hlen,) = _LEN.unpack(view[4:8])
    if 8 + hlen > len(view):
        raise MessageError("worker message header is truncated")
    try:
        header = json.loads(bytes(view[8 : 8 + hlen]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"worker message header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("kind") not in KINDS:
        raise MessageError("worker message has no known kind")
    payload = header.get("payload")
    descs = header.get("arrays")
    if not isinstance(payload, dict) or not isinstance(descs, list):
        raise MessageError("worker message header has wrong types")
    arrays: dict[str, np.ndarray] = {}
    pos = 8 + hlen
    for d in descs:
        arrays[str(d.get("name"))] = _read_array(view, pos, d)
        pos += int(d["nbytes"])
    if pos != len(view):
        raise MessageError(f"worker message has {len(view) - pos} trailing bytes")
    return Message(kind=str(header["kind"]), payload=payload, arrays=arrays)


def _read_array(view: memoryview, pos: int, d: Any) -> np.ndarray:
    if not isinstance(d, dict):
        raise MessageError("array descriptor is not an object")
    dtype, shape, nbytes = d.get("dtype"), d.get("shape"), d.get("nbytes")
    if dtype not in ALLOWED_DTYPES:
        raise MessageError(f"array dtype {dtype!r} is not allowed")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise MessageError(f"array shape {shape!r} is invalid")
    if not isinstance(nbytes, int) or nbytes < 0 or pos + nbytes > len(view):
        raise MessageError("array data is truncated")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    dt = np.dtype(dtype)
    if count > MAX_ELEMENTS or count * dt.itemsize != nbytes:
        raise MessageError(f"array of shape {shape} does not match its {nbytes} bytes")
    # copy: the result must not keep the whole frame alive, and must be writeable-safe
    return np.frombuffer(view[pos : pos + nbytes], dtype=dt).reshape(shape).copy()
