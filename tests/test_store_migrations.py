"""Schema migrations: from empty, from the previous revision, refusal of a newer schema."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from wattbench.db.schema import Base
from wattbench.db.store import head_revision, open_store, upgrade
from wattbench.domain.codec import to_document
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import NewerSchemaError, StoreError

from tests.store_fixtures import make_result, store_url  # noqa: F401


def test_empty_database_migrates_to_a_schema_equal_to_the_models(
    store_url: str,  # noqa: F811
) -> None:
    with open_store(store_url) as s:
        assert s.schema_revision() == head_revision() == "0003"
        with s.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_previous_revision_migrates_and_keeps_its_runs(store_url: str) -> None:  # noqa: F811
    engine = create_engine(store_url)
    upgrade(engine, "0001")
    assert "cost_profiles" not in inspect(engine).get_table_names()
    engine.dispose()
    r = make_result()
    # a 0001 database with a run in it: write it with the current code, minus the new table
    with open_store(store_url, migrate=False) as s:
        s.save_run(r)
        assert s.schema_revision() == "0001"
    with open_store(store_url) as s:
        assert s.schema_revision() == head_revision()
        assert to_document(s.get_run(r.id)) == to_document(r)
        s.save_cost_profile(CostProfile(device="cpu", cloud_usd_per_hour=0.1))
        assert len(s.list_cost_profiles()) == 1


def test_0002_migrates_to_0003_and_stores_a_seven_billion_parameter_model(
    store_url: str,  # noqa: F811
) -> None:
    engine = create_engine(store_url)
    upgrade(engine, "0002")
    engine.dispose()
    old = make_result()
    with open_store(store_url, migrate=False) as s:
        s.save_run(old)
    with open_store(store_url) as s:
        assert s.schema_revision() == "0003"
        assert to_document(s.get_run(old.id)) == to_document(old)
        big = make_result(seed=1)
        assert big.model is not None
        big = replace(big, model=replace(big.model, sha256="7b" * 32, parameters=7_000_000_000))
        s.save_run(big)  # int4 on PostgreSQL before 0003: "integer out of range"
        stored = s.get_run(big.id).model
        assert stored is not None and stored.parameters == 7_000_000_000


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    with open_store(str(db)) as s:
        s.save_run(make_result())
        with s.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    before = _sha(db)
    with pytest.raises(NewerSchemaError, match=r"newer Wattbench \(schema 0999\)"):
        open_store(str(db))
    assert _sha(db) == before


def test_newer_schema_is_refused_on_postgres_too(store_url: str) -> None:  # noqa: F811
    with open_store(store_url) as s, s.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(NewerSchemaError, match="upgrade Wattbench"):
        open_store(store_url)


def test_foreign_database_with_our_table_names_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "foreign.sqlite"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StoreError, match="no schema version"):
        open_store(str(db))


def test_another_programs_sqlite_file_is_left_as_it_is(tmp_path: Path) -> None:
    """No tables added, no switch to WAL: the file is byte for byte what it was."""
    db = tmp_path / "contacts.sqlite"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO contacts (name) VALUES ('Ada')"))
    engine.dispose()
    before = _sha(db)
    with pytest.raises(StoreError, match=r"another program's database \(tables: contacts\)"):
        open_store(str(db))
    assert _sha(db) == before
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "delete"
        assert inspect(conn).get_table_names() == ["contacts"]
    engine.dispose()


def test_a_file_that_is_not_sqlite_says_so(tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_bytes(b"just some notes, not a database\n" * 200)
    before = _sha(db)
    with pytest.raises(StoreError, match=r"the file is not a SQLite database; choose another"):
        open_store(str(db))
    assert _sha(db) == before


def test_downgrade_scripts_work(tmp_path: Path) -> None:
    """Each step can be undone (a developer can step back while writing a migration)."""
    from alembic import command
    from wattbench.db.store import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
