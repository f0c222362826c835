"""Checks of untrusted bundle content: strict JSON, names and free text without markup, and
the decoded result's types against the result contract's annotations (docs/bundle-format.md).

Every failure is a BundleError saying that nothing was imported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np
from wattbench.domain.arrays import ALLOWED_DTYPES
from wattbench.domain.errors import BundleError
from wattbench.domain.result import (
    EnergyFigure,
    GenerationSummary,
    Interval,
    LatencySummary,
    MemoryFigures,
    ModelInfo,
    PercentileEstimate,
    PhaseTimings,
    RunResult,
    Trace,
)
from wattbench.domain.spec import RunSpec

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 12
MAX_NAME_CHARS = 1024
MAX_TEXT_CHARS = 100_000
MAX_INT = 2**53  # exact in JSON / float64
MAX_DB_INT = 2**31 - 1  # INTEGER columns (PostgreSQL int4); parameters is BIGINT (≤ MAX_INT)
MAX_ABS_FLOAT = 1e300

# Names (ids, devices, models, tags, array keys ...): no markup, no control characters.
_BAD_NAME = re.compile(r"[<>\x00-\x1f\x7f]")
# Free text (reasons, notes, system description): no markup tags, scripts or control codes.
_BAD_TEXT = re.compile(
    r"<\s*/?\s*[A-Za-z!?]|javascript\s*:|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", re.IGNORECASE
)
_FREE_TEXT_FIELDS = {"reason", "notes", "energy_na_reason", "error_kind"}
_DB_INT_FIELDS = {"batch_size", "threads", "repeat", "prompt_tokens", "new_tokens"}


_FAIL_PREFIX = "This bundle cannot be imported: "
_FAIL_SUFFIX = ". Nothing was imported."


def fail(what: str) -> BundleError:
    return BundleError(f"{_FAIL_PREFIX}{what}{_FAIL_SUFFIX}")


def export_problem(run: RunResult) -> str | None:
    """Why import would refuse this stored run (markup in a note or tag ...), or None.

    Export checks it first so that it never writes a bundle that cannot be imported back.
    """
    try:
        check_result(run, f"run {run.id[:8]}")
    except BundleError as exc:
        return str(exc).removeprefix(_FAIL_PREFIX).removesuffix(_FAIL_SUFFIX)
    return None


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x) or abs(x) > MAX_ABS_FLOAT:
        raise ValueError(f"number {text[:40]} is out of range")
    return x


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 16:
        raise ValueError(f"number {text[:40]}... is too large")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(
            data.decode("utf-8"),
            parse_float=_finite_float,
            parse_int=_bounded_int,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise fail(f"{where} is not valid JSON ({str(exc)[:200]})") from exc


def as_object(x: Any, where: str) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise fail(f"{where} is not an object")
    return x


def as_list(x: Any, where: str, cap: int) -> list[Any]:
    if not isinstance(x, list):
        raise fail(f"{where} is not a list")
    if len(x) > cap:
        raise fail(f"{where} has {len(x)} entries (at most {cap})")
    return x


def check_name(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise fail(f"{where} is not text")
    if len(value) > MAX_NAME_CHARS or _BAD_NAME.search(value):
        raise fail(f"{where} {value[:60]!r} contains markup or control characters or is too long")
    return value


def check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise fail(f"{where} is not text")
    if len(value) > MAX_TEXT_CHARS or _BAD_TEXT.search(value):
        raise fail(f"{where} contains markup, script or control characters, or is too long")
    return value


def check_json_tree(value: Any, where: str, depth: int = 0) -> None:
    """A free-form JSON value (system description): bounded depth, clean keys and text."""
    if depth > MAX_JSON_DEPTH:
        raise fail(f"{where} is nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            check_name(k, f"{where} key")
            check_json_tree(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_json_tree(v, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise fail(f"{where} is too large a number")
    elif not isinstance(value, float):
        raise fail(f"{where} has an unexpected type")


# -- type checks of the decoded result (against the dataclass annotations) ---------------------

_DATACLASSES: tuple[type, ...] = (
    RunResult,
    RunSpec,
    ModelInfo,
    PhaseTimings,
    LatencySummary,
    PercentileEstimate,
    Interval,
    GenerationSummary,
    MemoryFigures,
    EnergyFigure,
    Trace,
)
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        import wattbench.domain.result as result_mod
        import wattbench.domain.spec as spec_mod

        ns = {**vars(spec_mod), **vars(result_mod), "np": np}
        _HINTS[cls] = typing.get_type_hints(cls, globalns=ns)
    return _HINTS[cls]


def _check_typed(value: Any, hint: Any, where: str, field: str) -> None:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            _check_typed(value, inner[0], where, field)
            return
        raise fail(f"{where} has an unexpected type")
    if hint is bool:
        if not isinstance(value, bool):
            raise fail(f"{where} should be true or false")
        return
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"{where} should be a whole number")
        cap = MAX_DB_INT if field in _DB_INT_FIELDS else MAX_INT
        if abs(value) > cap:
            raise fail(f"{where} = {value} is out of range")
        return
    if hint is float:
        if value is None:  # stored non-finite figures come back as None (unknown)
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"{where} should be a number")
        if not math.isfinite(value) or abs(value) > MAX_ABS_FLOAT:
            raise fail(f"{where} is not a finite number")
        return
    if hint is str:
        if field in _FREE_TEXT_FIELDS:
            check_text(value, where)
        else:
            check_name(value, where)
        return
    if isinstance(hint, type) and issubclass(hint, Enum):
        if not isinstance(value, hint):
            raise fail(f"{where} has an unexpected value")
        return
    if hint in _DATACLASSES:  # the result contract's own value classes
        if not isinstance(value, hint):
            raise fail(f"{where} has an unexpected type")
        check_result(value, where)
        return
    if hint is np.ndarray:
        if not isinstance(value, np.ndarray) or value.dtype.str not in ALLOWED_DTYPES:
            raise fail(f"{where} is not a plain numeric array")
        return
    if origin is tuple:
        if not isinstance(value, tuple):
            raise fail(f"{where} should be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            for i, v in enumerate(value):
                _check_typed(v, args[0], f"{where}[{i}]", field)
        elif len(args) != len(value):
            raise fail(f"{where} has the wrong number of entries")
        else:
            for i, (v, a) in enumerate(zip(value, args, strict=True)):
                _check_typed(v, a, f"{where}[{i}]", field)
        return
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise fail(f"{where} should be an object")
        for k, v in value.items():
            check_name(k, f"{where} key")
            if field == "system":
                check_json_tree(v, f"{where}.{k}")
            else:
                _check_typed(v, args[1] if args else Any, f"{where}.{k}", field)
        return
    raise fail(f"{where} cannot be checked")  # an annotation this checker does not know


def check_result(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        _check_typed(getattr(obj, f.name), _hints(type(obj))[f.name], f"{where}.{f.name}", f.name)


# Containers the decoder would otherwise coerce ("drift" would become a tuple of letters).
_LISTS = {
    "": ("flags", "energy"),
    "spec": ("tags", "percentiles", "required_tails"),
    "memory": ("notes",),
    "model": ("inputs",),
}
_OBJECTS = {
    "": ("spec", "phases", "latency", "throughput_items_per_s", "generation", "memory", "model"),
    "spec": ("dims", "extra", "input_shapes"),
}


def check_containers(doc: Mapping[str, Any], where: str) -> None:
    for part, keys in _LISTS.items():
        d = doc.get(part) if part else doc
        if isinstance(d, Mapping):
            for k in keys:
                if d.get(k) is not None and not isinstance(d[k], list):
                    raise fail(f"{where}: {part + '.' if part else ''}{k} should be a list")
    for part, keys in _OBJECTS.items():
        d = doc.get(part) if part else doc
        if isinstance(d, Mapping):
            for k in keys:
                if d.get(k) is not None and not isinstance(d[k], Mapping):
                    raise fail(f"{where}: {part + '.' if part else ''}{k} should be an object")
