"""Opening the run store: where it lives, schema migrations, and crash recovery.

``open_store()`` picks the database (``--db`` URL or file > ``$WATTBENCH_DB`` > one SQLite
file in the user's data folder, ``$WATTBENCH_DATA_DIR`` overriding the folder), refuses a
database written by a newer Wattbench without touching it, applies the packaged Alembic
migrations, imports the runs kept aside in the spool (``spool``: measured while no store could
take them), and marks runs whose writer died as ``interrupted``. A store already at
``HEAD_REVISION`` is recognised with one SELECT of its ``alembic_version`` row, without
importing Alembic (a test keeps ``HEAD_REVISION`` equal to the newest packaged migration).

Interrupted runs: ``begin_run`` records the writer's host, pid and process start time. At the
next open, a ``running``/``pending`` run written on this host is marked interrupted unless that
very process (same pid *and* start time, not a zombie) is still alive. A run written on another
host (a shared PostgreSQL store) cannot be checked that way; it is marked interrupted once it is
older than ``REMOTE_STALE_HOURS`` (12 h — far longer than any single run, long enough to absorb
clock skew between machines).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from wattbench.db.repository import SQLITE_BEGIN_OPTION, Repository
from wattbench.db.schema import Base, Run
from wattbench.db.sessions import what_to_do
from wattbench.db.spool import Spool
from wattbench.db.values import process_alive, to_utc_naive
from wattbench.domain.errors import NewerSchemaError, StoreError, StoreLocationError
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec

log = logging.getLogger(__name__)

DB_FILENAME = "wattbench.sqlite"
# the newest packaged migration (db/migrations/versions): a store at this revision needs no
# Alembic at all; tests/test_store_open.py checks that Alembic's own head is this one
HEAD_REVISION = "0003"
SQLITE_BUSY_TIMEOUT_MS = 30_000
REMOTE_STALE_HOURS = 12.0
INTERRUPTED_REASON = (
    "The process that was running this run stopped before it finished (crash, kill or power "
    "loss); its measurements were not saved. Run it again."
)
_OUR_TABLES = {"runs", "machines", "models", "run_arrays", "run_traces"}


def data_dir() -> Path:
    """The folder of the default database: $WATTBENCH_DATA_DIR or the platform's data dir."""
    env = os.environ.get("WATTBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("wattbench", appauthor=False))


def resolve_url(url: str | None = None) -> str:
    """A SQLAlchemy URL from --db, $WATTBENCH_DB or the default file; bare paths are SQLite."""
    raw = url or os.environ.get("WATTBENCH_DB") or str(data_dir() / DB_FILENAME)
    if "://" in raw:
        return raw
    path = Path(raw).expanduser().resolve()
    return f"sqlite:///{path}"


def _json_dumps(value: Any) -> str:
    """JSON columns: strict JSON (NaN/inf were replaced by null before; refuse any left)."""
    return json.dumps(value, allow_nan=False)


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _make_engine(url: str, *, create_folder: bool) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"{url!r} is not a database URL: give a file path or a SQLAlchemy URL such as "
            "postgresql+psycopg://user:password@host/dbname."
        ) from exc
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
    if u.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is not None and not create_folder and not path.parent.is_dir():
            raise StoreLocationError(
                f"The folder {path.parent} of the run store {path.name} does not exist: "
                "create it first, or choose another database.",
                field="db",
            )
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder {path.parent} for the run store: "
                    f"{exc.strerror}; choose another database.",
                    field="db",
                ) from exc
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(u, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(
            f"Cannot use the database {u.render_as_string(hide_password=True)}: "
            f"{exc}. For PostgreSQL install psycopg (pip install 'psycopg[binary]')."
        ) from exc
    if u.get_backend_name() == "sqlite":
        _sqlite_events(engine)
    return engine


def _sqlite_events(engine: Engine) -> None:
    """foreign_keys=ON and a busy timeout on every connection; explicit BEGIN (IMMEDIATE for
    writes) instead of pysqlite's implicit transactions (SQLAlchemy's documented recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def _set_wal(engine: Engine) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        mode = cur.fetchone()
        cur.close()
        if not mode or str(mode[0]).lower() != "wal":
            log.warning("SQLite store is in %s journal mode, not WAL", mode)
    finally:
        raw.close()


# -- migrations ------------------------------------------------------------------------------


def alembic_config(connection: Any = None) -> Any:
    """Alembic configured in code: script_location is the packaged migrations folder."""
    import wattbench.db.migrations as migrations
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revisions(engine: Engine) -> tuple[str, ...]:
    revs = _stamped_revisions(engine)
    if revs is not None:
        return revs
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


def _stamped_revisions(engine: Engine) -> tuple[str, ...] | None:
    """The revisions in the store's ``alembic_version`` table, read with one SELECT; None
    when that table cannot be read (a new or foreign database: Alembic looks, the slow way)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return tuple(sorted(str(r) for r in rows))
    except DBAPIError:
        return None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the packaged migrations up to ``revision`` in one transaction."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def _check_schema(engine: Engine, url: str) -> tuple[str, ...]:
    """Refuse a newer or foreign database before anything is written to it."""
    revs = current_revisions(engine)
    unknown = [r for r in revs if r not in known_revisions()]
    if unknown:
        raise NewerSchemaError(
            f"This database was written by a newer Wattbench (schema {', '.join(unknown)}); "
            f"upgrade Wattbench or choose another database. ({url})",
            field="db",
        )
    if not revs:
        tables = set(inspect(engine).get_table_names())
        if tables & _OUR_TABLES:
            raise StoreError(
                f"{url} has run-store tables but no schema version; it was not made by "
                "Wattbench or is damaged. Choose another database.",
                field="db",
            )
        if tables and engine.dialect.name == "sqlite":
            # another program's file: adding tables to it (and switching it to WAL) would
            # change a file that is not ours; a server database may be shared on purpose
            named = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise StoreError(
                f"{url} is another program's database (tables: {named}); Wattbench leaves it "
                "as it is. Give a new file name (Wattbench creates it) or a Wattbench store.",
                field="db",
            )
    return revs


# -- interrupted runs ------------------------------------------------------------------------


class Store(Repository):
    """The run store at one URL. Use ``open_store()``; ``close()`` when done."""

    def __init__(self, engine: Engine, url: str) -> None:
        super().__init__(engine)
        self._raw_url = url

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin_run(self, spec: RunSpec, run_id: str) -> None:
        """Record a run as running before it is measured, so a crash leaves a trace."""
        self.begin_result(RunResult(spec=spec, status=RunStatus.RUNNING, id=run_id))

    def describe(self) -> str:
        """One line for the user: where the store is, its schema version and its size."""
        where = self.url
        path = _sqlite_path(self._raw_url)
        if path is not None:
            where = f"SQLite file {path}"
        elif self._engine.dialect.name == "sqlite":
            where = "in-memory SQLite database"
        n = self.count_runs()
        rev = self.schema_revision() or "none"
        return f"{where} (schema {rev}, {n} run{'s' if n != 1 else ''})"

    def schema_revision(self) -> str | None:
        with self._errors("read the schema version"):
            revs = current_revisions(self._engine)
        return revs[0] if revs else None

    def mark_interrupted(self, *, now: datetime | None = None) -> list[str]:
        """Mark runs whose writer is gone as interrupted; returns their ids."""
        host = socket.gethostname()[:255]
        now_utc = to_utc_naive(now or datetime.now(UTC))
        stale_before = now_utc - timedelta(hours=REMOTE_STALE_HOURS)
        open_states = (RunStatus.RUNNING.value, RunStatus.PENDING.value)
        with self._read("check for interrupted runs") as s:
            rows = s.execute(
                select(
                    Run.id, Run.writer_host, Run.writer_pid, Run.writer_started, Run.created_at
                ).where(Run.status.in_(open_states))
            ).all()
        dead = []
        for r in rows:
            if r.writer_host == host:
                if not process_alive(r.writer_pid, r.writer_started):
                    dead.append(r.id)
            elif r.created_at < stale_before:
                dead.append(r.id)
        if dead:
            with self._write("mark interrupted runs") as s:
                s.execute(
                    update(Run)
                    .where(Run.id.in_(dead), Run.status.in_(open_states))
                    .values(status=RunStatus.INTERRUPTED.value, reason=INTERRUPTED_REASON)
                )
            log.info("marked %d run(s) interrupted: %s", len(dead), ", ".join(dead))
        return dead


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (creating and migrating as needed) the run store; see the module docstring."""
    full = resolve_url(url)
    # the default folder is made on first use; a database the user named must be somewhere
    engine = _make_engine(full, create_folder=not (url or os.environ.get("WATTBENCH_DB")))
    shown = engine.url.render_as_string(hide_password=True)
    try:
        revs = _stamped_revisions(engine)
        if revs != (HEAD_REVISION,):  # not at head: Alembic decides (new, older, newer)
            revs = _check_schema(engine, shown)
        if engine.dialect.name == "sqlite" and _sqlite_path(full) is not None:
            _set_wal(engine)
        if migrate and revs != (HEAD_REVISION,):
            log.info(
                "migrating run store %s from %s to %s", shown, revs or "empty", head_revision()
            )
            upgrade(engine)
        store = Store(engine, full)
        if migrate:
            # runs measured while no store could take them come first: a run kept aside
            # after it began replaces its "running" row before that is called interrupted
            Spool.default().import_into(store.save_run)
            store.mark_interrupted()
        return store
    except StoreError:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        hint = what_to_do(text, server=engine.dialect.name != "sqlite")
        raise StoreError(f"Cannot open the run store {shown}: {text}; {hint}.", field="db") from exc


__all__ = ["Base", "Store", "data_dir", "open_store", "resolve_url"]
