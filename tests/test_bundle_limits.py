"""Bundle import within bounds: declared sizes refused before decoding (zlib bombs of zeros,
shapes that lie, bundles over the budgets) with the memory of the importing process measured;
batches written in short transactions that let a concurrent writer in; a write error mid-way
and a bundle changed mid-way leave the batches written, and importing again completes it."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from wattbench.db import bundle as bundle_limits
from wattbench.db import bundle_read
from wattbench.db.bundle import export_bundle
from wattbench.db.bundle_read import import_bundle
from wattbench.db.schema import Machine
from wattbench.db.sessions import SQLITE_BEGIN_OPTION
from wattbench.db.store import Store, open_store
from wattbench.domain.codec import to_document
from wattbench.domain.errors import BundleError, StoreError

from tests import bundle_fixtures
from tests.bundle_fixtures import MiB, read_members, with_arrays, zeros_zlib
from tests.store_fixtures import make_result, make_results

GiB = 1024**3
empty_db, target = bundle_fixtures.empty_db, bundle_fixtures.target  # shared fixtures


def test_zeros_zlib_is_what_zlib_inflates() -> None:
    assert zlib.decompress(zeros_zlib(5 * MiB)) == bytes(5 * MiB)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits")


@pytest.fixture(scope="module")
def source(folder: Path) -> tuple[Path, Path]:
    """A bundle of 20 small runs and the store it was exported from."""
    db = folder / "source.sqlite"
    with open_store(str(db)) as s:
        s.save_runs(make_results(20, n_latencies=200, n_telemetry=20))
        return export_bundle(s, None, folder / "runs.wbz").path, db


def _assert_empty(store: Store) -> None:
    assert store.count_runs() == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Machine)).scalar_one() == 0


# -- hostile bundles: refused, nothing written, memory bounded -------------------------------

_MEASURE = """
import json, sys
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from wattbench.db.bundle_read import import_bundle
from wattbench.db.store import open_store
from wattbench.domain.errors import BundleError
store = open_store(sys.argv[1])
store.count_runs()
before = peak_mb()
messages = []
for path in sys.argv[2:]:
    try:
        import_bundle(store, path)
        messages.append("imported")
    except BundleError as exc:
        messages.append(str(exc))
after = peak_mb()
print(json.dumps({"growth_mb": after - before, "messages": messages,
                  "runs": store.count_runs()}))
