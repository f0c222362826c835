"""The run store's sessions: one per operation, database errors in words, run ids resolved.

Every public method of the repository opens its own session and commits or rolls back before
returning. Writes on SQLite take the write lock up front (``BEGIN IMMEDIATE``) so concurrent
writers wait for each other instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence

from sqlalchemy import (
    Engine,
    select,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from wattbench.db.schema import (
    Run,
)
from wattbench.domain.errors import StoreError, UnknownRunError, WattbenchError

log = logging.getLogger(__name__)

SQLITE_BEGIN_OPTION = "wattbench_sqlite_begin"
CHUNK = 500  # ids per IN (...) list
_ID_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def chunks(items: Sequence[str], n: int = CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def what_to_do(error: str, *, server: bool, otherwise: str | None = None) -> str:
    """What the user can do about a database error, from the driver's words for it; for words
    it does not know, ``otherwise`` or a general hint."""
    text = error.lower()
    if "locked" in text or "busy" in text:
        return "another program holds the database locked; try again when it has finished"
    if "disk is full" in text or "no space left" in text or "disk full" in text:
        return (
            "the disk that holds it is full; free some space on it (or choose a database "
            "on another disk) and try again"
        )
    if "not a database" in text or "file is encrypted" in text:
        return "the file is not a SQLite database; choose another file"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return "check that the file and its folder exist and are writable, or choose another one"
    if otherwise is not None:
        return otherwise
    if server:
        return (
            "check the URL, that the server is running and the credentials, or choose another one"
        )
    return "check that the database is reachable and writable, or choose another one"


class StoreBase:
    """Sessions, errors in words and id lookup, shared by the reading and writing halves."""

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
            hint = what_to_do(text, server=self._engine.dialect.name != "sqlite")
            raise StoreError(
                f"Could not {what} in the run store {self.url}: {text}; {hint}."
            ) from exc
        except SQLAlchemyError as exc:
            text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            hint = what_to_do(
                text,
                server=self._engine.dialect.name != "sqlite",
                otherwise="if the database was changed by another program, restore it from a "
                "backup or choose another database",
            )
            raise StoreError(
                f"Could not {what} in the run store {self.url}: {text}; {hint}."
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
