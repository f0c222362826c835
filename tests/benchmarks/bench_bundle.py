"""Bundle import figures (prints them; no assertion: the machine is shared and noisy).

    python tests/benchmarks/bench_bundle.py [--against REV] [--big-mib 2048] [--legit-runs 40]

1. Peak memory of a spawned importer (VmHWM, MB; ``ru_maxrss`` would keep this process's
   across exec) importing a hostile 25 MB bundle (zlib of zeros declaring 25 GiB; refused) and
   a legitimate bundle of a few hundred MB (exported from a store: runs of 1,000,000 latencies
   and 100,000 telemetry samples).
2. During the import of a ~2 GB bundle of incompressible arrays, how long ``finish_run`` takes
   in another process on the same SQLite file (a run finishing; one call every 0.25 s): the
   wait for the write lock is what it takes beyond its ~20 ms of own work. A call that waits
   past the store's busy timeout (30 s) fails with "database is locked".

With --against REV, each figure is measured for that revision's importer too (a git worktree
of it, laid out as the package; it must have the same store schema). The importer runs under
an 8 GiB address-space limit, so code that inflates a bomb fails with MemoryError instead of
calling the kernel's out-of-memory killer onto the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wattbench.db.bundle import export_bundle
from wattbench.db.store import open_store

from tests.benchmarks.bench_gui import _revision_tree
from tests.bundle_fixtures import MiB, with_arrays, zeros_zlib
from tests.store_fixtures import make_result, make_results

ROOT = Path(__file__).resolve().parents[2]
AS_LIMIT = 8 * 1024**3

_IMPORT = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from wattbench.db.bundle_read import import_bundle
from wattbench.db.store import open_store
store = open_store(sys.argv[1])
store.count_runs()
before = peak_mb()
t0 = time.perf_counter()
try:
    s = import_bundle(store, sys.argv[2])
    outcome = f"imported {len(s.added)} runs"
except MemoryError:
    outcome = "MemoryError"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:160]}"
seconds = time.perf_counter() - t0
peak = peak_mb()
print(json.dumps({"before_mb": before, "peak_mb": peak, "seconds": seconds,
                  "outcome": outcome}))
"""

_RUNNER = r"""
import json, sys, time, uuid
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from tests.store_fixtures import make_result
from wattbench.db.store import open_store
store = open_store(sys.argv[1])
stop = Path(sys.argv[2])
template = make_result(seed=12345)
runs = [template.with_(id=uuid.uuid4().hex) for _ in range(int(sys.argv[4]))]
for r in runs:
    store.begin_run(r.spec, r.id)
print("ready", flush=True)
calls, errors = [], []
for r in runs:
    if stop.exists():
        break
    t0 = time.perf_counter()
    try:
        store.finish_run(r)
    except Exception as exc:
        errors.append(str(exc)[:120])
    calls.append(time.perf_counter() - t0)
    time.sleep(0.25)
print(json.dumps({"calls": calls, "errors": errors, "stopped": stop.exists()}))
"""


def _env(tree: Path | None) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree)) if tree else dict(os.environ)


def _import(db: Path, bundle: Path, tree: Path | None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT, str(db), str(bundle), str(AS_LIMIT)],
        capture_output=True,
        text=True,
        env=_env(tree),
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"outcome": f"exit {out.returncode}: {out.stderr.strip()[-300:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _memory_line(what: str, r: dict[str, Any]) -> None:
    if "peak_mb" not in r:
        print(f"  {what:<12} {r['outcome']}")
        return
    print(
        f"  {what:<12} peak RSS {r['peak_mb']:8.0f} MB (+{r['peak_mb'] - r['before_mb']:6.0f} MB "
        f"over the open store)  {r['seconds']:6.1f} s  {r['outcome'][:110]}"
    )


def _fresh(empty: Path, where: Path) -> Path:
    for p in where.parent.glob(where.name + "*"):
        p.unlink()
    shutil.copyfile(empty, where)
    return where


def _hostile(tmp: Path) -> Path:
    """100 runs, each with a 256 MiB array of zeros stored as zlib: 25 GiB in ~26 MB."""
    with open_store(str(tmp / "h.sqlite")) as s:
        s.save_runs(make_results(100, n_latencies=100, n_telemetry=10))
        base = export_bundle(s, None, tmp / "h-base.wbz").path
    bomb = zeros_zlib(256 * MiB)
    arrays = {i: [([32 * MiB], bomb)] for i in range(100)}
    return with_arrays(base, tmp / "hostile.wbz", arrays, compression=zipfile.ZIP_STORED)


