"""Run-store operations over one SQLAlchemy engine: domain objects in, domain objects out.

``Repository`` is the reading half (``run_reads``) and the writing half (``run_writes``) over
one engine, plus tags, notes, deletion and cost profiles. Callers get immutable ``RunResult``
/ ``RunSummary`` / ``CostProfile`` values, never ORM rows; database errors become
``StoreError`` with words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import (
    delete,
    select,
    update,
)
from wattbench.db.run_reads import RunReads
from wattbench.db.run_writes import RunWrites
from wattbench.db.schema import (
    COST_FIELDS,
    CostProfileRow,
    Run,
    RunArray,
    RunTag,
    RunTrace,
    Tag,
)
from wattbench.db.sessions import SQLITE_BEGIN_OPTION, chunks
from wattbench.db.values import (
    clean_tag,
    to_utc_naive,
)
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError, WattbenchError

log = logging.getLogger(__name__)

MAX_NOTE_CHARS = 100_000


class Repository(RunReads, RunWrites):
    """All run-store operations; one session per call."""

    # -- tags, notes, deletion --------------------------------------------------------------------
    def add_tag(self, run_id: str, tag: str) -> None:
        name = clean_tag(tag)
        with self._write("tag a run") as s:
            self._add_tags(s, self._resolve(s, run_id), [name])

    def remove_tag(self, run_id: str, tag: str) -> None:
        name = clean_tag(tag)
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
            for chunk in chunks(full):
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


__all__ = ["SQLITE_BEGIN_OPTION", "Repository"]
