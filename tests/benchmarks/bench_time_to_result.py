"""Time to a trustworthy result: where a quick run's wall time goes, and a peer alongside it.

    python tests/benchmarks/bench_time_to_result.py [--rounds 5] [--against REV]
        [--model builtin:mlp-tiny --runtime torch] [--preset quick] [--min-run-time S]

Each round launches, in a seeded random order, fresh processes of:

- ``wattbench run --model M --runtime R --threads 1 --preset P --json`` of this tree (and of
  REV with ``--against``), wrapped so that the split of its wall time can be read: process
  start (spawn → first line of Python), imports, planning, validation, store open, worker
  start, model load, warm-up, calibration, measuring, the η bare loop, the memory pass, and
  what follows (figures, store write, output, exit). The worker's phases are the moments the
  CLI received their progress events; measuring is the worker's own ``measure_s``.
- the same model in ``torch.utils.benchmark.Timer.blocked_autorange(min_run_time=S)`` on one
  thread (the onnx-zoo models through an onnxruntime session), process start to exit.

Prints per round and as medians: wall time of each, the split, and the spread of the means
between rounds (the between-run spread that both tools' within-run figures understate).
Figures only, no assertions: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_gui import _revision_tree  # noqa: E402

# The CLI's own main(), with timers around the steps of `wattbench run` (where they exist in
# the tree being measured) and a timestamp of the first progress event of each phase.
_CLI_CHILD = r"""
import json, sys, time
marks = {"child_start": time.perf_counter()}
from wattbench.cli import main as cli_main, cmd_run
marks["imported"] = time.perf_counter()

def timed(name, fn):
    def wrapper(*a, **k):
        marks[name + "_start"] = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            marks[name + "_end"] = time.perf_counter()
    return wrapper

for attr, name in (("plan_runs", "plan"), ("check_plan", "validate"), ("_open_store", "store")):
    if hasattr(cmd_run, attr):
        setattr(cmd_run, attr, timed(name, getattr(cmd_run, attr)))
original = cmd_run._ProgressView.__call__

def on_event(self, event):
    now = time.perf_counter()
    marks.setdefault("phase:" + str(event.item.phase), now)
    if str(event.item.message).startswith("starting the worker"):
        marks.setdefault("spawn", now)
    return original(self, event)

cmd_run._ProgressView.__call__ = on_event
out = sys.argv[1]
sys.argv = ["wattbench", *sys.argv[2:]]
code = cli_main.main()  # as the program: its own arguments
marks["main_end"] = time.perf_counter()
with open(out, "w") as f:
    json.dump(marks, f)
sys.exit(code)
"""

# The peer: the same model timed by torch.utils.benchmark's blocked_autorange, one thread.
_PEER_CHILD = r"""
import json, sys, time
marks = {"child_start": time.perf_counter()}
model, min_run_time = sys.argv[2], float(sys.argv[3])
import torch
import torch.utils.benchmark as tb
torch.set_num_threads(1)
if model.startswith("builtin:"):
    from wattbench.backends.models import builtin, catalog
    entry = catalog.resolve_model(model)
    module = builtin.build_module(entry.name).eval()
    shape = tuple(1 if not isinstance(s, int) else s for s in entry.inputs[0].shape)
    x = torch.randn(*shape)
    stmt, env = "module(x)", {"module": module, "x": x}
else:
    import numpy as np
    import onnxruntime as ort
    from wattbench.backends.models import catalog
    entry = catalog.resolve_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(entry.path, opts, providers=["CPUExecutionProvider"])
    spec = entry.inputs[0]
    feed = {spec.name: np.random.rand(*spec.shape).astype(spec.dtype)}
    stmt, env = "sess.run(None, feed)", {"sess": sess, "feed": feed}
marks["loaded"] = time.perf_counter()
with torch.inference_mode():
    m = tb.Timer(stmt=stmt, globals=env, num_threads=1).blocked_autorange(
        min_run_time=min_run_time
    )