def _legit(tmp: Path, n: int) -> Path:
    template = make_result(n_latencies=1_000_000, n_telemetry=100_000, seed=1)
    with open_store(str(tmp / "l.sqlite")) as s:
        s.save_runs([template.with_(id=uuid.uuid4().hex) for _ in range(n)])
        return export_bundle(s, None, tmp / "legit.wbz").path


def _big(tmp: Path, mib: int) -> Path:
    """Runs with one 32 MiB array of random bytes each (zlib level 0: incompressible)."""
    n = max(1, mib // 32)
    with open_store(str(tmp / "b.sqlite")) as s:
        s.save_runs(make_results(n, n_latencies=100, n_telemetry=10))
        base = export_bundle(s, None, tmp / "b-base.wbz").path
    blocks = [zlib.compress(os.urandom(32 * MiB), 0) for _ in range(4)]
    arrays = {i: [([4 * MiB], blocks[i % 4])] for i in range(n)}
    return with_arrays(base, tmp / "big.wbz", arrays, compression=zipfile.ZIP_STORED)


def _contended(db: Path, bundle: Path, tree: Path | None, tmp: Path) -> None:
    stop = tmp / "stop"
    stop.unlink(missing_ok=True)
    runner = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(db), str(stop), str(ROOT), "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout is not None
    if runner.stdout.readline().strip() != "ready":
        print(f"  runner failed: {runner.communicate()[1][-300:]}")
        return
    r = _import(db, bundle, tree)
    stop.touch()
    out, err = runner.communicate()
    _memory_line("importer", r)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        print(f"  runner failed: {err[-300:]}")
        return
    calls = sorted(res["calls"])
    if not calls:
        print("  no finish_run call was made during the import")
        return
    p99 = calls[min(len(calls) - 1, int(0.99 * len(calls)))]
    print(
        f"  finish_run during the import: {len(calls)} calls, median "
        f"{statistics.median(calls) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, longest "
        f"{calls[-1] * 1000:.0f} ms; {len(res['errors'])} failed"
        + (f" ({res['errors'][0]})" if res["errors"] else "")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default=None, help="a git revision to measure too")
    ap.add_argument("--big-mib", type=int, default=2048)
    ap.add_argument("--legit-runs", type=int, default=40)
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        trees: list[tuple[str, Path | None]] = [("this tree", None)]
        if args.against:
            (tmp / "rev").mkdir()
            trees.append((args.against, _revision_tree(args.against, tmp / "rev")))
        try:
            with open_store(str(tmp / "empty.sqlite")) as s, s.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            empty = tmp / "empty.sqlite"
            t0 = time.perf_counter()
            hostile = _hostile(tmp)
            print(
                f"hostile bundle: {hostile.stat().st_size / 1e6:.1f} MB, declares 25 GiB of "
                f"zeros (built in {time.perf_counter() - t0:.1f} s)"
            )
            for label, tree in trees:
                _memory_line(label, _import(_fresh(empty, tmp / "t.sqlite"), hostile, tree))
            hostile.unlink()
            t0 = time.perf_counter()
            legit = _legit(tmp, args.legit_runs)
            print(
                f"legitimate bundle: {legit.stat().st_size / 1e6:.0f} MB, {args.legit_runs} runs "
                f"of 1,000,000 latencies + 100,000 telemetry samples (built in "
                f"{time.perf_counter() - t0:.1f} s)"
            )
            for label, tree in trees:
                _memory_line(label, _import(_fresh(empty, tmp / "t.sqlite"), legit, tree))
            legit.unlink()
            if args.skip_big:
                return
            t0 = time.perf_counter()
            big = _big(tmp, args.big_mib)
            print(
                f"big bundle: {big.stat().st_size / 1e9:.2f} GB of incompressible arrays "
                f"(built in {time.perf_counter() - t0:.1f} s)"
            )
            for label, tree in trees:
                print(f"{label}:")
                _contended(_fresh(empty, tmp / "t.sqlite"), big, tree, tmp)
        finally:
            if args.against:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "-f", str(tmp / "rev/tree")],
                    check=False,
                    capture_output=True,
                )


if __name__ == "__main__":
    main()
