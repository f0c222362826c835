"""Writing runs: a run recorded before it is measured, its result stored in one transaction,
runs stored in bulk (bundle import: one short transaction per batch). Machines, devices, models
and sweeps are linked once each."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wattbench.db.schema import (
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
from wattbench.db.sessions import StoreBase, chunks
from wattbench.db.values import (
    _finite_or_none,
    canonical_sha256,
    clean_tag,
    device_energy,
    to_utc_naive,
)
from wattbench.domain.arrays import pack_array
from wattbench.domain.codec import to_document
from wattbench.domain.errors import StoreError
from wattbench.domain.result import (
    RunResult,
    RunStatus,
    host_of,
    machine_identity,
    result_document,
)

log = logging.getLogger(__name__)

FINAL_STATUSES = (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED)
CODEC_ZLIB = "zlib"
Blobs = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # rows of run_arrays, run_traces


class RunWrites(StoreBase):
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
            # the machine, not the run's moment (load, free memory, process): one row per host
            # as set up; the run's whole description stays in its own document
            system = to_document(machine_identity(result.system))
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
        for name in dict.fromkeys(clean_tag(n) for n in names):
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

    def _insert_new(
        self,
        session: Session,
        results: Sequence[RunResult],
        packed: Mapping[str, Blobs] | None = None,
    ) -> None:
        """Bulk INSERT of runs known to be new (bundle import): a few statements per batch
        instead of several per run. ``packed``: blob rows already made, by run id."""
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
            a, t = packed[r.id] if packed and r.id in packed else _blob_rows(r)
            arrays += a
            traces += t
            blob_bytes += sum(len(x["data"]) for x in a)
            blob_bytes += sum(len(x["t_data"]) + len(x["v_data"]) for x in t)
            for name in dict.fromkeys(clean_tag(n) for n in r.spec.tags):
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
        """Store many runs in ONE transaction: all or none; known ids are replaced."""
        todo = list(results)
        with self._write("import runs") as s:
            ids = [r.id for r in todo]
            existing = _stored(s, ids)
            new = [r for r in todo if r.id not in existing]
            if len({r.id for r in new}) != len(new):  # an id twice: store one by one
                existing, new = set(ids), []
            for r in todo:
                if r.id in existing:
                    self._store(s, r, begin=False)
            self._insert_new(s, new)
        return len(todo)

    def stored_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these run ids the store has."""
        with self._read("look up runs") as s:
            return _stored(s, ids)

    def insert_missing(self, results: Sequence[RunResult]) -> list[str]:
        """Insert the runs the store does not have yet, in one transaction, and return their
        ids; runs it has (same id) are left as they are. One batch of a bundle import: the
        arrays are packed before the write lock is taken, so it is held for the inserts only."""
        packed = {r.id: _blob_rows(r) for r in results}
        with self._write("import runs") as s:
            existing = _stored(s, [r.id for r in results])
            new: list[RunResult] = []
            for r in results:
                if r.id not in existing:
                    existing.add(r.id)  # an id twice: the first one
                    new.append(r)
            self._insert_new(s, new, packed)
        return [r.id for r in new]


def _stored(session: Session, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(ids):
        found.update(session.scalars(select(Run.id).where(Run.id.in_(chunk))))
    return found


def _blob_rows(result: RunResult) -> Blobs:
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
