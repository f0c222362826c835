"""Fleet figures: what a fleet adds to each run, and what bringing a large result back costs
(prints them; no assertion: the machine is shared and noisy).

    python tests/benchmarks/bench_fleet.py [--runs 8] [--transfers 5] [--latencies 1000000]

Starts a Dask scheduler and one agent ("epyc") on this machine, each its own process
(tests/fleet_fixtures.py: the fake runtime installed, its calls sleep). Then:

Dispatch: the same quick run (builtin:mlp-small on the fake runtime, T_max 1 s, no idle
baseline, no memory pass) --runs times here (``RunQueue``, no store) and as many times on the
agent (``FleetRun``, no store), interleaved L, F, L, F … after one uncounted pair (the agent's
first run imports the engine: printed apart). Per run, from the queue's events: the wall time
STARTED → FINISHED, the run's own time (``phases.total_s``: supervisor begin → result built),
STARTED → first progress event, and the split of the rest: the lead (STARTED → supervisor
begin, from the first event's arrival less its own ``elapsed_s``: it includes the event's way
back, which the tail lacks) and the tail (supervisor end → FINISHED). The overhead per run
is fleet − local, pair by pair, both on the wall time and on the part outside the run's own
time.

Result transfer: a real RunResult of the runs above with its ``latencies_ns`` and
``starts_ns`` replaced by --latencies int64 values each (drawn from its own latencies). Local
path: ``codec.encode_msgpack`` + ``codec.decode_msgpack``. Fleet path: a task shipped by value
to the agent builds that result from the small frame it is given, encodes it and returns the
frame with its build time; the client's submit → frame in hand less the build time is the
transfer (the small frame out and the large one back, through the scheduler's bookkeeping),
then the client decodes it. A task returning nothing gives Dask's fixed round trip. Both paths
pay a worker pipe's encode + decode (the local figure); a remote run's result is then encoded
again on the agent (timed there), moved and decoded: what the fleet adds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# the fake runtime, for the local run workers too (they get this process's sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# A local run's worker re-imports this script (multiprocessing's spawn) and the agent's does
# not: the service and test modules, which a worker does not need, are imported where used so
# that the local runs do not pay for them at each start.
import numpy as np
from wattbench.domain import codec
from wattbench.domain.result import RunResult
from wattbench.domain.spec import RunSpec

if TYPE_CHECKING:
    from wattbench.service.fleet_link import Fleet
    from wattbench.service.queue import QueueEvent

HOST = "epyc"
MiB = 1024 * 1024


@dataclasses.dataclass
class Sample:
    """One run as its queue's listener saw it (perf_counter seconds)."""

    started: float = 0.0
    first_at: float | None = None  # arrival of the first progress event
    first_elapsed_s: float = 0.0  # that event's own elapsed_s (since the supervisor began)
    finished: float = 0.0
    result: RunResult | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def __call__(self, event: QueueEvent) -> None:
        from wattbench.service.queue import EventKind

        now = time.perf_counter()
        with self.lock:
            if event.kind is EventKind.STARTED:
                self.started = now
            elif event.kind is EventKind.PROGRESS and event.progress and self.first_at is None:
                self.first_at, self.first_elapsed_s = now, event.progress.elapsed_s
            elif event.kind is EventKind.FINISHED:
                self.finished, self.result = now, event.item.result

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    @property
    def wall_s(self) -> float:
        return self.finished - self.started

    @property
    def own_s(self) -> float:
        assert self.result is not None and self.result.phases.total_s is not None
        return self.result.phases.total_s

    @property
    def worker_start_s(self) -> float:
        assert self.result is not None
        return self.result.phases.worker_start_s or float("nan")

    @property
    def first_s(self) -> float:
        return (self.first_at or self.finished) - self.started

    @property
    def lead_s(self) -> float:
        return self.first_s - self.first_elapsed_s

    @property
    def tail_s(self) -> float:
        return self.wall_s - self.lead_s - self.own_s


def quick_spec(t_max_s: float) -> RunSpec:
    from wattbench.service.plan import plan_runs
    from wattbench.service.request import RunRequest

    request = RunRequest(
        model="builtin:mlp-small",
        runtimes=("fake",),
        preset="quick",
        t_max_s=t_max_s,
        idle_baseline=False,
        memory_pass=False,
    )
    (spec,) = plan_runs(request).specs
    return spec


def run_local(spec: RunSpec) -> Sample:
    from wattbench.service.queue import RunQueue

    sample = Sample()
    queue = RunQueue(None, sample, keep_aside=False)
    queue.submit([spec])
    queue.run_all()
    return sample


