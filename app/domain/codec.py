"""One codec for every typed value that leaves memory: the worker pipe, the store, bundles, JSON.

Built on msgspec: it encodes and decodes the domain's frozen dataclasses, enums and tuples by
their annotations, and a decode checks every field's type (a tampered bundle or a stray worker
frame is refused, never half-built). Chosen over cattrs (pure Python, converts but leaves
validation to hand-written hooks) and pydantic (its own model classes instead of our
dataclasses, and a far heavier import); msgspec has no dependencies and is fast enough for runs
with a million latencies.

Two wire forms:

- **MessagePack** (``encode_msgpack`` / ``decode_msgpack``) for the worker pipe: compact,
  NaN-preserving, arrays as raw little-endian bytes. Nothing is pickled.
- **JSON documents** (``to_document`` / ``from_document``) for the store's JSON column,
  bundles and ``--json`` outputs. JSON has no NaN: a non-finite number is written as ``null``
  (the documented formats say so), and reading back, a ``null`` where a figure is required
  becomes NaN, the domain's "unknown" float. Arrays are ``{"dtype", "shape", "zlib_b64"}``.

Only the plain numeric dtypes of ``arrays.ALLOWED_DTYPES`` are ever decoded.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, TypeVar

import msgspec
import numpy as np
from wattbench.domain.arrays import array_from_dict, array_to_dict, layout, storable
from wattbench.domain.errors import BundleError, WattbenchError

T = TypeVar("T")

MAX_NULL_FIXES = 256  # nulls in figure positions one document may hold (legacy non-finite)
_NULL_FLOAT = re.compile(r"^Expected `float`, got `null` - at `\$(?P<path>[^`]*)`$")
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class CodecError(WattbenchError):
    """Encoded data does not decode into the expected value (malformed, tampered, other type)."""


# -- arrays ----------------------------------------------------------------------------------


def _array_to_wire(a: np.ndarray) -> dict[str, Any]:
    try:
        a = storable(a)
    except ValueError as exc:
        raise CodecError(str(exc)) from exc
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def _array_from_wire(obj: Any) -> np.ndarray:
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise CodecError("an array entry is malformed")
    data = obj["data"]
    try:
        dt, shape, expected = layout(obj["dtype"], obj["shape"])
    except BundleError as exc:
        raise CodecError(str(exc)) from exc
    if not isinstance(data, bytes) or len(data) != expected:
        raise CodecError(f"an array of shape {shape} does not match its data")
    # a copy: the array must not keep the whole frame alive
    return np.frombuffer(data, dtype=dt).reshape(shape).copy()


def _plain(obj: Any) -> Any:
    """Free-form values (system descriptions, runtime settings) hold library types that are
    plain data underneath: numpy scalars, version strings (str subclasses), paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    for base in (str, int, float):
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _enc_wire(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return _array_to_wire(obj)
    return _plain(obj)


def _dec_wire(type_: type, obj: Any) -> Any:
    if type_ is np.ndarray:
        return _array_from_wire(obj)
    raise NotImplementedError(f"cannot decode {type_}")


def _enc_doc(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return array_to_dict(obj)
    return _plain(obj)


def _dec_doc(type_: type, obj: Any) -> Any:
    if type_ is np.ndarray:
        return array_from_dict(obj)
    raise NotImplementedError(f"cannot decode {type_}")


# -- MessagePack (the worker pipe) -------------------------------------------------------------

_WIRE_ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_wire)


def encode_msgpack(value: Any) -> bytes:
    """``value`` (domain dataclasses, enums, tuples, numpy arrays) as MessagePack bytes."""
    return _WIRE_ENCODER.encode(value)


def decode_msgpack(data: bytes, type_: type[T]) -> T:
    """The ``type_`` value in ``data``; CodecError when the bytes are not one."""
    try:
        return msgspec.msgpack.decode(data, type=type_, dec_hook=_dec_wire)
    except (msgspec.DecodeError, msgspec.ValidationError, WattbenchError) as exc:
        raise CodecError(f"cannot decode a {_name(type_)}: {exc}") from exc


# -- JSON documents ------------------------------------------------------------------------------


def to_document(value: Any, *, dropped: list[str] | None = None) -> Any:
    """``value`` as plain JSON types (dicts, lists, str, int, finite float, bool, None).

    Non-finite floats become None; their paths are appended to ``dropped`` when given.
    """
    return finite_json(msgspec.to_builtins(value, enc_hook=_enc_doc), "", dropped)


def from_document(doc: Any, type_: type[T], *, forbid_unknown: bool = False) -> T:
    """The ``type_`` value that :func:`to_document` (or a documented format) wrote.

    A ``null`` where a float figure is required is read as NaN (unknown): JSON cannot hold
    NaN, and every documented format writes it as ``null`` (such nulls are replaced in
    ``doc``). Anything else that does not match the annotations raises CodecError; so does a
    top-level field ``type_`` does not have, with ``forbid_unknown`` (a document a person
    wrote, where a misspelt field must not pass unnoticed).
    """
    if forbid_unknown and isinstance(doc, Mapping) and dataclasses.is_dataclass(type_):
        known = {f.name for f in dataclasses.fields(type_)}
        unknown = sorted(str(k) for k in doc if k not in known)
        if unknown:
            raise CodecError(
                f"a {_name(type_)} has no field {', '.join(unknown)} (its fields: "
                f"{', '.join(sorted(known))})"
            )
    for _ in range(MAX_NULL_FIXES + 1):
        try:
            return msgspec.convert(doc, type_, dec_hook=_dec_doc)
        except msgspec.ValidationError as exc:
            where = _NULL_FLOAT.match(str(exc))
            if where is None or not _set_path(doc, where.group("path"), math.nan):
                raise CodecError(f"cannot read a {_name(type_)}: {exc}") from exc
        except WattbenchError as exc:
            raise CodecError(f"cannot read a {_name(type_)}: {exc}") from exc
    raise CodecError(f"cannot read a {_name(type_)}: too many unknown figures")


def _set_path(doc: Any, path: str, value: Any) -> bool:
    """Set ``doc`` at a msgspec error path (``.a[2].b``); False when it cannot be followed."""
    parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(path)]
    if not parts or "".join(m.group(0) for m in _PATH_PART.finditer(path)) != path:
        return False
    node = doc
    for i, (key, index) in enumerate(parts):
        last = i == len(parts) - 1
        if key is not None and isinstance(node, dict) and key in node:
            if last:
                node[key] = value
                return True
            node = node[key]
        elif index is not None and isinstance(node, list) and int(index) < len(node):
            if last:
                node[int(index)] = value
                return True
            node = node[int(index)]
        else:
            return False
    return False


def finite_json(value: Any, path: str = "", dropped: list[str] | None = None) -> Any:
    """A copy of a JSON-able value with NaN/inf replaced by None (JSON and PostgreSQL refuse
    them) and tuples as lists; the paths replaced are appended to ``dropped``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if dropped is not None:
            dropped.append(path or "<root>")
        return None
    if isinstance(value, Mapping):
        return {
            str(k): finite_json(v, f"{path}.{k}" if path else str(k), dropped)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [finite_json(v, f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return finite_json(value.item(), path, dropped)
    return value


def _name(type_: Any) -> str:
    return str(getattr(type_, "__name__", type_))


__all__ = [
    "CodecError",
    "decode_msgpack",
    "encode_msgpack",
    "finite_json",
    "from_document",
    "to_document",
]
