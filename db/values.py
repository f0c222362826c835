"""Plain values and helpers of the run store: run summaries, times, strict JSON, energy view.

Kept apart from the repository so that listings, bundles and the CLI can use them without the
session machinery.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from wattbench.domain.energy import view_figure
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec, join_label

log = logging.getLogger(__name__)

MAX_TAG_CHARS = 128


class RunFilters(TypedDict, total=False):
    """The filters of a run listing; each one given narrows it (the store's list_runs)."""

    model: str | None  # a model ref, name or part of a ref
    device: str | None  # a device, or a device kind ("cuda" matches "cuda:1")
    runtime: str | None
    tag: str | None
    status: str | None  # a RunStatus value
    since: datetime | str | None  # a datetime, ISO text, or "3d" / "12h" back from now
    until: datetime | str | None


@dataclass(frozen=True)
class RunSummary:
    """One row of a run listing: indexed columns and headline figures, no arrays."""

    id: str
    status: RunStatus
    reason: str | None
    created_at: datetime  # aware, UTC
    finished_at: datetime | None
    model_ref: str
    model_name: str | None
    device: str
    runtime: str
    precision: str
    batch_size: int
    threads: int | None
    scenario: str
    repeat: int
    sweep_id: str | None
    hostname: str | None
    converged: bool
    flags: tuple[str, ...]
    throughput_items_per_s: float | None
    throughput_lo: float | None
    throughput_hi: float | None
    mean_ns: float | None
    p50_ns: float | None
    p99_ns: float | None
    rho: float | None
    energy_per_item_j: float | None  # device view, gross
    items_per_j: float | None
    energy_source: str | None
    tags: tuple[str, ...]
    note: str

    @property
    def label(self) -> str:
        threads = f"t{self.threads}" if self.threads else ""
        return join_label(
            (
                self.model_ref,
                self.runtime,
                self.device,
                self.precision,
                f"b{self.batch_size}",
                threads,
            )
        )


# -- small helpers -------------------------------------------------------------------------


def to_utc_naive(t: datetime | str) -> datetime:
    """A datetime for the database: UTC without tzinfo (naive input is taken as UTC)."""
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t.strip())
        except ValueError as exc:
            raise BadInputError(
                f"{t!r} is not a date/time: use ISO form like 2025-01-31 or 2025-01-31T12:00."
            ) from exc
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """ISO date/time (local time when no offset is given) or an age like 30m, 12h, 7d, 2w."""
    m = _RELATIVE.match(text)
    if m:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
        base = now or datetime.now(UTC)
        return to_utc_naive(base - timedelta(seconds=float(m.group(1)) * unit))
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadInputError(
            f"{text!r} is not a time: give an ISO date (2025-01-31, 2025-01-31T12:00) or an "
            "age such as 30m, 12h, 7d or 2w."
        ) from exc
    if t.tzinfo is None:
        t = t.astimezone()  # the user's local time
    return to_utc_naive(t)


def process_alive(pid: int | None, started: float | None = None) -> bool:
    """Whether process ``pid`` runs (not a zombie) and, given ``started`` (its create time, as
    psutil gives it), is still the same process and not a later one with the same pid."""
    import psutil

    if pid is None:
        return False
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(p.create_time() - started) < 1.0
    except psutil.Error:
        return False


def canonical_sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def device_energy(result: RunResult) -> tuple[float | None, float | None, str | None]:
    """(energy per item J, items per J, source) in the device view, gross, for the listing
    columns: measured when there is any, else the estimate (its source names it)."""
    fig = view_figure(result, "device")
    if fig is None:
        return None, None, None
    per_item = _finite_or_none(fig.energy_per_item_j)
    items_per_j = 1.0 / per_item if per_item is not None and per_item > 0 else None
    return per_item, items_per_j, fig.source[:255]


# what a name (a tag, ...) may not hold: control characters, direction overrides that would
# make it print as something else, and markup (a bundle carrying it is refused on import)
UNSAFE_NAME = re.compile(r"[<>\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_DB_INT = 2**31 - 1  # INTEGER columns (PostgreSQL int4)
DB_INT_FIELDS = ("batch_size", "threads", "repeat", "prompt_tokens", "new_tokens")  # of a spec


def clean_tag(tag: str) -> str:
    t = str(tag).strip()
    if not t or len(t) > MAX_TAG_CHARS or UNSAFE_NAME.search(t):
        raise BadInputError(
            f"Tag {tag!r} is not usable: give 1 to {MAX_TAG_CHARS} printable characters, "
            "without < > or control characters.",
            field="tags",
        )
    return t


def check_storable(spec: RunSpec) -> None:
    """BadInputError for anything in ``spec`` the run store could not hold, found before the
    run is measured: its tags, whole numbers beyond the INTEGER columns, names longer than
    their columns (``schema.Run``)."""
    from wattbench.db.schema import Run

    for tag in spec.tags:
        clean_tag(tag)
    for name in DB_INT_FIELDS:
        value = getattr(spec, name)
        if value is not None and not -MAX_DB_INT <= value <= MAX_DB_INT:
            raise BadInputError(
                f"{name.replace('_', ' ').capitalize()} {value} is beyond what a run can "
                f"record (at most {MAX_DB_INT:,}).",
                field=name,
            )
    columns = Run.__table__.columns
    for name, value in (
        ("model", spec.model),
        ("device", spec.device),
        ("runtime", spec.runtime),
        ("precision", spec.precision),
        ("scenario", spec.scenario.value),
    ):
        column = columns["model_ref" if name == "model" else name]
        length = getattr(column.type, "length", None)
        if length is not None and len(value) > length:
            raise BadInputError(
                f"The {name} {value[:60]!r}… is {len(value)} characters long; a run can "
                f"record at most {length}.",
                field=name,
            )
