"""Interference detection: what other processes did on a run's cores while it measured.

Two real runs on the fake runtime (it spins the CPU) pinned to one core: one shares the core
with a deliberate CPU hog and must be flagged ``contended`` with a foreign share far above the
threshold; the other runs alone and must not be. The /proc/stat arithmetic, the probe and the
NVML part are checked on fake /proc and /sys trees and a fake pynvml the tests write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from wattbench.backends import activity
from wattbench.domain import codec
from wattbench.domain.interference import CONTENDED_SHARE, Interference, interference_text
from wattbench.domain.result import FLAG_CONTENDED, RunResult, RunStatus, result_document
from wattbench.domain.spec import RunSpec
from wattbench.engine import runner
from wattbench.engine.interference import InterferenceProbe, contention_note, cpu_shares

from tests.fakes.fake_pynvml import FakeGpu, FakeNvml
from tests.specs import QUICK_SETTINGS

linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or not Path("/proc/stat").exists(),
    reason="needs Linux (/proc/stat and CPU affinity)",
)

HZ = 100


def _stat_line(cpu: int, user: int, system: int, idle: int, iowait: int = 0, steal: int = 0) -> str:
    # cpuN user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu{cpu} {user} 0 {system} {idle} {iowait} 0 0 {steal} 0 0"


def _write_stat(proc: Path, lines: Mapping[int, tuple[int, ...]]) -> None:
    total = [sum(v[i] for v in lines.values()) for i in range(3)]
    text = [f"cpu  {total[0]} 0 {total[1]} {total[2]} 0 0 0 0 0 0"]
    text += [_stat_line(c, *v) for c, v in sorted(lines.items())]
    text += ["intr 12345 0 0", "ctxt 999", "btime 1700000000"]
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text("\n".join(text) + "\n")


# -- the /proc/stat arithmetic ---------------------------------------------------------------


def test_parse_proc_stat_counts_steal_as_busy_and_iowait_as_idle(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _write_stat(proc, {0: (100, 20, 500), 3: (7, 3, 40)})
    (proc / "stat").write_text(
        (proc / "stat").read_text()
        + "cpu5 10 1 2 30 4 5 6 7 99 99\n"  # guest time is inside user: not counted twice
        + "cpu6 1 2 3 4\n"  # an old kernel: no iowait, irq or steal columns
        + "cpuX 1 2 3 4\n"
    )
    ticks, why = activity.cpu_ticks(proc)
    assert why is None and ticks is not None
    assert set(ticks) == {0, 3, 5, 6}  # the "cpu" total line and garbage are left out
    assert ticks[0] == activity.CpuTicks(busy=120, idle=500)
    assert ticks[5] == activity.CpuTicks(busy=10 + 1 + 2 + 5 + 6 + 7, idle=30 + 4)
    assert ticks[6] == activity.CpuTicks(busy=1 + 2 + 3, idle=4)


def test_foreign_share_is_the_busy_time_that_was_not_the_workers(tmp_path: Path) -> None:
    before = activity.parse_proc_stat(
        _stat_line(0, 1000, 100, 5000) + "\n" + _stat_line(1, 0, 0, 0)
    )
    # over 2 s on CPU 0: 150 ticks busy (the worker's 0.9 s, others' 0.6 s), 50 idle;
    # CPU 1 (not the run's) was busy all along and must not count
    after = activity.parse_proc_stat(
        _stat_line(0, 1140, 110, 5050) + "\n" + _stat_line(1, 200, 0, 0)
    )
    shares, why = cpu_shares(before, after, [0], own_cpu_s=0.9, ticks_per_s=HZ)
    assert why is None and shares is not None
    assert shares.foreign == pytest.approx(60 / 200)
    assert shares.own == pytest.approx(90 / 200)
    assert shares.idle == pytest.approx(50 / 200)
    # the same window seen over both CPUs: CPU 1's 200 busy ticks were others' too
    both, _ = cpu_shares(before, after, [0, 1], own_cpu_s=0.9, ticks_per_s=HZ)
    assert both is not None and both.foreign == pytest.approx((60 + 200) / 400)


def test_steal_is_foreign_and_tick_rounding_never_makes_a_negative_share() -> None:
    before = activity.parse_proc_stat(_stat_line(2, 0, 0, 0, steal=0))
    after = activity.parse_proc_stat(_stat_line(2, 80, 0, 0, steal=20))
    shares, _ = cpu_shares(before, after, [2], own_cpu_s=0.8, ticks_per_s=HZ)
    assert shares is not None and shares.foreign == pytest.approx(0.2)  # the hypervisor's
    # the worker's precise CPU time a little above the ticks /proc/stat counted
    shares, _ = cpu_shares(before, after, [2], own_cpu_s=1.02, ticks_per_s=HZ)
    assert shares is not None and shares.foreign == 0.0 and shares.own == pytest.approx(1.0)


def test_a_window_that_cannot_be_read_is_unknown_with_a_reason(tmp_path: Path) -> None:
    same = activity.parse_proc_stat(_stat_line(0, 5, 5, 5))
    shares, why = cpu_shares(same, same, [0], own_cpu_s=0.0, ticks_per_s=HZ)
    assert shares is None and why and "did not advance" in why
    shares, why = cpu_shares(same, same, [7], own_cpu_s=0.0, ticks_per_s=HZ)
    assert shares is None and why and "none of the CPUs" in why
    ticks, why = activity.cpu_ticks(tmp_path / "no-proc")
    assert ticks is None and why and "not readable" in why


# -- the probe on fake /proc and /sys trees --------------------------------------------------


def _fake_sys(sys_cpu: Path, cpus: tuple[int, ...], khz: int, core: int, package: int) -> None:
    for c in cpus:
        base = sys_cpu / f"cpu{c}"
        (base / "cpufreq").mkdir(parents=True, exist_ok=True)
        (base / "thermal_throttle").mkdir(parents=True, exist_ok=True)
        (base / "topology").mkdir(parents=True, exist_ok=True)
        (base / "cpufreq" / "scaling_cur_freq").write_text(f"{khz}\n")
        (base / "thermal_throttle" / "core_throttle_count").write_text(f"{core}\n")
        (base / "thermal_throttle" / "package_throttle_count").write_text(f"{package}\n")
        (base / "topology" / "physical_package_id").write_text("0\n")


def _fake_tasks(proc: Path, pid: int, waits_ns: Mapping[int, int]) -> None:
    for tid, wait in waits_ns.items():
        d = proc / str(pid) / "task" / str(tid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "schedstat").write_text(f"123456789 {wait} 42\n")


@linux_only
def test_the_probe_reads_a_fake_tree_and_flags_a_contended_window(tmp_path: Path) -> None:
    proc, sys_cpu = tmp_path / "proc", tmp_path / "sys" / "devices" / "system" / "cpu"
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    pid = 4242
    _write_stat(proc, {c: (1000, 100, 5000) for c in cpus})
    _fake_sys(sys_cpu, cpus, khz=3_000_000, core=5, package=2)
    _fake_tasks(proc, pid, {pid: 1_000_000, pid + 1: 0})
    probe = InterferenceProbe("cpu", proc=proc, sys_cpu=sys_cpu, pid=pid)
    probe.start()
    # others kept every CPU 60 % busy for 1 s (60 of 100 ticks); this test process is idle
    _write_stat(proc, {c: (1060, 100, 5040) for c in cpus})
    _fake_sys(sys_cpu, cpus, khz=2_000_000, core=7, package=3)
    _fake_tasks(proc, pid, {pid: 51_000_000, pid + 1: 0, pid + 2: 25_000_000})
    i = probe.stop()
    assert i.cpus == cpus
    assert i.foreign_share is not None and 0.5 < i.foreign_share <= 0.6
    assert i.contended and i.threshold == CONTENDED_SHARE
    assert i.run_queue_wait_s == pytest.approx(0.075)  # 50 ms + a new thread's 25 ms
    assert (i.cpu_mhz_start, i.cpu_mhz_end) == (3000.0, 2000.0)
    assert i.throttle_events == 2 * len(cpus) + 1  # the package counted once
    assert i.voluntary_switches is not None and i.involuntary_switches is not None
    assert i.gpu is None and i.gpu_other_pids is None and not i.unknown
    note = contention_note(i)
    assert note and "others used" in note and "contended" in interference_text(i)


def test_unreadable_figures_are_none_with_their_reason_never_zero(tmp_path: Path) -> None:
    probe = InterferenceProbe("cpu", proc=tmp_path / "proc", sys_cpu=tmp_path / "sys", pid=1)
    probe.start()
    i = probe.stop()
    for name in ("foreign_share", "own_share", "idle_share", "run_queue_wait_s", "cpu_mhz"):
        value = getattr(i, "cpu_mhz_start" if name == "cpu_mhz" else name)
        assert value is None and i.unknown[name], name
    assert i.throttle_events is None and i.unknown["throttle_events"]
    assert not i.contended and contention_note(i) is None
    assert interference_text(i).startswith("n/a — ")


class _NvmlWithProcesses(FakeNvml):
    def __init__(self, pids: list[int], **kw: Any) -> None:
        super().__init__([FakeGpu()], **kw)
        self.pids = pids

    def nvmlDeviceGetComputeRunningProcesses(self, h: Any) -> list[Any]:
        self._gpu(h)
        return [type("Proc", (), {"pid": p, "usedGpuMemory": 1 << 20})() for p in self.pids]


def test_on_a_gpu_the_other_processes_and_utilisation_are_recorded(tmp_path: Path) -> None:
    nvml = _NvmlWithProcesses([os.getpid(), 777, 31337])
    probe = InterferenceProbe("cuda:0", nvml_module=nvml)
    probe.start()
    nvml.pids = [os.getpid(), 777]  # one neighbour left during the window: still seen
    i = probe.stop()
    assert i.gpu == "cuda:0" and i.gpu_other_pids == (777, 31337)
    assert i.gpu_utilization == pytest.approx(0.97)
    assert not nvml.initialized  # NVML's session is closed after the window
    assert "777, 31337" in interference_text(i)
    missing = InterferenceProbe("cuda:0", nvml_module=FakeNvml(library_missing=True))
    missing.start()
    j = missing.stop()
    assert j.gpu_other_pids is None and "NVML" in j.unknown["gpu_other_pids"]


# -- stored with the run -----------------------------------------------------------------------


def test_the_figures_survive_the_store_and_older_documents_still_read() -> None:
    i = Interference(cpus=(0, 1), window_s=1.5, foreign_share=0.23, contended=True)
    r = RunResult(spec=RunSpec(model="builtin:mlp-tiny"), status=RunStatus.DONE, interference=i)
    doc = result_document(r)
    assert codec.from_document(doc, RunResult).interference == i
    assert codec.decode_msgpack(codec.encode_msgpack(r), RunResult).interference == i
    del doc["interference"]  # a run stored before the field existed
    assert codec.from_document(doc, RunResult).interference is None
    assert "others used 23 % of CPUs 0–1 while measuring (contended)" in interference_text(i)
    assert interference_text(None).startswith("n/a — ")


# -- real runs pinned to one core, with and without a CPU hog ------------------------------


QUICK: dict[str, Any] = dict(model="builtin:mlp-tiny", runtime="fake", **QUICK_SETTINGS)
ALLOWED_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
QUIET_WAIT_S = 12.0  # how long the uncontended test waits for a quiet core
HOG = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def _busy_shares(seconds: float) -> dict[int, float]:
    """How busy each CPU is while this test sleeps (from /proc/stat)."""
    before, _ = activity.cpu_ticks()
    time.sleep(seconds)
    after, _ = activity.cpu_ticks()
    assert before is not None and after is not None
    return {
        c: (a.busy - before[c].busy) / max(1, a.total - before[c].total)
        for c, a in after.items()
        if c in before
    }


@pytest.fixture
def quiet_core() -> Iterator[int]:
    """The quietest CPU this test may use, the test process pinned to it (its run workers
    inherit the affinity), restored afterwards."""
    allowed = sorted(os.sched_getaffinity(0))
    busy = _busy_shares(0.5)
    core = min(allowed, key=lambda c: busy[c])
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, allowed)


def _run() -> RunResult:
    r = runner.run_one(RunSpec(**QUICK))
    assert r.status is RunStatus.DONE, r.reason
    assert r.interference is not None
    return r


@linux_only
def test_a_run_sharing_its_core_with_a_cpu_hog_is_contended(
    fake_plugins: Path, quiet_core: int
) -> None:
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(quiet_core)])
    try:
        r = _run()
    finally:
        hog.kill()
        hog.wait()
    i = r.interference
    assert i is not None and i.cpus == (quiet_core,)
    print(f"with a hog on CPU {quiet_core}: {interference_text(i)}")
    # the scheduler shares the core about evenly: the hog's half is far above the threshold
    assert i.foreign_share is not None and i.foreign_share > 3 * CONTENDED_SHARE
    assert i.contended and FLAG_CONTENDED in r.flags
    assert "others used" in r.notes
    assert i.involuntary_switches is not None and i.involuntary_switches > 0


@linux_only
def test_the_same_run_alone_on_its_core_is_not_contended(
    fake_plugins: Path, quiet_core: int
) -> None:
    """On a shared host another program may hold the core before the run or take it while
    the run measures: then its use is rightly counted, and the test waits for a quiet moment
    (up to QUIET_WAIT_S) and tries again; it is skipped when none comes."""
    quiet = CONTENDED_SHARE / 2
    deadline = time.monotonic() + QUIET_WAIT_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        busy = _busy_shares(0.5)
        core = min(ALLOWED_CPUS, key=lambda c: busy[c])
        if busy[core] > quiet:
            continue
        os.sched_setaffinity(0, {core})  # the fixture restores the whole set
        r = _run()
        i = r.interference
        assert i is not None and i.cpus == (core,)
        print(f"alone on CPU {core}: {interference_text(i)}")
        after = _busy_shares(0.5)[core]
        if i.contended and after > quiet:
            seen.append(f"{after:.0%} busy after a contended run")
            continue
        assert i.foreign_share is not None and i.foreign_share < CONTENDED_SHARE
        assert not i.contended and FLAG_CONTENDED not in r.flags
        assert contention_note(i) is None and "others used" not in r.notes
        return
    pytest.skip(
        f"other processes kept every CPU over {quiet:.0%} busy for {QUIET_WAIT_S:g} s"
        f"{' (' + ', '.join(seen) + ')' if seen else ''}: this host has no quiet core to show "
        "an uncontended run on"
    )
