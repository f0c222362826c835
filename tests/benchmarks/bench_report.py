"""HTML and PDF report of 20 runs: time to write each and the file's size (figures only).

    python tests/benchmarks/bench_report.py [--runs 20] [--repeat 3]

The runs are the synthetic ones of tests/report_fixtures.py (``make_run``: 800 latencies and a
power trace each), 5 configurations × 4 replicates on two machines, one run not converged.
Each report is written ``--repeat`` times through ``write_report`` (comparison, charts,
rendering, the atomic write); the best and the median time are printed, with the page count
of the PDF when pdftotext is installed. No assertions: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wattbench.domain.result import FLAG_NOT_CONVERGED, RunResult
from wattbench.reports import write_report

from tests.report_fixtures import LAPTOP, WORKSTATION, make_run

CONFIGS: tuple[Callable[[int], RunResult], ...] = (
    lambda seed: make_run(seed=seed, mean_ms=10.0, power_w=28.0),
    lambda seed: make_run(seed=seed, runtime="onnxruntime", mean_ms=8.0, power_w=30.0),
    lambda seed: make_run(seed=seed, device="cuda:0", mean_ms=2.5, power_w=300.0),
    lambda seed: make_run(seed=seed, device="cuda:0", batch=8, mean_ms=1.0, power_w=160.0),
    lambda seed: make_run(seed=seed, device="cuda:0", runtime="onnxruntime", mean_ms=2.0,
                          power_w=280.0),
)  # fmt: skip


def runs(n: int) -> list[RunResult]:
    out = []
    for i in range(n):
        run = CONFIGS[i % len(CONFIGS)](i + 1)
        out.append(run.with_(system=LAPTOP if run.spec.device == "cpu" else WORKSTATION))
    out[1] = out[1].with_(converged=False, flags=(FLAG_NOT_CONVERGED,))
    return out


def pages(pdf: Path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        return "n/a (pdftotext not installed)"
    text = subprocess.run([tool, str(pdf), "-"], capture_output=True, text=True, check=True)
    return str(text.stdout.count("\f"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    given = runs(args.runs)
    with tempfile.TemporaryDirectory() as d:
        for suffix in ("html", "pdf"):
            times = []
            path = Path(d) / f"report.{suffix}"
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                write_report(given, path)
                times.append(time.perf_counter() - t0)
            size = path.stat().st_size
            extra = f", {pages(path)} pages" if suffix == "pdf" else ""
            print(f"{suffix.upper():4} report of {len(given)} runs: best {min(times):.2f} s, "
                  f"median {statistics.median(times):.2f} s over {args.repeat}; "
                  f"{size / 1024:,.0f} KiB{extra}")  # fmt: skip


if __name__ == "__main__":
    main()