def run_fleet(fleet: Fleet, spec: RunSpec) -> Sample:
    from wattbench.service.fleet import FleetRun

    sample = Sample()
    run = FleetRun(fleet, [HOST], None, sample, keep_aside=False)
    run.submit([spec])
    run.run_all()
    return sample


def spread(xs: Sequence[float], unit: str = "s", scale: float = 1.0) -> str:
    v = [x * scale for x in xs]
    return f"median {statistics.median(v):.3f} {unit} ({min(v):.3f} … {max(v):.3f})"


def show(tag: str, s: Sample) -> None:
    if not s.ok:
        reason = s.result.reason if s.result is not None else "no result"
        print(f"  {tag}: not done: {reason}", flush=True)
        return
    print(
        f"  {tag}: wall {s.wall_s:.3f} s, own {s.own_s:.3f} s (worker start "
        f"{s.worker_start_s:.3f}), outside {s.wall_s - s.own_s:.3f} s "
        f"(lead {s.lead_s:.3f}, tail {s.tail_s:.3f}); first progress after {s.first_s:.3f} s",
        flush=True,
    )


def dispatch(fleet: Fleet, runs: int, t_max_s: float) -> RunResult | None:
    spec = quick_spec(t_max_s)
    print(f"dispatch: {runs} pairs of {spec.label()} (T_max {t_max_s:g} s), local then fleet")
    show("first local (uncounted)", run_local(spec))
    show("first fleet (uncounted: the agent imports the engine)", run_fleet(fleet, spec))
    pairs: list[tuple[Sample, Sample]] = []
    for i in range(runs):
        local, remote = run_local(spec), run_fleet(fleet, spec)
        show(f"{i + 1} local", local)
        show(f"{i + 1} fleet", remote)
        if local.ok and remote.ok:
            pairs.append((local, remote))
    if not pairs:
        print("no pair of runs finished: no figures")
        return None
    print(f"over {len(pairs)} pairs, median (min … max):")
    for name, side in (("local", 0), ("fleet", 1)):
        ss = [p[side] for p in pairs]
        print(f"  {name}: wall {spread([s.wall_s for s in ss])}")
        print(f"         own (phases.total_s) {spread([s.own_s for s in ss])}")
        print(f"           of which worker start {spread([s.worker_start_s for s in ss])}")
        print(f"         outside the run's own time {spread([s.wall_s - s.own_s for s in ss])}")
        print(f"           lead (STARTED → supervisor begin) {spread([s.lead_s for s in ss])}")
        print(f"           tail (supervisor end → FINISHED) {spread([s.tail_s for s in ss])}")
        print(f"         STARTED → first progress event {spread([s.first_s for s in ss])}")
    print("  overhead per run, fleet − local, pair by pair:")
    print(f"    on the wall time {spread([f.wall_s - lo.wall_s for lo, f in pairs], 'ms', 1e3)}")
    outside = [(f.wall_s - f.own_s) - (lo.wall_s - lo.own_s) for lo, f in pairs]
    print(f"    outside the run's own time {spread(outside, 'ms', 1e3)}")
    print(f"    lead {spread([f.lead_s - lo.lead_s for lo, f in pairs], 'ms', 1e3)}")
    print(f"    tail {spread([f.tail_s - lo.tail_s for lo, f in pairs], 'ms', 1e3)}")
    print(f"    first progress {spread([f.first_s - lo.first_s for lo, f in pairs], 'ms', 1e3)}")
    print("  ratios fleet ÷ local, pair by pair:")
    print(f"    wall {spread([f.wall_s / lo.wall_s for lo, f in pairs], '×')}")
    print(f"    own {spread([f.own_s / lo.own_s for lo, f in pairs], '×')}")
    return pairs[-1][1].result


# -- result transfer ---------------------------------------------------------------------


def with_latencies(result: RunResult, n: int, seed: int) -> RunResult:
    """``result`` with ``n`` latencies (drawn from its own) and their start times."""
    rng = np.random.default_rng(seed)
    latencies = rng.choice(result.arrays["latencies_ns"], n).astype(np.int64)
    starts = np.cumsum(latencies, dtype=np.int64)
    arrays = dict(result.arrays, latencies_ns=latencies, starts_ns=starts)
    return dataclasses.replace(result, arrays=arrays)


def build_frame(base_frame: bytes, n: int, seed: int) -> tuple[bytes, float, float]:
    """On the agent (shipped by value): the large result's frame, the time to build it (all
    of it) and the part of that spent encoding (what ``run_task`` pays for such a result)."""
    t0 = time.perf_counter()
    big = with_latencies(codec.decode_msgpack(base_frame, RunResult), n, seed)
    t1 = time.perf_counter()
    frame = codec.encode_msgpack(big)
    t2 = time.perf_counter()
    return frame, t2 - t0, t2 - t1