"""

ARRAY = 256 * MiB  # the largest array a bundle may hold
HOSTILE: dict[str, tuple[dict[int, list[tuple[list[int], int]]], str]] = {
    # 3 GiB of honest zeros in 12 runs: within every fixed limit, ~1000 times the file
    "bomb within the budgets": (
        {i: [([ARRAY // 8], ARRAY)] for i in range(12)},
        r"more than 200 times the size of the file .* decompression bomb",
    ),
    "over the whole-bundle budget": (
        {i: [([ARRAY // 8], ARRAY)] for i in range(20)},
        r"inflate to 5,120 MiB, more than the 4,096 MiB one bundle may hold; export the runs "
        r"in several smaller bundles",
    ),
    "over the per-run budget": (
        {0: [([ARRAY // 8], ARRAY)] * 5},
        r"more than the 1,024 MiB allowed for one run",
    ),
    "over the per-array budget": (
        {0: [([300 * MiB // 8], 300 * MiB)]},
        r"inflate to 300 MiB, more than the 256 MiB allowed for one array",
    ),
    "a shape that lies: 8 kB declared, 3 GiB of data": (
        {0: [([1000], 3 * GiB)]},
        r"holds more data than its dtype and shape declare",
    ),
    "a shape that lies: 8 MB declared, 4 GiB inflated at decoding": (
        {0: [([1_000_000], 4 * GiB)]},
        r"8000001 bytes where 8000000 were expected",
    ),
}


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)"
)
def test_hostile_bundles_are_refused_before_they_fill_memory(
    source: tuple[Path, Path], empty_db: Path, tmp_path: Path
) -> None:
    zeros: dict[int, bytes] = {}
    paths = []
    for i, (arrays, _) in enumerate(HOSTILE.values()):
        forged = {
            run: [(shape, zeros.setdefault(n, zeros_zlib(n))) for shape, n in entries]
            for run, entries in arrays.items()
        }
        path = with_arrays(source[0], tmp_path / f"hostile{i}.wbz", forged)
        assert path.stat().st_size < 8 * MiB  # small files, gigabytes inflated
        paths.append(str(path))
    db = tmp_path / "target.sqlite"
    shutil.copyfile(empty_db, db)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(db), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for (case, (_, match)), message in zip(HOSTILE.items(), result["messages"], strict=True):
        assert message.startswith("This bundle cannot be imported: "), (case, message)
        assert message.endswith("Nothing was imported."), (case, message)
        assert re.search(match, message), (case, message)
    assert result["runs"] == 0
    assert result["growth_mb"] < 200, result  # against gigabytes inflated
    with open_store(str(db)) as s:
        _assert_empty(s)


def test_a_bomb_below_the_ratio_floor_still_imports(
    source: tuple[Path, Path], target: Store, tmp_path: Path
) -> None:
    """Highly compressible arrays are fine while the whole bundle stays small."""
    path = with_arrays(source[0], tmp_path / "zeros.wbz", {0: [([MiB // 8], zeros_zlib(MiB))]})
    summary = import_bundle(target, path)
    assert len(summary.added) == 20
    assert not target.get_run(summary.added[0]).arrays["extra0"].any()


# -- batches: short transactions ---------------------------------------------------------------


@pytest.fixture(scope="module")
def three(folder: Path) -> tuple[Path, Path]:
    db = folder / "three.sqlite"
    with open_store(str(db)) as s:
        runs = make_results(3)
        s.save_runs(runs)
        s.add_tag(runs[0].id, "baseline")
        return export_bundle(s, None, folder / "three.wbz").path, db


def _count_write_transactions(store: Store) -> list[int]:
    begins = [0]

    @event.listens_for(store.engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(SQLITE_BEGIN_OPTION) == "IMMEDIATE":
            begins[0] += 1

    return begins


@pytest.mark.parametrize(
    ("limit", "value", "transactions"),
    [(None, 0, 1), ("IMPORT_BATCH_RUNS", 1, 3), ("IMPORT_BATCH_RUNS", 2, 2),
     ("IMPORT_BATCH_BYTES", 1, 3)],
)  # fmt: skip
def test_new_runs_are_written_one_transaction_per_batch(
    limit: str | None,
    value: int,
    transactions: int,
    three: tuple[Path, Path],
    target: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if limit is not None:
        monkeypatch.setattr(bundle_read, limit, value)
    begins = _count_write_transactions(target)
    calls: list[tuple[int, int]] = []
    summary = import_bundle(target, three[0], on_batch=lambda *a: calls.append(a))
    assert begins[0] == transactions and len(calls) == transactions and calls[-1] == (3, 3)
    with open_store(str(three[1])) as src:
        assert summary.added == tuple(src.run_ids())
        for rid in summary.added:
            assert to_document(target.get_run(rid)) == to_document(src.get_run(rid))
    again = import_bundle(target, three[0])
    assert again.added == () and again.already_present == summary.added


def test_a_run_finishing_during_an_import_is_stored_between_batches(
    three: tuple[Path, Path], target: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Between two batches nobody holds the write lock: another process's store can take it
    at once (no waiting) and a run finishing there is stored while the import goes on."""
    monkeypatch.setattr(bundle_read, "IMPORT_BATCH_RUNS", 1)
    db = tmp_path / "target.sqlite"
    finished = make_result(seed=99)
    errors: list[BaseException] = []

    def finish_elsewhere() -> None:
        try:
            with open_store(str(db)) as other:
                other.begin_run(finished.spec, finished.id)
                other.finish_run(finished)
        except BaseException as exc:
            errors.append(exc)

    def between_batches(done: int, total: int) -> None:
        raw = sqlite3.connect(db, timeout=0)  # fails at once if the lock is held
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("ROLLBACK")
        finally:
            raw.close()
        if done == 1:
            writer = threading.Thread(target=finish_elsewhere)
            writer.start()
            writer.join(timeout=120)
            assert not writer.is_alive() and errors == []

    summary = import_bundle(target, three[0], on_batch=between_batches)
    assert len(summary.added) == 3
    assert target.count_runs() == 4
    assert target.get_run(finished.id).status.value == "done"


