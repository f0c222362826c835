"""Interference detection figures (prints them; no assertion: the machine is shared and noisy).

    python tests/benchmarks/bench_interference.py [--rounds 5] [--quiet-below 0.05] [--wait 600]

Each round picks the quietest CPU (its busy share over 1 s while this process sleeps, from
/proc/stat), pins itself there (a run's worker inherits the affinity), and measures a quick run
of the fake runtime (it spins the CPU; 200 µs per call) alone, then the same run beside a CPU
hog pinned to the same CPU. A round starts only when the CPU is below --quiet-below busy (up
to --wait seconds in all). Printed per run: the background before and after, the run's
foreign, own and idle shares, how long its threads waited for a CPU, its involuntary context
switches and whether it was flagged ``contended``; then the spread of the foreign share alone
and with the hog, against the threshold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# the fake runtime, for the run workers too (they get this process's sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from wattbench.backends import activity
from wattbench.domain.interference import CONTENDED_SHARE
from wattbench.domain.result import FLAG_CONTENDED
from wattbench.domain.spec import RunSpec
from wattbench.engine import runner

QUICK = dict(
    model="builtin:mlp-tiny",
    runtime="fake",
    preset="quick",
    t_max_s=1.0,
    threads=1,
    idle_baseline=False,
    memory_pass=False,
    time_limit_s=120.0,
)
HOG = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def busy_shares(seconds: float) -> dict[int, float]:
    before, _ = activity.cpu_ticks()
    time.sleep(seconds)
    after, _ = activity.cpu_ticks()
    assert before is not None and after is not None, "needs /proc/stat"
    return {
        c: (a.busy - before[c].busy) / max(1, a.total - before[c].total)
        for c, a in after.items()
        if c in before
    }


def measure(core: int, hog_on: bool) -> float | None:
    allowed = sorted(os.sched_getaffinity(0))
    bg = busy_shares(1.0)[core]
    os.sched_setaffinity(0, {core})
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(core)]) if hog_on else None
    try:
        r = runner.run_one(RunSpec(**QUICK))  # type: ignore[arg-type]
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
        os.sched_setaffinity(0, allowed)
    i = r.interference
    if i is None or i.foreign_share is None:
        print(f"  {'hog  ' if hog_on else 'alone'} no figure: {r.reason or i}")
        return None
    after = busy_shares(1.0)[core]
    wait = f"{i.run_queue_wait_s:.3f}" if i.run_queue_wait_s is not None else "n/a"
    print(
        f"  {'hog  ' if hog_on else 'alone'} CPU {core}: background {bg:.3f} before, "
        f"{after:.3f} after; foreign {i.foreign_share:.3f} own {i.own_share:.3f} idle "
        f"{i.idle_share:.3f}; waited {wait} s of {i.window_s:.2f} s; involuntary switches "
        f"{i.involuntary_switches}; contended {FLAG_CONTENDED in r.flags}",
        flush=True,
    )
    return i.foreign_share


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quiet-below", type=float, default=0.05)
    ap.add_argument("--wait", type=float, default=600.0)
    args = ap.parse_args()
    alone: list[float] = []
    hogged: list[float] = []
    deadline = time.monotonic() + args.wait
    while len(hogged) < args.rounds and time.monotonic() < deadline:
        bg = busy_shares(1.0)
        core = min(bg, key=lambda c: bg[c])
        if core not in os.sched_getaffinity(0) or bg[core] >= args.quiet_below:
            time.sleep(2.0)
            continue
        print(f"round {len(hogged) + 1}", flush=True)
        for hog_on, out in ((False, alone), (True, hogged)):
            share = measure(core, hog_on)
            if share is not None:
                out.append(share)
    for name, xs in (("alone", alone), ("with a hog", hogged)):
        if xs:
            print(
                f"foreign share {name}: median {statistics.median(xs):.3f}, "
                f"min {min(xs):.3f}, max {max(xs):.3f} (n={len(xs)}; "
                f"threshold {CONTENDED_SHARE})"
            )


if __name__ == "__main__":
    main()