def nothing() -> tuple[bytes, float, float]:
    return b"", 0.0, 0.0


def transfer(fleet: Fleet, base: RunResult, n: int, repeats: int) -> None:
    address = fleet.address_of(HOST)
    assert address is not None, f"{HOST} left the fleet"
    client = fleet.client
    base_frame = codec.encode_msgpack(base)
    big = with_latencies(base, n, 0)
    size = len(codec.encode_msgpack(big))
    print(
        f"result transfer: a run with {n:,} latencies and their starts (int64 each), frame "
        f"{size / MiB:.2f} MiB; the agent is sent a {len(base_frame) / 1024:.0f} KiB frame"
    )
    enc, dec, fixed, moved, fdec, build, fenc = [], [], [], [], [], [], []
    for i in range(repeats):
        big = with_latencies(base, n, i)  # a fresh result each time, as the agent builds
        t0 = time.perf_counter()
        frame = codec.encode_msgpack(big)
        t1 = time.perf_counter()
        codec.decode_msgpack(frame, RunResult)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
        t0 = time.perf_counter()
        client.submit(nothing, workers=[address], pure=False).result()
        fixed.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        frame, built_s, encoded_s = client.submit(
            build_frame, base_frame, n, i, workers=[address], pure=False
        ).result()
        t1 = time.perf_counter()
        got = codec.decode_msgpack(frame, RunResult)
        t2 = time.perf_counter()
        assert len(got.arrays["latencies_ns"]) == n
        moved.append(t1 - t0 - built_s)
        fdec.append(t2 - t1)
        build.append(built_s)
        fenc.append(encoded_s)
    local = [e + d for e, d in zip(enc, dec, strict=True)]
    remote = [m + d for m, d in zip(moved, fdec, strict=True)]
    print(f"over {repeats} repeats, median (min … max):")
    print(f"  local: encode {spread(enc, 'ms', 1e3)}, decode {spread(dec, 'ms', 1e3)}")
    print(f"         encode + decode {spread(local, 'ms', 1e3)}")
    print(f"  fleet: an empty task's round trip {spread(fixed, 'ms', 1e3)}")
    print(f"         agent's build (not counted: decode, draw, encode) {spread(build, 'ms', 1e3)}")
    print(f"         submit → frame in hand, less the build {spread(moved, 'ms', 1e3)}")
    print(f"         decode {spread(fdec, 'ms', 1e3)}")
    print(f"         transfer + decode {spread(remote, 'ms', 1e3)}")
    net = [m - f for m, f in zip(moved, fixed, strict=True)]
    print(f"         transfer less the empty round trip {spread(net, 'ms', 1e3)}")
    rates = [size / MiB / x for x in net if x > 0]
    if rates:
        print(f"         i.e. {statistics.median(rates):.0f} MiB/s through Dask over loopback")
    ratios = [r / lo for r, lo in zip(remote, local, strict=True)]
    print(f"  fleet ÷ local (transfer + decode ÷ encode + decode) {spread(ratios, '×')}")
    # a local run's result reaches its queue through the worker pipe (encode + decode, the
    # local figure); a remote run's goes through the agent's worker pipe too, then is encoded
    # again on the agent, moved, and decoded by the client
    extra = [e + r for e, r in zip(fenc, remote, strict=True)]
    print(f"  agent's encode {spread(fenc, 'ms', 1e3)}")
    print(f"  what the fleet adds (agent's encode + transfer + decode) {spread(extra, 'ms', 1e3)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--t-max", type=float, default=1.0)
    ap.add_argument("--transfers", type=int, default=5)
    ap.add_argument("--latencies", type=int, default=1_000_000)
    args = ap.parse_args()
    from wattbench.service.fleet_link import Fleet

    from tests.fleet_fixtures import start_fleet

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wattbench-fleet-") as tmp:
        procs = start_fleet(Path(tmp), (HOST,))
        try:
            # the local runs measure as the agent's do: same fake sysfs, sleeping calls, and
            # no thread variables (the fixture's agents get none either)
            os.environ["WATTBENCH_FAKE_SLEEP"] = "1"
            os.environ["WATTBENCH_SYSFS_ROOT"] = str(Path(tmp) / f"sysfs-{HOST}")
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                os.environ.pop(key, None)
            print(f"fleet up in {time.perf_counter() - began:.1f} s: {procs.address}, agent {HOST}")
            with Fleet.connect(procs.address) as fleet:
                base = dispatch(fleet, args.runs, args.t_max)
                if base is not None:
                    transfer(fleet, base, args.latencies, args.transfers)
        finally:
            procs.stop()
    print(f"all in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
