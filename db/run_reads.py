"""Reading runs: whole runs (with or without their arrays) and fast listings of summaries."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Unpack

import numpy as np
from sqlalchemy import (
    Select,
    Text,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session
from wattbench.db.run_writes import CODEC_ZLIB
from wattbench.db.schema import (
    Machine,
    Model,
    Run,
    RunArray,
    RunTag,
    RunTrace,
    Tag,
)
from wattbench.db.sessions import CHUNK, StoreBase, chunks
from wattbench.db.values import (
    RunFilters,
    RunSummary,
    parse_time,
    to_utc_naive,
)
from wattbench.domain.arrays import unpack_array
from wattbench.domain.codec import CodecError, from_document
from wattbench.domain.errors import BadInputError, StoreError, WattbenchError
from wattbench.domain.result import RunResult, RunStatus, Trace

log = logging.getLogger(__name__)

_ORDER_KEYS = {
    "created": Run.created_at,
    "finished": Run.finished_at,
    "throughput": Run.throughput_items_per_s,
    "model": Run.model_ref,
    "device": Run.device,
    "runtime": Run.runtime,
    "status": Run.status,
}


class RunReads(StoreBase):
    def _tags_of(self, session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if len(ids) > 4 * CHUNK:  # long listings: one pass over every tag beats many IN lists
            wanted = set(ids)
            q = select(RunTag.run_id, Tag.name).join(Tag, Tag.id == RunTag.tag_id)
            for rid, name in session.connection().execute(q):
                if rid in wanted:
                    out.setdefault(rid, []).append(name)
            return {k: sorted(v) for k, v in out.items()}
        for chunk in chunks(ids):
            rows = session.execute(
                select(RunTag.run_id, Tag.name)
                .join(Tag, Tag.id == RunTag.tag_id)
                .where(RunTag.run_id.in_(chunk))
            )
            for rid, name in rows:
                out.setdefault(rid, []).append(name)
        return {k: sorted(v) for k, v in out.items()}

    def _blobs_of(
        self, session: Session, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Trace]]]:
        arrays: dict[str, dict[str, np.ndarray]] = {}
        traces: dict[str, dict[str, Trace]] = {}
        try:
            for chunk in chunks(ids):
                for a in session.scalars(select(RunArray).where(RunArray.run_id.in_(chunk))):
                    arrays.setdefault(a.run_id, {})[a.name] = _unpack(
                        a.codec, a.data, a.dtype, a.shape
                    )
                for t in session.scalars(select(RunTrace).where(RunTrace.run_id.in_(chunk))):
                    traces.setdefault(t.run_id, {})[t.key] = Trace(
                        t.name,
                        t.unit,
                        _unpack(t.codec, t.t_data, t.t_dtype, t.t_shape),
                        _unpack(t.codec, t.v_data, t.v_dtype, t.v_shape),
                    )
        except WattbenchError as exc:
            raise StoreError(
                f"Stored arrays are damaged ({exc}); restore the database from a "
                "backup or delete the run."
            ) from exc
        return arrays, traces

    def _domain(
        self,
        row: Any,
        tags: list[str],
        arrays: Mapping[str, np.ndarray],
        traces: Mapping[str, Trace],
    ) -> RunResult:
        d = dict(row.result)
        d["status"] = row.status
        d["reason"] = row.reason
        d["notes"] = row.note or ""
        spec = dict(d["spec"])
        spec["tags"] = tags
        d["spec"] = spec
        try:
            r = from_document(d, RunResult)
        except CodecError as exc:
            raise StoreError(
                f"Run {row.id} in the store cannot be read ({exc!r}); it may have "
                "been written by an incompatible program."
            ) from exc
        return r.with_(arrays=dict(arrays), telemetry=dict(traces))

    def get_run(self, run_id: str, *, with_arrays: bool = True) -> RunResult:
        """One run by id or unique id prefix (StoreError 'no run' / 'ambiguous')."""
        return self.load_runs([run_id], with_arrays=with_arrays)[0]

    def load_runs(self, ids: Sequence[str], *, with_arrays: bool = True) -> list[RunResult]:
        """Runs in the order asked (ids or unique prefixes)."""
        with self._read("read runs") as s:
            full = [self._resolve(s, i) for i in ids]
            uniq = list(dict.fromkeys(full))
            rows = {}
            for chunk in chunks(uniq):
                q = select(Run.id, Run.result, Run.status, Run.reason, Run.note).where(
                    Run.id.in_(chunk)
                )
                rows.update({r.id: r for r in s.execute(q)})
            tags = self._tags_of(s, uniq)
            arrays, traces = self._blobs_of(s, uniq) if with_arrays else ({}, {})
            built = {
                rid: self._domain(
                    rows[rid], tags.get(rid, []), arrays.get(rid, {}), traces.get(rid, {})
                )
                for rid in uniq
            }
        return [built[rid] for rid in full]

    def _filtered(self, q: Select, filters: RunFilters) -> Select:
        model, device, runtime = filters.get("model"), filters.get("device"), filters.get("runtime")
        tag, status = filters.get("tag"), filters.get("status")
        since, until = filters.get("since"), filters.get("until")
        if model:
            q = q.where(
                or_(
                    Run.model_ref == model,
                    Model.name == model,
                    Run.model_ref.contains(model, autoescape=True),
                )
            )
        if device:
            q = q.where(
                or_(Run.device == device, Run.device.startswith(device + ":", autoescape=True))
            )
        if runtime:
            q = q.where(Run.runtime == runtime)
        if status:
            try:
                q = q.where(Run.status == RunStatus(status).value)
            except ValueError as exc:
                raise BadInputError(
                    f"Unknown status {status!r}: choose one of "
                    f"{', '.join(s.value for s in RunStatus)}."
                ) from exc
        if tag:
            q = q.where(
                Run.id.in_(
                    select(RunTag.run_id).join(Tag, Tag.id == RunTag.tag_id).where(Tag.name == tag)
                )
            )
        if since is not None:
            q = q.where(
                Run.created_at
                >= (parse_time(since) if isinstance(since, str) else to_utc_naive(since))
            )
        if until is not None:
            q = q.where(
                Run.created_at
                <= (parse_time(until) if isinstance(until, str) else to_utc_naive(until))
            )
        return q

    def list_runs(
        self,
        *,
        limit: int | None = None,
        offset: int = 0,
        order: str = "-created",
        **filters: Unpack[RunFilters],
    ) -> list[RunSummary]:
        """Summaries of the runs that match every given filter (no arrays are read)."""
        key = order.lstrip("-+")
        if key not in _ORDER_KEYS:
            raise BadInputError(
                f"Cannot order runs by {order!r}: use one of "
                f"{', '.join(_ORDER_KEYS)} (prefix '-' for descending)."
            )
        col = _ORDER_KEYS[key]
        desc = order.startswith("-")
        q: Select[*tuple[Any, ...]] = (
            select(
                Run.id,
                Run.status,
                Run.reason,
                type_coerce(Run.created_at, Text).label("created_at"),
                type_coerce(Run.finished_at, Text).label("finished_at"),
                Run.model_ref,
                Model.name.label("model_name"),
                Run.device,
                Run.runtime,
                Run.precision,
                Run.batch_size,
                Run.threads,
                Run.scenario,
                Run.repeat,
                Run.sweep_id,
                Machine.hostname,
                Run.converged,
                type_coerce(Run.flags, Text).label("flags"),
                Run.throughput_items_per_s,
                Run.throughput_lo,
                Run.throughput_hi,
                Run.mean_ns,
                Run.p50_ns,
                Run.p99_ns,
                Run.rho,
                Run.energy_per_item_j,
                Run.items_per_j,
                Run.energy_source,
                Run.note,
            )
            .outerjoin(Model, Model.id == Run.model_id)
            .outerjoin(Machine, Machine.id == Run.machine_id)
        )
        q = self._filtered(q, filters)
        q = q.order_by(col.desc() if desc else col.asc(), Run.id.desc() if desc else Run.id.asc())
        if limit is not None:
            q = q.limit(max(0, int(limit)))
        if offset:
            q = q.offset(max(0, int(offset)))
        with self._read("list runs") as s:
            # Core rows (no ORM loading), flags as raw JSON text: listing 10,000 runs is a hot
            # path of the GUI and `wattbench runs`.
            rows = s.connection().execute(q).all()
            tags = self._tags_of(s, [r[0] for r in rows])
        status_of = {st.value: st for st in RunStatus}
        out = []
        for r in rows:
            flags_text: str | None = r[17]
            flags = () if not flags_text or flags_text == "[]" else tuple(json.loads(flags_text))
            values: list[Any] = list(r)
            values[1] = status_of[r[1]]
            values[3] = _as_datetime(r[3])
            values[4] = _as_datetime(r[4]) if r[4] is not None else None
            values[16] = bool(r[16])
            values[17] = flags
            values[28] = tuple(tags.get(r[0], ()))
            values.append(r[28] or "")
            out.append(RunSummary(*values))
        return out

    def count_runs(self) -> int:
        with self._read("count runs") as s:
            return int(s.scalar(select(func.count()).select_from(Run)) or 0)


def _as_datetime(value: Any) -> datetime:
    """A stored UTC timestamp, made aware: drivers give a datetime (PostgreSQL) or ISO text
    (SQLite), both without a zone. (Listing 10,000 runs reads 20,000 of them: the zone is
    parsed with the text, as ``replace(tzinfo=...)`` would cost as much as the parsing.)"""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = str(value)
    zoned = text.endswith("Z") or (text[-6:-5] in ("+", "-") and text[-3:-2] == ":")
    return datetime.fromisoformat(text if zoned else text + "+00:00")


def _unpack(codec: str, data: bytes, dtype: str, shape: Sequence[int]) -> np.ndarray:
    if codec != CODEC_ZLIB:
        raise StoreError(f"Unknown array codec {codec!r}; this database needs a newer Wattbench.")
    return unpack_array(bytes(data), dtype, tuple(int(x) for x in shape))