marks["measured"] = time.perf_counter()
marks["mean_ns"] = m.mean * 1e9
marks["median_ns"] = m.median * 1e9
marks["iqr_ns"] = m.iqr * 1e9
marks["blocks"] = len(m.raw_times)
marks["block_size"] = m.number_per_run
with open(sys.argv[1], "w") as f:
    json.dump(marks, f)
"""


def _phase(marks: dict[str, float], *names: str) -> float | None:
    for name in names:
        if f"phase:{name}" in marks:
            return marks[f"phase:{name}"]
    return None


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _split(marks: dict[str, float], t_spawn: float, t_exit: float, run: dict[str, Any]) -> dict:
    """Seconds per step of one CLI run, from the child's marks and the run's own phases."""
    phases = run.get("phases") or {}
    measure_s = float(phases.get("measure_s") or 0.0)
    starting = marks.get("spawn", _phase(marks, "starting"))
    preflight = _phase(marks, "preflight")
    loading = _phase(marks, "loading")
    warm = _phase(marks, "warm-up", "warmup")
    calib = _phase(marks, "calibration")
    meas = _phase(marks, "measuring")
    memory = _phase(marks, "memory")
    finishing = _phase(marks, "finishing")
    after_measure = memory if memory is not None else finishing
    bare = _span(meas, after_measure)
    return {
        "process start": marks["child_start"] - t_spawn,
        "imports": marks["imported"] - marks["child_start"],
        "plan": _span(marks.get("plan_start"), marks.get("plan_end")),
        "validation": _span(marks.get("validate_start"), marks.get("validate_end")),
        "store open": _span(marks.get("store_start"), marks.get("store_end")),
        "to worker spawn": _span(marks.get("store_end"), starting),
        "worker start": _span(starting, preflight),
        "preflight": _span(preflight, loading),
        "load + 1st call": _span(loading, warm),
        "warm-up": _span(warm, calib),
        "calibration": _span(calib, meas),
        "measuring": measure_s,
        "bare loop (η)": None if bare is None else bare - measure_s,
        "memory pass": _span(memory, finishing),
        "after": t_exit - finishing if finishing is not None else None,
    }


def _launch(code: str, args: list[str], env: dict[str, str], tmp: str) -> tuple[dict, float]:
    out = Path(tmp) / "marks.json"
    out.unlink(missing_ok=True)
    t_spawn = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=300,
    )
    wall = time.perf_counter() - t_spawn
    if proc.returncode not in (0,) or not out.exists():
        print(f"  child failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return {}, wall
    marks = json.loads(out.read_text())
    marks["t_spawn"], marks["t_exit"], marks["stdout"] = t_spawn, t_spawn + wall, proc.stdout
    return marks, wall


def _cli_round(env: dict[str, str], tmp: str, cli_args: list[str]) -> dict[str, Any] | None:
    marks, wall = _launch(_CLI_CHILD, cli_args, env, tmp)
    if not marks:
        return None
    doc = json.loads(marks["stdout"])
    run = doc["runs"][0]
    lat = run.get("latency") or {}
    return {
        "wall": wall,
        "split": _split(marks, marks["t_spawn"], marks["t_exit"], run),
        "mean_ns": lat.get("mean_ns"),
        "rho": lat.get("rho"),
        "n": lat.get("n"),
        "converged": run.get("converged"),
        "flags": run.get("flags"),
        "stop": (run.get("phases") or {}).get("stop_reason"),
        "notes": run.get("notes"),
    }


def _peer_round(env: dict[str, str], tmp: str, model: str, min_run: float) -> dict | None:
    marks, wall = _launch(_PEER_CHILD, [model, str(min_run)], env, tmp)
    if not marks:
        return None
    return {
        "wall": wall,
        "import + load": marks["loaded"] - marks["child_start"],
        "measure": marks["measured"] - marks["loaded"],
        "mean_ns": marks["mean_ns"],
        "median_ns": marks["median_ns"],
        "blocks": marks["blocks"],
        "block_size": marks["block_size"],
    }


def _spread(means: list[float]) -> str:
    if len(means) < 2:
        return "n/a"
    mid = statistics.median(means)
    return (
        f"between rounds: (max−min)/median {(max(means) - min(means)) / mid:.1%}, "
        f"CV {statistics.stdev(means) / statistics.fmean(means):.1%}"
    )


def _fmt(x: float | None) -> str:
    return "   –  " if x is None else f"{x:6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default="builtin:mlp-tiny")
    ap.add_argument("--runtime", default="torch")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--epsilon", default=None, help="passed on as --epsilon")
    ap.add_argument("--min-run-time", type=float, default=1.0, dest="min_run_time")
    ap.add_argument("--against", default=None, metavar="REV", help="also run this revision")
    ap.add_argument("--no-peer", action="store_true", dest="no_peer")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    cli_args = ["run", "--model", args.model, "--runtime", args.runtime, "--threads", "1"]
    cli_args += ["--preset", args.preset, "--json"]
    if args.epsilon:
        cli_args += ["--epsilon", args.epsilon]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="wb-ttr-") as tmp:
        base = dict(os.environ, WATTBENCH_DATA_DIR=tmp, PYTHONPATH=str(ROOT))
        base.pop("WATTBENCH_DB", None)
        arms: dict[str, tuple[str, dict[str, str]]] = {"this tree": ("cli", base)}
        if args.against:
            path = _revision_tree(args.against, Path(tmp) / "rev")
            arms[args.against] = ("cli", dict(base, PYTHONPATH=str(path)))
        if not args.no_peer:
            arms["blocked_autorange"] = ("peer", base)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
        print(
            f"{args.model} on {args.runtime}, 1 thread, preset {args.preset}; blocked_autorange"
            f"(min_run_time={args.min_run_time:g}); {args.rounds} rounds, order shuffled per "
            f"round; load average {os.getloadavg()[0]:.2f}"
        )
        try:
            for i in range(args.rounds):
                order = list(arms)
                rng.shuffle(order)
                for name in order:
                    kind, env = arms[name]
                    r = (
                        _cli_round(env, tmp, cli_args)
                        if kind == "cli"
                        else _peer_round(env, tmp, args.model, args.min_run_time)
                    )
                    if r is None:
                        continue
                    results[name].append(r)
                    extra = (
                        f"ρ {r['rho']:.2%} n {r['n']} conv {r['converged']} stop {r['stop']}"
                        if kind == "cli"
                        else f"blocks {r['blocks']}×{r['block_size']}"
                    )
                    print(
                        f"  round {i + 1} {name:>18}: wall {r['wall']:5.2f} s, mean "
                        f"{r['mean_ns'] / 1e3:9.1f} µs; {extra}"
                    )
        finally:
            if args.against:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "-f", f"{tmp}/rev/tree"],
                    check=False,
                    capture_output=True,
                )
    _report(results)


def _report(results: dict[str, list[dict[str, Any]]]) -> None:
    print()
    for name, rs in results.items():
        if not rs:
            continue
        walls = [r["wall"] for r in rs]
        means = [r["mean_ns"] for r in rs]
        print(
            f"{name}: wall median {statistics.median(walls):.2f} s "
            f"({min(walls):.2f}–{max(walls):.2f}); mean median {statistics.median(means) / 1e3:.1f}"
            f" µs; {_spread(means)}"
        )
        if "split" in rs[0]:
            rhos = [r["rho"] for r in rs if r["rho"] is not None]
            print(
                f"  ρ median {statistics.median(rhos):.2%}; converged "
                f"{sum(bool(r['converged']) for r in rs)}/{len(rs)}; stop reasons "
                f"{sorted({str(r['stop']) for r in rs})}"
            )
            print("  split, median (s):")
            for key in rs[0]["split"]:
                vals = [r["split"][key] for r in rs if r["split"].get(key) is not None]
                print(f"    {key:>16} {_fmt(statistics.median(vals) if vals else None)}")
        else:
            for key in ("import + load", "measure"):
                print(f"    {key:>16} {_fmt(statistics.median(r[key] for r in rs))}")


if __name__ == "__main__":
    main()
