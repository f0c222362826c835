"""Bundle tests' fixtures (an empty SQLite store, copied from a template made once) and forging
helpers for tests and benchmarks: members read and written as a dict, arrays added to runs with
consistent checksums, and zlib streams of gigabytes of zeros made in milliseconds."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from wattbench.db.store import Store, open_store

Members = dict[str, bytes]
MiB = 1024**2


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store made once; tests get copies (migrations take time)."""
    path = tmp_path_factory.mktemp("template") / "empty.sqlite"
    with open_store(str(path)) as s, s.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def target(tmp_path: Path, empty_db: Path) -> Iterator[Store]:
    """An empty SQLite store (refusals never reach the database engine)."""
    copy = tmp_path / "target.sqlite"
    shutil.copyfile(empty_db, copy)
    s = open_store(str(copy))
    yield s
    s.close()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def read_members(path: Path) -> Members:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_members(path: Path, members: Members, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return path


def zeros_zlib(n_bytes: int) -> bytes:
    """``zlib.compress(bytes(n_bytes))`` made without holding or deflating ``n_bytes``: after a
    full flush every MiB of zeros compresses to the same segment, so the stream is one segment
    repeated, closed by the checksum of ``n_bytes`` zeros (Adler-32: a = 1, b = n)."""
    assert n_bytes % MiB == 0 and n_bytes > 0
    c = zlib.compressobj(9)
    first = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    segment = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush()[:-4]
    adler = ((n_bytes % 65521) << 16) | 1
    return first + segment * (n_bytes // MiB - 1) + end + adler.to_bytes(4, "big")


def with_arrays(
    base: Path,
    out: Path,
    arrays: dict[int, list[tuple[list[int], bytes]]],
    dtype: str = "<i8",
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """``base`` with arrays added to its runs (run index -> [(declared shape, zlib data)]),
    each with a correct checksum: a consistent forgery."""
    members = read_members(base)
    man = json.loads(members["manifest.json"])
    for i, extra in arrays.items():
        run = man["runs"][i]
        for k, (shape, data) in enumerate(extra):
            name = f"arrays/{run['id']}/{900 + k}.zlib"
            members[name] = data
            run["arrays"].append(
                {"name": f"extra{k}", "file": name, "dtype": dtype, "shape": shape,
                 "sha256": sha(data)}
            )  # fmt: skip
    members["manifest.json"] = json.dumps(man).encode()
    return write_members(out, members, compression)
