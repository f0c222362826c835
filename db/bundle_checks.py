"""Checks of untrusted bundle content: strict JSON, and names and free text without markup.

The types of a run document are checked by decoding it (``domain.codec``: every field against
its annotation); what is checked here is what types cannot say: bounded depth and numbers,
and text that could carry markup into a report (docs/bundle-format.md). Every failure is a
BundleError saying that nothing was imported.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from wattbench.db.values import DB_INT_FIELDS, MAX_DB_INT, UNSAFE_NAME
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BundleError, WattbenchError
from wattbench.domain.result import RunResult, result_document

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 12
MAX_NAME_CHARS = 1024
MAX_TEXT_CHARS = 100_000
MAX_INT = 2**53  # exact in JSON / float64
MAX_ABS_FLOAT = 1e300

# Free text (reasons, notes, system description): no markup tags, scripts or control codes.
_BAD_TEXT = re.compile(
    r"<\s*/?\s*[A-Za-z!?]|javascript\s*:|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", re.IGNORECASE
)
_FREE_TEXT_FIELDS = {"reason", "notes", "energy_na_reason", "error_kind"}
_FREE_TREES = {"system"}


_FAIL_PREFIX = "This bundle cannot be imported: "
_FAIL_SUFFIX = ". Nothing was imported."


def fail(what: str) -> BundleError:
    return BundleError(f"{_FAIL_PREFIX}{what}{_FAIL_SUFFIX}")


def fail_reason(exc: BundleError) -> str:
    """What a ``fail()`` error says, without its frame (to put it in another sentence)."""
    return str(exc).removeprefix(_FAIL_PREFIX).removesuffix(_FAIL_SUFFIX)


def export_problem(run: RunResult) -> str | None:
    """Why import would refuse this stored run (markup in a note or tag ...), or None.

    Export checks it first so that it never writes a bundle that cannot be imported back.
    """
    try:
        check_document(result_document(run), f"run {run.id[:8]}")
    except BundleError as exc:
        return fail_reason(exc)
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
    if len(value) > MAX_NAME_CHARS or UNSAFE_NAME.search(value):
        raise fail(f"{where} {value[:60]!r} contains markup or control characters or is too long")
    return value


def check_text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise fail(f"{where} is not text")
    if len(value) > MAX_TEXT_CHARS or _BAD_TEXT.search(value):
        raise fail(f"{where} contains markup, script or control characters, or is too long")
    return value


def check_document(
    value: Any, where: str, key: str = "", depth: int = 0, *, free: bool = False
) -> None:
    """A JSON value from a bundle: bounded depth and numbers, clean keys, names and text.

    Strings under a free-text key (reasons, notes) or inside a free-form tree (the system
    description) may hold any text without markup; every other string is a name.
    """
    if depth > MAX_JSON_DEPTH:
        raise fail(f"{where} is nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            check_name(k, f"{where} key")
            check_document(v, f"{where}.{k}", k, depth + 1, free=free or k in _FREE_TREES)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_document(v, f"{where}[{i}]", key, depth + 1, free=free)
    elif isinstance(value, str):
        if free or key in _FREE_TEXT_FIELDS:
            check_text(value, where)
        else:
            check_name(value, where)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        cap = MAX_DB_INT if key in DB_INT_FIELDS else MAX_INT
        if abs(value) > cap:
            raise fail(f"{where} = {value} is out of range")
    elif isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_ABS_FLOAT:
            raise fail(f"{where} is not a finite number")
    else:
        raise fail(f"{where} has an unexpected type")


def check_json_tree(value: Any, where: str) -> None:
    """A free-form JSON value (system description): bounded depth, clean keys and text."""
    check_document(value, where, free=True)


_PROFILE_NAMES = ("device", "name")
_PROFILE_NUMBERS = tuple(f for f in CostProfile.__dataclass_fields__ if f not in _PROFILE_NAMES)


def profile_document(p: CostProfile) -> dict[str, Any]:
    """A cost profile as the manifest's ``cost_profiles`` holds it."""
    return {f: getattr(p, f) for f in (*_PROFILE_NAMES, *_PROFILE_NUMBERS)}


def check_cost_profile(value: Any, where: str) -> CostProfile:
    """A manifest's cost profile: known keys only, clean names, plain numbers or null, and a
    plausible profile (the same limits as one set by hand)."""
    if not isinstance(value, dict):
        raise fail(f"{where} is not an object")
    unknown = set(value) - {*_PROFILE_NAMES, *_PROFILE_NUMBERS}
    if unknown:
        raise fail(
            f"{where} has an unknown field {check_name(sorted(map(str, unknown))[0], where)!r}"
        )
    device = check_name(value.get("device"), f"{where} device")
    name = check_name(value.get("name", ""), f"{where} name")
    numbers: dict[str, float] = {}
    for f in _PROFILE_NUMBERS:
        v = value.get(f)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise fail(f"{where} {f} is not a number")
        check_document(v, f"{where} {f}", f)  # finite and bounded
        if v is not None:
            numbers[f] = float(v)
    try:
        return CostProfile(device=device, name=name, **numbers)
    except WattbenchError as exc:
        raise fail(f"{where} is not plausible ({exc})") from exc