def test_a_write_error_midway_keeps_the_batches_written_and_import_again_completes(
    three: tuple[Path, Path], target: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bundle_read, "IMPORT_BATCH_RUNS", 1)
    ids = [r["id"] for r in json.loads(read_members(three[0])["manifest.json"])["runs"]]
    raw = sqlite3.connect(tmp_path / "target.sqlite")
    raw.execute(  # the database refuses the third run, as a full disk would
        f"CREATE TRIGGER full BEFORE INSERT ON runs WHEN NEW.id = '{ids[2]}' "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    raw.commit()
    with pytest.raises(StoreError, match=r"disk is full.*2 of its 3 new runs were imported before "
                       r"this; import the bundle again to add the rest"):  # fmt: skip
        import_bundle(target, three[0])
    assert set(target.run_ids()) == set(ids[:2])
    raw.execute("DROP TRIGGER full")
    raw.commit()
    raw.close()
    summary = import_bundle(target, three[0])
    assert summary.added == (ids[2],) and summary.already_present == tuple(ids[:2])
    assert target.count_runs() == 3


def test_a_bundle_changed_during_the_import_stops_it_truthfully(
    three: tuple[Path, Path], target: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The runs are read again to be written: each member is checked against its checksum
    again, so a file altered after the checks stops the import with what was written."""
    monkeypatch.setattr(bundle_read, "IMPORT_BATCH_RUNS", 1)
    path = tmp_path / "changing.wbz"
    shutil.copyfile(three[0], path)
    with zipfile.ZipFile(path) as zf:
        man = json.loads(zf.read("manifest.json"))
        info = zf.getinfo(man["runs"][2]["arrays"][0]["file"])
    assert info.compress_type == zipfile.ZIP_STORED

    def alter(done: int, total: int) -> None:
        if done == 1:
            with path.open("r+b") as f:
                f.seek(info.header_offset + 26)
                skip = int.from_bytes(f.read(2), "little") + int.from_bytes(f.read(2), "little")
                f.seek(skip + info.compress_size // 2, 1)
                byte = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(
        BundleError,
        match=r"changed while it was being imported \(arrays/\w+/0.zlib is damaged"
        r".*\)\. 2 of its 3 new runs were imported before this",
    ):
        import_bundle(target, path, on_batch=alter)
    assert target.count_runs() == 2


# -- export never writes what import refuses ---------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "value", "match"),
    [
        ("MAX_ARRAY_BYTES", 1000, r"cannot be exported: its array latencies_ns \(shape \[2000\]"),
        ("MAX_RUN_BYTES", 10_000, r"cannot be exported: its arrays take"),
        ("MAX_INFLATED_BYTES", 50_000, r"export the runs in several smaller bundles"),
    ],
)
def test_export_refuses_what_import_would_refuse(
    limit: str, value: int, match: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with open_store(str(tmp_path / "s.sqlite")) as s:
        s.save_runs(make_results(3))
        monkeypatch.setattr(bundle_limits, limit, value)
        with pytest.raises(BundleError, match=match):
            export_bundle(s, None, tmp_path / "out.wbz")
    assert not (tmp_path / "out.wbz").exists()
    assert list(tmp_path.glob(".wattbench-export-*")) == []
