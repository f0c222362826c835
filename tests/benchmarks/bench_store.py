"""Run-store speed on SQLite (issue targets): store a run with 1 M latencies + 100 k telemetry
samples (≤ 1 s), list 10,000 runs (≤ 0.5 s), load 20 runs for comparison (≤ 0.5 s).

    python tests/benchmarks/bench_store.py [--db URL] [--repeats 5]

Prints the median and best of several repetitions; asserts nothing (timings are noisy).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wattbench.db.store import open_store
from wattbench.domain.result import RunResult

from tests.store_fixtures import make_result

log = logging.getLogger(__name__)


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    times_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times_s.append(time.perf_counter() - t0)
    return statistics.median(times_s), min(times_s)


def _line(what: str, target_s: float, median_s: float, best_s: float) -> None:
    ok = "within" if median_s <= target_s else "OVER"
    print(
        f"{what:<58} median {median_s * 1000:8.1f} ms   best {best_s * 1000:8.1f} ms   "
        f"(target ≤ {target_s * 1000:.0f} ms: {ok})"
    )


def _copies(template: RunResult, n: int) -> list[RunResult]:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        template.with_(
            id=uuid.uuid4().hex,
            created_at=(t0 + timedelta(seconds=i)).isoformat(timespec="milliseconds"),
        )
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or str(Path(tmp) / "bench.sqlite")
        store = open_store(url)
        print(f"store: {store.describe()}")

        big = make_result(n_latencies=1_000_000, n_telemetry=100_000, seed=1)
        pending = iter(_copies(big, args.repeats))
        med, best = _timed(lambda: store.finish_run(next(pending)), args.repeats)
        _line("store 1 run: 1,000,000 latencies + 100,000 telemetry", 1.0, med, best)
        big_id = store.run_ids()[0]
        med, best = _timed(lambda: store.get_run(big_id), args.repeats)
        _line("read it back (get_run, arrays decoded)", 1.0, med, best)

        small = make_result(n_latencies=2_000, n_telemetry=200, seed=2)
        many = _copies(small, 10_000)
        t0 = time.perf_counter()
        store.save_runs(many)
        print(
            f"{'(setup) insert 10,000 runs in one transaction':<58} "
            f"{(time.perf_counter() - t0):8.2f} s"
        )
        med, best = _timed(lambda: store.list_runs(), args.repeats)
        n = len(store.list_runs())
        _line(f"list {n:,} runs (summaries, no arrays)", 0.5, med, best)

        ids = [r.id for r in many[:20]]
        med, best = _timed(lambda: store.load_runs(ids, with_arrays=False), args.repeats)
        _line("load 20 runs for comparison (no raw arrays)", 0.5, med, best)
        med, best = _timed(lambda: store.load_runs(ids), args.repeats)
        _line("load 20 runs with raw arrays (2,000 latencies each)", 0.5, med, best)
        store.close()


if __name__ == "__main__":
    main()
