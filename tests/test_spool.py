"""A measured run is never lost: what the store cannot take is kept aside and stored later.

Each way a run used to vanish is played for real on the fake runtime plugin: the store locked
by another program while the run ends, a store that cannot be opened at all; the run must be
stored or spooled, the command's exit code must say when it was not stored, and the next open
of a store must import the spool.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from wattbench.cli.main import main
from wattbench.db import store as store_module
from wattbench.db.spool import Spool
from wattbench.db.store import data_dir, open_store
from wattbench.domain.events import Phase
from wattbench.domain.result import RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.service.queue import EventKind, ItemState, QueueEvent, RunQueue
from wattbench.service.workbench import Workbench

QUICK: dict[str, Any] = dict(
    preset="quick", t_max_s=1.0, idle_baseline=False, memory_pass=False, time_limit_s=120.0
)
CLI_QUICK = ["--runtime", "fake", "--preset", "quick", "--t-max", "1", "--no-idle", "--no-memory"]


def _spooled() -> list[Path]:
    return Spool.default().pending()


def test_a_run_that_ends_while_the_store_is_locked_is_kept_and_imported_later(
    fake_plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "runs.sqlite"
    holder = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    locked = threading.Event()

    def listener(event: QueueEvent) -> None:
        # once the run is measuring (its start is recorded), another program takes the
        # write lock and keeps it until the run has ended: finishing cannot be written
        measuring = event.kind is EventKind.PROGRESS and event.item.phase == Phase.MEASURING
        if measuring and not locked.is_set():
            holder.execute("BEGIN IMMEDIATE")
            locked.set()

    with Workbench.open(str(path)) as wb:
        queue = RunQueue(recorder=wb, listener=listener)
        queue.submit([RunSpec(model="builtin:mlp-tiny", runtime="fake", **QUICK)])
        (item,) = queue.run_all()
    holder.execute("ROLLBACK")
    holder.close()
    assert locked.is_set()
    assert item.state is ItemState.DONE and not item.stored and item.unstored
    assert item.kept_at is not None and Path(item.kept_at) in _spooled()
    assert "locked" in (item.store_error or "") and item.kept_at in (item.store_error or "")

    store = open_store(str(path))  # the next open imports the spool
    try:
        run = store.get_run(item.run_id)
        assert run.status is RunStatus.DONE and run.latency is not None
        assert run.latency.n == item.result.latency.n  # type: ignore[union-attr]
        assert len(run.arrays["latencies_ns"]) == run.latency.n
    finally:
        store.close()
    assert _spooled() == []


def test_a_full_disk_when_the_run_ends_keeps_it_aside_and_says_to_free_space(
    fake_plugins: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.sqlite"
    open_store(str(path)).close()
    raw = sqlite3.connect(path)
    raw.execute(  # the arrays of a finished run do not fit, as on a full disk
        "CREATE TRIGGER full BEFORE INSERT ON run_arrays "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    raw.commit()
    code = main(["--db", str(path), "run", "--model", "builtin:mlp-tiny", *CLI_QUICK])
    said = " ".join(capsys.readouterr().err.split())
    assert code == 5, said
    assert "disk is full" in said and "free some space on it" in said
    (kept,) = _spooled()
    assert str(kept) in said
    raw.execute("DROP TRIGGER full")
    raw.commit()
    raw.close()
    with open_store(str(path)) as store:  # space again: the next open stores it
        (run,) = store.list_runs()
        assert run.status is RunStatus.DONE
    assert _spooled() == []


def test_the_cli_keeps_runs_aside_when_no_store_opens_and_exits_5(
    fake_plugins: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    code = main(["--db", str(broken), "run", "--model", "builtin:mlp-tiny", *CLI_QUICK, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 5 and out["exit_code"] == 5
    assert out["store"]["saved"] == 0 and len(out["store"]["kept_aside"]) == 1
    (kept,) = _spooled()
    assert str(kept) == out["store"]["kept_aside"][0]
    run_id = out["runs"][0]["id"]

    good = tmp_path / "good.sqlite"
    assert main(["--db", str(good), "runs", "--json"]) == 0  # any store's next open imports it
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [run_id]
    assert _spooled() == []


def test_no_store_asked_for_is_not_a_failure(
    fake_plugins: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--model", "builtin:mlp-tiny", *CLI_QUICK, "--no-store", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["store"]["kept_aside"] == [] and _spooled() == []


def test_an_unreadable_spool_file_is_set_aside_not_deleted(tmp_path: Path) -> None:
    spool = Spool.default()
    spool.folder.mkdir(parents=True)
    junk = spool.folder / ("0" * 32 + ".wbrun")
    junk.write_bytes(b"\x93not msgpack of a run")
    store = open_store(str(tmp_path / "runs.sqlite"))
    try:
        assert store.list_runs() == []
    finally:
        store.close()
    assert spool.pending() == []
    assert (data_dir() / "spool" / "unreadable" / junk.name).read_bytes().startswith(b"\x93not")
