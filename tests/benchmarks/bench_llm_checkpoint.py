"""Time from a local checkpoint to a result, and what a language model run reports.

    python tests/benchmarks/bench_llm_checkpoint.py [--arch llama] [--model REF]
        [--precision fp32] [--prompt 16] [--new 8] [--t-max S] [--rounds 1]

Without ``--model``, builds the tiny checkpoint of ``--arch`` (tests/llm_fixtures.py) in a
temporary folder and runs ``wattbench run --model FOLDER --scenario generation --json`` in a
fresh process, timing its wall clock: the time from a checkpoint folder on disk to a stored
result (process start, probe of the folder, worker start, torch and transformers imports,
loading, warm-up, measuring). With ``--model`` (e.g. ``llm:tinyllama-1.1b``), runs that
instead. Prints per round: wall time, status, converged, load time, TTFT, TPOT, decode and
prefill tokens/s, and the worker's peak resident memory. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _ms(interval: dict[str, Any] | None) -> str:
    return f"{interval['value'] / 1e6:.1f} ms" if interval else "n/a"


def _rate(interval: dict[str, Any] | None) -> str:
    return f"{interval['value']:.1f}/s" if interval else "n/a"


def one_run(model: str, args: argparse.Namespace, db: Path) -> None:
    argv = [sys.executable, "-m", "wattbench.cli.main", "--db", str(db), "run", "--model", model]
    argv += ["--scenario", "generation", "--precision", args.precision, "--no-idle", "--json"]
    argv += ["--prompt-tokens", str(args.prompt), "--new-tokens", str(args.new)]
    argv += ["--t-max", str(args.t_max), "--time-limit", str(max(600.0, 4 * args.t_max))]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        print(f"exit {proc.returncode} after {wall:.1f} s: {proc.stderr.strip()[-400:]}")
        return
    run = json.loads(proc.stdout)["runs"][0]
    g = run.get("generation") or {}
    mem = run.get("memory") or {}
    rss = f"{mem['peak_rss_bytes'] / 1e9:.2f} GB" if mem.get("peak_rss_bytes") else "n/a"
    print(
        f"wall {wall:.1f} s · {run['status']} · converged {run.get('converged')} · load "
        f"{run['phases'].get('cold_load_s') or 0:.1f} s · TTFT {_ms(g.get('ttft_ns'))} · TPOT "
        f"{_ms(g.get('tpot_ns'))} · decode {_rate(g.get('decode_tokens_per_s'))} · prefill "
        f"{_rate(g.get('prefill_tokens_per_s'))} · peak RSS {rss} · {run.get('reason') or ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="llama")
    parser.add_argument("--model", default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new", type=int, default=8)
    parser.add_argument("--t-max", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="wb-llm-bench-") as tmp:
        model = args.model
        if model is None:
            from tests.llm_fixtures import build_checkpoint

            model = str(build_checkpoint(args.arch, Path(tmp) / f"tiny-{args.arch}"))
        for _ in range(args.rounds):
            one_run(model, args, Path(tmp) / "runs.sqlite")


if __name__ == "__main__":
    main()
