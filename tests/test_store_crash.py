"""A writer killed with SIGKILL mid-write: the database stays sound, completed runs stay, the
cut-off run shows as interrupted at the next open."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wattbench.db.store import open_store
from wattbench.domain.result import RunStatus

ROOT = Path(__file__).resolve().parents[1]

WRITER = r"""
import sys
sys.path.insert(0, {root!r})
from tests.store_fixtures import make_result
from wattbench.db.store import open_store

store = open_store({url!r})
cut = make_result(seed=999)
store.begin_run(cut.spec, cut.id)
print("BEGUN", cut.id, flush=True)
i = 0
while True:  # big runs, back to back, until killed
    r = make_result(seed=i, n_latencies=300_000, n_telemetry=20_000)
    print("WRITING", r.id, flush=True)
    store.save_run(r)
    print("SAVED", r.id, flush=True)
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_mid_write_loses_nothing_completed(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    code = WRITER.format(root=str(ROOT), url=str(db))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    saved: list[str] = []
    begun = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            kind, rid = line.split()
            if kind == "BEGUN":
                begun = rid
            elif kind == "SAVED":
                saved.append(rid)
            elif kind == "WRITING" and len(saved) >= 3:
                # the save takes ~0.1-0.5 s (compression, then one transaction): land inside it
                time.sleep(0.03)
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        rest = proc.stdout.read()
        proc.stdout.close()
    saved += [ln.split()[1] for ln in rest.splitlines() if ln.startswith("SAVED")]
    assert begun is not None and len(saved) >= 3, "the writer did not get going"
    assert proc.returncode == -signal.SIGKILL

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()
    with open_store(str(db)) as s:
        cut = s.get_run(begun)
        assert cut.status is RunStatus.INTERRUPTED
        assert "stopped before it finished" in (cut.reason or "")
        for rid in saved:
            r = s.get_run(rid)
            assert r.status is RunStatus.DONE
            assert r.arrays["latencies_ns"].size == 300_000
            assert r.telemetry["rapl.package-0"].values.size == 20_000
        # a run that was being written when the kill came is either whole or absent
        ids = {x.id for x in s.list_runs()}
        assert ids >= {begun, *saved}
        for extra in ids - {begun, *saved}:
            assert s.get_run(extra).arrays["latencies_ns"].size == 300_000
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()
