"""Energy benchmarks (ENERGY.md targets 3 and 6); prints figures, asserts nothing timed.

    python tests/benchmarks/bench_energy.py [--seconds 10] [--pairs 3] [--t-max 5]

1. Sampler CPU cost at 10 Hz: process CPU time over ~10 s with the sampler thread reading a
   fake sysfs tree (6 RAPL zones + 3 hwmon sensors), minus the same interval with it off;
   also for the TDP × load estimate alone (what this sensorless machine uses).
2. Throughput of a CPU run with sampling on vs off, alternating in one session, through the
   engine's runner (wattbench.engine.runner.run_one, builtin:mlp-small, preset quick); "on"
   samples the fake tree, "off" makes the supervisor's open_sampler fail (run without energy).
   The tree's counters are static here, so only the hwmon power sensors give figures; the
   sampler still reads all 9 files every tick.
   Also a tight counting loop in a spawned child process with sampling on vs off.
3. Discovery time (median of 20) on the fake tree and on this machine's /sys, with
   subprocess.Popen patched to fail, proving no subprocess is started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.fake_pynvml import FakeNvml
from tests.fakes.sysfs import FakeSysfs, two_socket_tree


def build_tree(root: Path) -> Path:
    two_socket_tree(root)
    FakeSysfs(root).hwmon_chip(
        "hwmon1",
        "apm_xgene",
        {"power1_input": 30e6, "power2_input": 5e6, "energy1_input": 7e6},
        labels={"power1": "CPU power", "power2": "IO power"},
    )
    return root


def sampler_cpu_cost(root: Path | None, seconds: float) -> tuple[float, int]:
    """(% of one core, samples taken) for a 10 Hz sampler over ``seconds``."""
    from wattbench.domain.spec import RunSpec
    from wattbench.energy.sampler import open_sampler

    spec = RunSpec(model="builtin:mlp-small", sample_hz=10.0, idle_baseline=False)
    s = open_sampler(
        spec, sys_root=root or "/nonexistent", nvml_module=FakeNvml(library_missing=True)
    )
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    idle_cpu = time.process_time() - c0
    idle_wall = time.perf_counter() - w0
    s.start()
    c0, w0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - w0
    s.stop()
    n = max(len(t.t_ns) for t in s.traces()) if s.traces() else 0
    s.close()
    return 100.0 * (cpu / wall - idle_cpu / idle_wall), n


def discovery_times(root: Path | None, repeats: int = 20) -> list[float]:
    from wattbench.backends.sensors.discovery import inventory

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("discovery started a subprocess")

    real_init = subprocess.Popen.__init__
    subprocess.Popen.__init__ = refuse  # type: ignore[method-assign]
    try:
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            inv = inventory(root)
            out.append(time.perf_counter() - t0)
            inv.close()
        return out
    finally:
        subprocess.Popen.__init__ = real_init  # type: ignore[method-assign]


def throughput_on_off(root: Path, pairs: int, t_max_s: float) -> tuple[list[float], list[float]]:
    import wattbench.engine.run_energy as sampler_mod  # where the supervisor's sampler opens
    from wattbench.domain.spec import RunSpec
    from wattbench.engine.runner import run_one

    spec = RunSpec(
        model="builtin:mlp-small",
        preset="quick",
        t_max_s=t_max_s,
        idle_baseline=False,
        memory_pass=False,
    )
    real_open = sampler_mod.open_sampler

    def off(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("sampling switched off for the benchmark")

    on_tp: list[float] = []
    off_tp: list[float] = []
    os.environ["WATTBENCH_SYSFS_ROOT"] = str(root)
    for i in range(pairs):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            sampler_mod.open_sampler = real_open if mode == "on" else off
            r = run_one(spec)
            sampler_mod.open_sampler = real_open
            if r.throughput_items_per_s is None:
                print(f"  run {mode}: no throughput ({r.status}: {r.reason})")
                continue
            value = r.throughput_items_per_s.value
            (on_tp if mode == "on" else off_tp).append(value)
            srcs = sorted({f.source for f in r.energy}) or r.energy_na_reason
            print(f"  run {mode:>3}: {value:10.1f} items/s  energy sources: {srcs}")
    return on_tp, off_tp


def _count_loop(seconds: float, q: Any) -> None:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            n += 1
    q.put(n / seconds)


def loop_on_off(root: Path, pairs: int, seconds: float) -> tuple[list[float], list[float]]:
    """A tight counting loop in a spawned child (like the engine's worker) while this process
    samples the fake tree at 10 Hz (on) or not (off), alternating."""
    import multiprocessing as mp

    from wattbench.domain.spec import RunSpec
    from wattbench.energy.sampler import open_sampler

    ctx = mp.get_context("spawn")
    on: list[float] = []
    off: list[float] = []
    for i in range(pairs):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            s = None
            if mode == "on":
                s = open_sampler(
                    RunSpec(model="builtin:mlp-small", idle_baseline=False),
                    sys_root=root,
                    nvml_module=FakeNvml(library_missing=True),
                )
                s.start()
            q = ctx.Queue()
            proc = ctx.Process(target=_count_loop, args=(seconds, q))
            proc.start()
            rate = float(q.get())
            proc.join()
            if s is not None:
                s.close()
            (on if mode == "on" else off).append(rate)
    return on, off


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--t-max", type=float, default=5.0)
    ap.add_argument("--skip-runs", action="store_true")
    ap.add_argument("--loop-pairs", type=int, default=10)
    args = ap.parse_args()
    root = build_tree(Path(tempfile.mkdtemp(prefix="wattbench-bench-sysfs-")))
    print(f"fake sysfs tree: {root}")

    pct, n = sampler_cpu_cost(root, args.seconds)
    print(
        f"sampler CPU at 10 Hz, fake tree (9 domains): {pct:.3f} % of one core "
        f"({n} samples in {args.seconds:g} s; target ≤ 0.5 %)"
    )
    pct, n = sampler_cpu_cost(None, args.seconds)
    print(
        f"sampler CPU at 10 Hz, estimate only (this machine): {pct:.3f} % of one core ({n} samples)"
    )

    for label, r in (("fake tree", root), ("this machine's /sys", None)):
        times = discovery_times(r)
        print(
            f"discovery ({label}): median {statistics.median(times) * 1e3:.1f} ms, "
            f"max {max(times) * 1e3:.1f} ms over {len(times)} (target ≤ 1 s); no subprocess"
        )

    if args.loop_pairs:
        on_r, off_r = loop_on_off(root, args.loop_pairs, 2.0)
        m_on, m_off = statistics.median(on_r), statistics.median(off_r)
        print(
            f"tight loop in a child process, {args.loop_pairs} alternating pairs of 2 s: "
            f"median on {m_on / 1e6:.2f} M/s, off {m_off / 1e6:.2f} M/s: on/off − 1 = "
            f"{100 * (m_on / m_off - 1):+.2f} % (spread off: "
            f"{100 * (max(off_r) - min(off_r)) / m_off:.0f} % of median)"
        )

    if not args.skip_runs:
        print("throughput, sampling on vs off (engine runner, builtin:mlp-small, quick):")
        on_tp, off_tp = throughput_on_off(root, args.pairs, args.t_max)
        if on_tp and off_tp:
            m_on, m_off = statistics.median(on_tp), statistics.median(off_tp)
            print(
                f"median on {m_on:.1f} items/s, off {m_off:.1f} items/s: "
                f"on/off − 1 = {100 * (m_on / m_off - 1):+.2f} % (target within 1 %)"
            )


if __name__ == "__main__":
    main()
