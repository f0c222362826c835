"""Opening a run store that is already at the newest schema costs one SELECT, not Alembic."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from wattbench.db.store import HEAD_REVISION, head_revision, open_store
from wattbench.domain.errors import NewerSchemaError

from tests.store_fixtures import store_url  # noqa: F401

_OPEN_AND_DESCRIBE = """
import sys
from wattbench.db.store import open_store
with open_store(sys.argv[1]) as store:
    where = store.describe()
print("alembic" in sys.modules, where)
"""


def test_the_known_head_is_alembics_head() -> None:
    assert head_revision() == HEAD_REVISION


def test_a_store_at_head_opens_and_describes_itself_without_importing_alembic(
    store_url: str,  # noqa: F811
) -> None:
    with open_store(store_url):  # a new store: migrated by Alembic
        pass
    out = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_DESCRIBE, store_url],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    imported, where = out.stdout.split(" ", 1)
    assert imported == "False"
    assert f"schema {HEAD_REVISION}" in where


def test_a_store_stamped_past_head_is_still_refused(store_url: str) -> None:  # noqa: F811
    with open_store(store_url):
        pass
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(NewerSchemaError, match="newer Wattbench"):
        open_store(store_url)
