"""A claim written as data: "B ≥ 0.8 × A on decode tokens/s", with which runs are A and B.

Claims come from the command line, the GUI or a small TOML file (``claims_from_toml``): all
untrusted text, parsed without running anything (tomllib reads data only), every field checked
with a message that says what to write instead.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wattbench.domain.errors import BadInputError

RELATIONS = {">=": "≥", "<=": "≤", "≥": "≥", "≤": "≤"}
SIDE_KEYS = ("device", "runtime", "model", "tag", "batch", "ids")
_TEXT_KEYS = SIDE_KEYS[:4]
MAX_CLAIMS = 100
MAX_FILE_BYTES = 256 * 1024
_EXPRESSION = re.compile(
    r"^\s*B\s*(>=|<=|≥|≤)\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(?:\*|×|x)?\s*A\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class Side:
    """Which stored runs one side of a claim stands on: every finished run that matches all
    the given fields (a device or device kind, a runtime, a model, a tag), or given run ids."""

    device: str | None = None
    runtime: str | None = None
    model: str | None = None
    tag: str | None = None
    batch: int | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.batch is not None and (isinstance(self.batch, bool) or self.batch < 1):
            raise BadInputError(f"A side's batch is a positive whole number (got {self.batch!r}).")
        if not (self.device or self.runtime or self.model or self.tag or self.ids):
            raise BadInputError(
                "A side of a claim needs runs: give a device, runtime, model, tag or run ids "
                "(for example device=cuda:0,tag=a100).",
                field="side",
            )

    def describe(self) -> str:
        parts = [f"{k} {getattr(self, k)}" for k in SIDE_KEYS[:5] if getattr(self, k)]
        if self.ids:
            parts.append("runs " + ", ".join(i[:8] for i in self.ids))
        return ", ".join(parts)


@dataclass(frozen=True)
class Claim:
    """B <relation> factor × A on a metric (a name from engine.metrics.METRICS)."""

    a: Side
    b: Side
    metric: str
    relation: str  # "≥" or "≤"
    factor: float
    name: str = ""

    def __post_init__(self) -> None:
        if self.relation not in ("≥", "≤"):
            raise BadInputError(
                f"Unknown relation {self.relation!r}: write >= or <=.", field="relation"
            )
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise BadInputError(
                f"The factor of a claim must be a positive number (got {self.factor!r}).",
                field="factor",
            )

    @property
    def expression(self) -> str:
        return f"B {self.relation} {self.factor:g} × A"


def parse_side(text: str) -> Side:
    """'device=cuda:0,tag=a100' or 'ids=1a2b3c,4d5e6f' (ids separated by '+' or ',')."""
    fields: dict[str, Any] = {}
    ids: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in SIDE_KEYS or not value.strip():
            if ids and not sep:  # ids=a,b,c: the ids go on after the first comma
                ids.append(part)
                continue
            raise BadInputError(
                f"Cannot read {part!r} in the side {text!r}: write key=value pairs with keys "
                f"{', '.join(SIDE_KEYS)} (for example device=cuda:0,tag=a100).",
                field="side",
            )
        if key == "ids":
            ids += [i.strip() for i in value.split("+") if i.strip()]
        elif key == "batch":
            fields[key] = _batch(value.strip())
        else:
            fields[key] = value.strip()
    return Side(**fields, ids=tuple(ids))


def _batch(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise BadInputError(f"A side's batch is a whole number (got {value!r}).", field="side")


def parse_expression(text: str) -> tuple[str, float]:
    """'B >= 0.8 * A' → ("≥", 0.8)."""
    m = _EXPRESSION.match(text)
    if m is None:
        raise BadInputError(
            f"Cannot read the claim {text!r}: write it as 'B >= 0.8 * A' or 'B <= 1.2 * A'.",
            field="claim",
        )
    return RELATIONS[m.group(1)], float(m.group(2))


def _side(value: Any, where: str) -> Side:
    if isinstance(value, str):
        return parse_side(value)
    if not isinstance(value, Mapping):
        raise BadInputError(f'{where}: give a table such as {{ device = "cuda:0" }}.')
    unknown = [k for k in value if k not in SIDE_KEYS]
    if unknown:
        raise BadInputError(
            f"{where}: unknown key {unknown[0]!r}; use {', '.join(SIDE_KEYS)}.", field="side"
        )
    fields: dict[str, Any] = {k: value[k] for k in _TEXT_KEYS if k in value}
    if any(not isinstance(v, str) for v in fields.values()):
        raise BadInputError(f"{where}: device, runtime, model and tag are text.", field="side")
    if "batch" in value:
        fields["batch"] = _batch(value["batch"])
    ids = value.get("ids", [])
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadInputError(f"{where}: ids is a list of run ids.", field="side")
    return Side(**fields, ids=tuple(ids))


def claims_from_toml(text: str) -> list[Claim]:
    """Claims from a TOML file's text: [[claim]] tables with name, a, b, metric and either
    claim = "B >= 0.8 * A" or relation and factor."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise BadInputError(f"A claims file holds at most {MAX_FILE_BYTES // 1024} KiB.")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"The claims file is not valid TOML: {exc}.") from None
    items = doc.get("claim")
    if not isinstance(items, list) or not items:
        raise BadInputError(
            'A claims file lists [[claim]] tables, each with a, b, metric and claim = "B >= '
            '0.8 * A" (see docs/claims.md).'
        )
    if len(items) > MAX_CLAIMS:
        raise BadInputError(f"A claims file holds at most {MAX_CLAIMS} claims.")
    claims = []
    for i, item in enumerate(items, 1):
        where = f"claim {i}"
        if not isinstance(item, Mapping):
            raise BadInputError(f"{where}: each [[claim]] is a table.")
        unknown = [k for k in item if k not in ("name", "a", "b", "metric", "claim", "relation",
                                                "factor")]  # fmt: skip
        if unknown:
            raise BadInputError(f"{where}: unknown key {unknown[0]!r}.")
        if "a" not in item or "b" not in item or not isinstance(item.get("metric"), str):
            raise BadInputError(f"{where}: give a, b and metric.")
        if isinstance(item.get("claim"), str):
            relation, factor = parse_expression(item["claim"])
        else:
            rel, factor_value = item.get("relation"), item.get("factor")
            if rel not in RELATIONS or not isinstance(factor_value, int | float):
                raise BadInputError(
                    f'{where}: give claim = "B >= 0.8 * A" (or relation = ">=" and factor).'
                )
            relation, factor = RELATIONS[rel], float(factor_value)
        name = item.get("name", "")
        claims.append(
            Claim(
                _side(item["a"], f"{where}, a"),
                _side(item["b"], f"{where}, b"),
                item["metric"],
                relation,
                factor,
                name if isinstance(name, str) else str(name),
            )
        )
    return claims
