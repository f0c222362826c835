"""Run-store operations over one SQLAlchemy engine: domain objects in, domain objects out.

Every public method opens its own session and commits or rolls back before returning; callers
get immutable ``RunResult`` / ``RunSummary`` / ``CostProfile`` values, never ORM rows. Database
errors become ``StoreError`` with words. Writes on SQLite take the write lock up front
(``BEGIN IMMEDIATE``) so concurrent writers wait for each other instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    Engine,
    Select,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from wattbench.db.schema import (
    COST_FIELDS,
    CostProfileRow,
    Device,
    Machine,
    Model,
    Run,
    RunArray,
    RunTag,
    RunTrace,
    Sweep,
    Tag,
)
from wattbench.db.values import (
    RunSummary,
    _clean_tag,
    _finite_or_none,
    canonical_sha256,
    device_energy,
    parse_time,
    to_utc_naive,
)
from wattbench.domain.arrays import pack_array, unpack_array
from wattbench.domain.codec import CodecError, from_document, to_document
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError, StoreError, UnknownRunError, WattbenchError
from wattbench.domain.result import RunResult, RunStatus, Trace, host_of, result_document

log = logging.getLogger(__name__)

FINAL_STATUSES = (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED)
CODEC_ZLIB = "zlib"
SQLITE_BEGIN_OPTION = "wattbench_sqlite_begin"
MAX_NOTE_CHARS = 100_000
_CHUNK = 500  # ids per IN (...) list
_ID_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ORDER_KEYS = {
    "created": Run.created_at,
    "finished": Run.finished_at,
    "throughput": Run.throughput_items_per_s,
    "model": Run.model_ref,
    "device": Run.device,
    "runtime": Run.runtime,
    "status": Run.status,
}


def _chunks(items: Sequence[str], n: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Repository:
    """All run-store operations; one session per call."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    # -- sessions and errors ----------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except WattbenchError:
            raise
        except OperationalError as exc:
            text = str(exc.orig or exc).strip()
            hint = (
                "another program holds the database locked; try again when it has finished"
                if "locked" in text or "busy" in text
                else "check that the database is reachable and writable, or choose another one"
            )
            raise StoreError(
                f"Could not {what} in the run store {self.url}: {text}; {hint}."
            ) from exc
        except SQLAlchemyError as exc:
            text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(
                f"Could not {what} in the run store {self.url}: {text}. If the database was "
                "changed by another program, restore it from a backup or choose another database."
            ) from exc

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[Session]:
        with self._errors(what), Session(self._engine) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[Session]:
        with (
            self._errors(what),
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    # -- id resolution ------------------------------------------------------------------------
    def _resolve(self, session: Session, run_id: str) -> str:
        rid = str(run_id).strip()
        if not _ID_PREFIX.match(rid):
            raise UnknownRunError(
                f"No run {run_id!r}: run ids are letters, digits, '-' and '_'.", field="run_id"
            )
        if session.get(Run, rid) is not None:
            return rid
        found = session.scalars(
            select(Run.id).where(Run.id.startswith(rid, autoescape=True)).limit(2)
        ).all()
        if not found:
            raise UnknownRunError(f"No run {rid} is stored in {self.url}.", field="run_id")
        if len(found) > 1:
            raise UnknownRunError(
                f"Run id {rid} is ambiguous: give more characters of the id.", field="run_id"
            )
        return found[0]

    def resolve_id(self, run_id: str) -> str:
        """The full id of a run given its id or a unique prefix of it."""
        with self._read("look up a run") as s:
            return self._resolve(s, run_id)

    def run_ids(self) -> list[str]:
        with self._read("list run ids") as s:
            return list(s.scalars(select(Run.id).order_by(Run.created_at, Run.id)))

    def has_run(self, run_id: str) -> bool:
        with self._read("look up a run") as s:
            return s.get(Run, str(run_id)) is not None

    # -- writing runs ----------------------------------------------------------------------------
    def _get_or_create(
        self, session: Session, cls: Any, lookup: dict[str, Any], extra: dict[str, Any]
    ) -> Any:
        cache = session.info.setdefault("wattbench_rows", {})  # per transaction: bulk imports
        key = (cls.__name__, tuple(sorted(lookup.items())))
        if key in cache:
            return cache[key]
        row = session.execute(select(cls).filter_by(**lookup)).scalar_one_or_none()
        if row is None:
            try:
                with session.begin_nested():
                    row = cls(**lookup, **extra)
                    session.add(row)
                    session.flush()
            except IntegrityError:  # another writer created it meanwhile
                row = session.execute(select(cls).filter_by(**lookup)).scalar_one()
        cache[key] = row
        return row

    def _links(
        self, session: Session, result: RunResult, now: datetime
    ) -> tuple[int | None, int | None, int | None]:
        machine_id = device_id = model_id = None
        if result.system:
            system = to_document(dict(result.system))
            m = self._get_or_create(
                session,
                Machine,
                {"fingerprint": canonical_sha256(system)},
                {
                    "hostname": (host_of(system) or "")[:255] or None,
                    "system": system,
                    "first_seen": now,
                },
            )
            machine_id = m.id
            dev = result.spec.device
            d = self._get_or_create(
                session,
                Device,
                {"machine_id": m.id, "name": dev[:64]},
                {"kind": dev.split(":", 1)[0][:16]},
            )
            device_id = d.id
        if result.model is not None:
            md = to_document(result.model)
            row = self._get_or_create(
                session,
                Model,
                {"key": canonical_sha256(md)},
                {
                    "ref": result.model.ref[:1024],
                    "name": result.model.name[:255],
                    "family": result.model.family[:32],
                    "format": result.model.format[:32],
                    "sha256": result.model.sha256[:64],
                    "inputs": md["inputs"],
                    "parameters": result.model.parameters,
                },
            )
            model_id = row.id
        if result.spec.sweep_id:
            self._get_or_create(
                session,
                Sweep,
                {"id": result.spec.sweep_id[:64]},
                {"created_at": now, "label": None},
            )
        return machine_id, device_id, model_id

    def _columns(self, result: RunResult) -> dict[str, Any]:
        dropped: list[str] = []
        doc = result_document(result, dropped=dropped)
        if dropped:
            log.warning(
                "run %s: non-finite numbers stored as null: %s", result.id, ", ".join(dropped[:10])
            )
        spec = result.spec
        lat = result.latency
        p50 = lat.percentile(0.5) if lat else None
        p99 = lat.percentile(0.99) if lat else None
        thr = result.throughput_items_per_s
        e_item, items_j, e_src = device_energy(result)
        return {
            "status": result.status.value,
            "reason": result.reason,
            "created_at": to_utc_naive(result.created_at),
            "finished_at": to_utc_naive(result.finished_at) if result.finished_at else None,
            "wattbench_version": result.wattbench_version[:32],
            "model_ref": spec.model[:1024],
            "device": spec.device[:64],
            "runtime": spec.runtime,
            "precision": spec.precision,
            "batch_size": spec.batch_size,
            "threads": spec.threads,
            "scenario": spec.scenario.value,
            "repeat": spec.repeat,
            "sweep_id": spec.sweep_id[:64] if spec.sweep_id else None,
            "converged": bool(result.converged),
            "flags": list(result.flags),
            "throughput_items_per_s": _finite_or_none(thr.value) if thr else None,
            "throughput_lo": _finite_or_none(thr.lo) if thr else None,
            "throughput_hi": _finite_or_none(thr.hi) if thr else None,
            "mean_ns": _finite_or_none(lat.mean_ns) if lat else None,
            "p50_ns": _finite_or_none(p50.value_ns if p50 else lat.median_ns) if lat else None,
            "p99_ns": _finite_or_none(p99.value_ns) if p99 else None,
            "rho": _finite_or_none(lat.rho) if lat else None,
            "energy_per_item_j": e_item,
            "items_per_j": items_j,
            "energy_source": e_src,
            "result": doc,
        }

    def _add_tags(self, session: Session, run_id: str, names: Iterable[str]) -> None:
        for name in dict.fromkeys(_clean_tag(n) for n in names):
            tag = self._get_or_create(session, Tag, {"name": name}, {})
            if session.get(RunTag, (run_id, tag.id)) is None:
                session.add(RunTag(run_id=run_id, tag_id=tag.id))
        session.flush()

    def _write_blobs(self, session: Session, result: RunResult, *, replace: bool) -> None:
        if replace:
            session.execute(delete(RunArray).where(RunArray.run_id == result.id))
            session.execute(delete(RunTrace).where(RunTrace.run_id == result.id))
        arrays, traces = _blob_rows(result)
        if arrays:
            session.execute(insert(RunArray), arrays)
        if traces:
            session.execute(insert(RunTrace), traces)

    def _insert_new(self, session: Session, results: Sequence[RunResult]) -> None:
        """Bulk INSERT of runs known to be new (bundle import): a few statements per batch
        instead of several per run."""
        now = to_utc_naive(datetime.now(UTC))
        runs: list[dict[str, Any]] = []
        arrays: list[dict[str, Any]] = []
        traces: list[dict[str, Any]] = []
        tags: dict[tuple[str, int], None] = {}
        blob_bytes = 0

        def flush() -> None:
            nonlocal blob_bytes
            if runs:
                session.execute(insert(Run), runs)
            if arrays:
                session.execute(insert(RunArray), arrays)
            if traces:
                session.execute(insert(RunTrace), traces)
            if tags:
                session.execute(insert(RunTag), [{"run_id": r, "tag_id": t} for r, t in tags])
            for batch in (runs, arrays, traces):
                batch.clear()
            tags.clear()
            blob_bytes = 0

        for r in results:
            machine_id, device_id, model_id = self._links(session, r, now)
            cols = self._columns(r)
            cols.update(id=r.id, note=r.notes, machine_id=machine_id, device_id=device_id,
                        model_id=model_id, writer_host=None, writer_pid=None,
                        writer_started=None)  # fmt: skip
            runs.append(cols)
            a, t = _blob_rows(r)
            arrays += a
            traces += t
            blob_bytes += sum(len(x["data"]) for x in a)
            blob_bytes += sum(len(x["t_data"]) + len(x["v_data"]) for x in t)
            for name in dict.fromkeys(_clean_tag(n) for n in r.spec.tags):
                tags[(r.id, self._get_or_create(session, Tag, {"name": name}, {}).id)] = None
            if len(runs) >= 200 or blob_bytes > 64 * 1024**2:
                flush()
        flush()

    def _store(self, session: Session, result: RunResult, *, begin: bool) -> None:
        now = to_utc_naive(datetime.now(UTC))
        machine_id, device_id, model_id = self._links(session, result, now)
        cols = self._columns(result)
        cols.update(machine_id=machine_id, device_id=device_id, model_id=model_id)
        row = session.get(Run, result.id)
        if begin:
            if row is not None:
                raise StoreError(f"Run {result.id} is already stored; a new run needs a new id.")
            cols.update(_writer())
        new = row is None
        if row is None:
            row = Run(id=result.id, note=result.notes, **cols)
            session.add(row)
        else:
            for k, v in cols.items():
                setattr(row, k, v)
            if result.notes:
                row.note = result.notes
        session.flush()
        if result.spec.tags:
            self._add_tags(session, result.id, result.spec.tags)
        if not begin:
            self._write_blobs(session, result, replace=not new)

    def begin_result(self, result: RunResult) -> None:
        """Record a run as running (spec, machine, model), before measuring."""
        with self._write(f"record the start of run {result.id}") as s:
            self._store(s, result.with_(status=RunStatus.RUNNING), begin=True)

    def finish_run(self, result: RunResult) -> None:
        """Final status, figures, arrays and telemetry of a run, in one transaction."""
        if result.status not in FINAL_STATUSES:
            raise StoreError(
                f"finish_run needs a final status ({', '.join(FINAL_STATUSES)}), got "
                f"{result.status.value}."
            )
        with self._write(f"save run {result.id}") as s:
            self._store(s, result, begin=False)

    def save_run(self, result: RunResult) -> None:
        """Store a whole run (or replace it) in one transaction: imports and tests."""
        with self._write(f"save run {result.id}") as s:
            self._store(s, result, begin=False)

    def save_runs(self, results: Iterable[RunResult]) -> int:
        """Store many runs in ONE transaction: all or none (bundle import)."""
        todo = list(results)
        with self._write("import runs") as s:
            ids = [r.id for r in todo]
            existing: set[str] = set()
            for chunk in _chunks(ids):
                existing.update(s.scalars(select(Run.id).where(Run.id.in_(chunk))))
            new = [r for r in todo if r.id not in existing]
            if len({r.id for r in new}) != len(new):  # an id twice: store one by one
                existing, new = set(ids), []
            for r in todo:
                if r.id in existing:
                    self._store(s, r, begin=False)
            self._insert_new(s, new)
        return len(todo)

    # -- reading runs -----------------------------------------------------------------------------
    def _tags_of(self, session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if len(ids) > 4 * _CHUNK:  # long listings: one pass over every tag beats many IN lists
            wanted = set(ids)
            q = select(RunTag.run_id, Tag.name).join(Tag, Tag.id == RunTag.tag_id)
            for rid, name in session.connection().execute(q):
                if rid in wanted:
                    out.setdefault(rid, []).append(name)
            return {k: sorted(v) for k, v in out.items()}
        for chunk in _chunks(ids):
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
            for chunk in _chunks(ids):
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
            for chunk in _chunks(uniq):
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

    def _filtered(
        self,
        q: Select,
        *,
        model: str | None,
        device: str | None,
        runtime: str | None,
        tag: str | None,
        status: str | None,
        since: datetime | str | None,
        until: datetime | str | None,
    ) -> Select:
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
        model: str | None = None,
        device: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        *,
        runtime: str | None = None,
        offset: int = 0,
        order: str = "-created",
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
        q = self._filtered(
            q,
            model=model,
            device=device,
            runtime=runtime,
            tag=tag,
            status=status,
            since=since,
            until=until,
        )
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

    # -- tags, notes, deletion --------------------------------------------------------------------
    def add_tag(self, run_id: str, tag: str) -> None:
        name = _clean_tag(tag)
        with self._write("tag a run") as s:
            self._add_tags(s, self._resolve(s, run_id), [name])

    def remove_tag(self, run_id: str, tag: str) -> None:
        name = _clean_tag(tag)
        with self._write("untag a run") as s:
            rid = self._resolve(s, run_id)
            tag_id = s.scalar(select(Tag.id).where(Tag.name == name))
            if tag_id is not None:
                s.execute(delete(RunTag).where(RunTag.run_id == rid, RunTag.tag_id == tag_id))

    def set_note(self, run_id: str, text: str) -> None:
        if len(text) > MAX_NOTE_CHARS:
            raise BadInputError(f"A note holds at most {MAX_NOTE_CHARS} characters.")
        with self._write("write a note") as s:
            rid = self._resolve(s, run_id)
            s.execute(update(Run).where(Run.id == rid).values(note=text))

    def delete_runs(self, ids: Sequence[str]) -> int:
        """Delete runs (ids or unique prefixes) with their arrays; all resolve or none go."""
        with self._write("delete runs") as s:
            full = list(dict.fromkeys(self._resolve(s, i) for i in ids))
            for chunk in _chunks(full):
                for table in (RunArray, RunTrace, RunTag):
                    s.execute(delete(table).where(table.run_id.in_(chunk)))
                s.execute(delete(Run).where(Run.id.in_(chunk)))
            return len(full)

    # -- cost profiles ----------------------------------------------------------------------------
    def save_cost_profile(self, p: CostProfile) -> None:
        """Insert or replace the profile with the same (device, name)."""
        now = to_utc_naive(datetime.now(UTC))
        with self._write("save a cost profile") as s:
            row = s.execute(
                select(CostProfileRow).filter_by(device=p.device, name=p.name)
            ).scalar_one_or_none()
            if row is None:
                row = CostProfileRow(device=p.device, name=p.name, updated_at=now)
                s.add(row)
            for f in COST_FIELDS:
                setattr(row, f, getattr(p, f))
            row.updated_at = now

    def list_cost_profiles(self, device: str | None = None) -> list[CostProfile]:
        q = select(CostProfileRow).order_by(CostProfileRow.device, CostProfileRow.name)
        if device is not None:
            q = q.where(CostProfileRow.device == device)
        with self._read("read cost profiles") as s:
            rows = list(s.scalars(q))
            out = []
            for r in rows:
                fields = {f: getattr(r, f) for f in COST_FIELDS if getattr(r, f) is not None}
                try:
                    out.append(CostProfile(device=r.device, name=r.name, **fields))
                except WattbenchError as exc:
                    log.warning("skipping stored cost profile %s/%s: %s", r.device, r.name, exc)
        return out

    def delete_cost_profile(self, device: str, name: str = "") -> bool:
        with self._write("delete a cost profile") as s:
            res = s.execute(
                delete(CostProfileRow).where(
                    CostProfileRow.device == device, CostProfileRow.name == name
                )
            )
            return bool(getattr(res, "rowcount", 0))


def _blob_rows(result: RunResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of run_arrays and run_traces for one run (zlib-packed, little-endian)."""
    arrays = []
    for name, arr in result.arrays.items():
        a = np.asarray(arr)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        arrays.append(
            {
                "run_id": result.id,
                "name": str(name)[:128],
                "dtype": a.dtype.str,
                "shape": list(a.shape),
                "codec": CODEC_ZLIB,
                "data": pack_array(a),
            }
        )
    traces = []
    for key, tr in result.telemetry.items():
        t = np.asarray(tr.t_ns).astype("<i8", copy=False)
        v = np.asarray(tr.values)
        v = v.astype(v.dtype.newbyteorder("<"), copy=False)
        traces.append(
            {
                "run_id": result.id,
                "key": str(key)[:128],
                "name": tr.name[:255],
                "unit": tr.unit[:32],
                "codec": CODEC_ZLIB,
                "t_dtype": t.dtype.str,
                "t_shape": list(t.shape),
                "t_data": pack_array(t),
                "v_dtype": v.dtype.str,
                "v_shape": list(v.shape),
                "v_data": pack_array(v),
            }
        )
    return arrays, traces


def _as_datetime(value: Any) -> datetime:
    """A stored UTC timestamp, made aware: drivers give a datetime (PostgreSQL) or ISO text
    (SQLite), both without a zone."""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _unpack(codec: str, data: bytes, dtype: str, shape: Sequence[int]) -> np.ndarray:
    if codec != CODEC_ZLIB:
        raise StoreError(f"Unknown array codec {codec!r}; this database needs a newer Wattbench.")
    return unpack_array(bytes(data), dtype, tuple(int(x) for x in shape))


def _writer() -> dict[str, Any]:
    """Who writes a run: lets the next open tell a crashed writer from a live one."""
    import psutil

    try:
        started: float | None = psutil.Process().create_time()
    except psutil.Error:
        started = None
    return {
        "writer_host": socket.gethostname()[:255],
        "writer_pid": os.getpid(),
        "writer_started": started,
    }
