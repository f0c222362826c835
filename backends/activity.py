"""What the host is doing, read where the system shows it: per-CPU times from /proc/stat, a
process's threads' run-queue waits from /proc/<pid>/task/*/schedstat, CPU frequencies and
thermal throttle counters under /sys, this process's own CPU time and context switches
(getrusage: every thread, live or ended; its live children's CPU time from /proc), and the
other processes on an NVIDIA GPU (NVML).

Every reader takes its root (``proc``, ``sys_cpu``, ``nvml_module``) so tests feed it a fake
tree, and answers ``(value, None)`` or ``(None, why)``: nothing unreadable becomes 0.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class CpuTicks:
    """One CPU's time in /proc/stat, in clock ticks (USER_HZ)."""

    busy: int  # user + nice + system + irq + softirq + steal (guest time is inside user/nice)
    idle: int  # idle + iowait

    @property
    def total(self) -> int:
        return self.busy + self.idle


@dataclass(frozen=True)
class OwnUsage:
    """This process's CPU time and context switches, all its threads together."""

    cpu_s: float
    voluntary: int
    involuntary: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def parse_proc_stat(text: str) -> dict[int, CpuTicks]:
    """The per-CPU lines (``cpuN user nice system idle iowait irq softirq steal ...``)."""
    out: dict[int, CpuTicks] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].startswith("cpu") or fields[0] == "cpu":
            continue
        try:
            cpu = int(fields[0][3:])
            values = [int(v) for v in fields[1:9]]
        except ValueError:
            continue
        if len(values) < 4:
            continue
        values += [0] * (8 - len(values))  # old kernels end before iowait/irq/steal
        user, nice, system, idle, iowait, irq, softirq, steal = values
        out[cpu] = CpuTicks(busy=user + nice + system + irq + softirq + steal, idle=idle + iowait)
    return out


def clock_ticks_per_s() -> int | None:
    """USER_HZ, the unit of /proc/stat (None where the system does not say)."""
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return None
    return hz if hz > 0 else None


def cpu_ticks(proc: Path = PROC) -> tuple[dict[int, CpuTicks] | None, str | None]:
    text = _read(proc / "stat")
    if text is None:
        return None, f"{proc / 'stat'} is not readable here (not Linux, or /proc is hidden)"
    ticks = parse_proc_stat(text)
    if not ticks:
        return None, f"{proc / 'stat'} lists no per-CPU times"
    return ticks, None


def run_queue_wait_ns(pid: int, proc: Path = PROC) -> tuple[dict[int, int] | None, str | None]:
    """Nanoseconds each thread of ``pid`` has waited on a run queue (schedstat's 2nd field)."""
    task_dir = proc / str(pid) / "task"
    try:
        tids = [p for p in task_dir.iterdir() if p.name.isdigit()]
    except OSError:
        return None, f"{task_dir} is not readable here"
    out: dict[int, int] = {}
    for t in tids:
        fields = (_read(t / "schedstat") or "").split()
        if len(fields) >= 2 and fields[1].isdigit():
            out[int(t.name)] = int(fields[1])
    if not out:
        return None, "the kernel keeps no scheduler statistics (no schedstat for the threads)"
    return out, None


def mean_cur_freq_mhz(
    cpus: Iterable[int], sys_cpu: Path = SYS_CPU
) -> tuple[float | None, str | None]:
    """The mean of the CPUs' current frequencies (cpufreq's scaling_cur_freq, in kHz)."""
    values = []
    for c in cpus:
        text = _read(sys_cpu / f"cpu{c}" / "cpufreq" / "scaling_cur_freq")
        if text is not None and text.strip().isdigit():
            values.append(int(text) / 1000.0)
    if not values:
        return None, "no cpufreq in /sys for these CPUs (a VM or container, or not Linux)"
    return sum(values) / len(values), None


def throttle_counts(
    cpus: Iterable[int], sys_cpu: Path = SYS_CPU
) -> tuple[dict[str, int] | None, str | None]:
    """Thermal throttle counters: ``core<N>`` per CPU and ``package<id>`` per package (each
    CPU's folder repeats its package's counter, so a package is counted once)."""
    out: dict[str, int] = {}
    for c in cpus:
        base = sys_cpu / f"cpu{c}" / "thermal_throttle"
        core = (_read(base / "core_throttle_count") or "").strip()
        if core.isdigit():
            out[f"core{c}"] = int(core)
        package = (_read(base / "package_throttle_count") or "").strip()
        if package.isdigit():
            pkg = (_read(sys_cpu / f"cpu{c}" / "topology" / "physical_package_id") or "").strip()
            out[f"package{pkg or '?'}"] = int(package)
    if not out:
        return None, "no thermal throttle counters in /sys (not an x86 host, a VM or container)"
    return out, None


def own_usage(proc: Path = PROC) -> tuple[OwnUsage | None, str | None]:
    """This process's CPU time (and its live children's: the follower ranks of a data-parallel
    run work for it) and its own context switches."""
    try:
        import resource
    except ImportError:
        return None, "getrusage is not available on this system"
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = ru.ru_utime + ru.ru_stime + children_cpu_s(os.getpid(), proc)
    return OwnUsage(cpu_s, int(ru.ru_nvcsw), int(ru.ru_nivcsw)), None


def children_cpu_s(pid: int, proc: Path = PROC) -> float:
    """The CPU seconds (user + system) of the live children of ``pid`` in /proc/<child>/stat;
    0 where /proc cannot be read (an ended child's time is in getrusage's RUSAGE_CHILDREN)."""
    ticks = 0
    with contextlib.suppress(OSError):
        for stat in proc.glob("[0-9]*/stat"):
            text = _read(stat)
            # the fields after the command, which may hold spaces and parentheses: state,
            # ppid, … utime and stime are the 12th and 13th (proc(5): fields 14 and 15)
            fields = (text or "").rpartition(")")[2].split()
            if len(fields) > 12 and fields[1] == str(pid):
                with contextlib.suppress(ValueError):
                    ticks += int(fields[11]) + int(fields[12])
    hz = clock_ticks_per_s()
    return ticks / hz if hz else 0.0


def affinity() -> tuple[tuple[int, ...] | None, str | None]:
    if not hasattr(os, "sched_getaffinity"):
        return None, "this system does not say which CPUs a process may use"
    return tuple(sorted(os.sched_getaffinity(0))), None


class GpuNeighbours:
    """Other compute processes on one NVIDIA GPU and its utilisation, through NVML.

    Opened before the measurement window (NVML's start-up is slow), read at both ends of it,
    closed after; ``why`` says why nothing can be read (pynvml missing, no driver ...).
    """

    def __init__(self, index: int, nvml_module: Any = None) -> None:
        self.index = index
        self.why: str | None = None
        self.nvml: Any = None
        self.handle: Any = None
        mod = nvml_module
        if mod is None:
            try:
                import pynvml

                mod = pynvml
            except ImportError:
                self.why = "the nvidia-ml-py package (pynvml) is not installed"
                return
        self.error: type[BaseException] = getattr(mod, "NVMLError", Exception)
        try:
            mod.nvmlInit()
        except self.error as exc:
            self.why = f"NVML could not start: {exc}"
            return
        self.nvml = mod
        try:
            self.handle = mod.nvmlDeviceGetHandleByIndex(index)
        except self.error as exc:
            self.why = f"NVML cannot open GPU {index}: {exc}"

    def pids(self) -> tuple[set[int] | None, str | None]:
        if self.handle is None:
            return None, self.why
        try:
            procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception as exc:  # NVMLError, or a pynvml without the call: never stop a run
            return None, f"NVML does not list the GPU's processes: {exc}"
        return {int(p.pid) for p in procs}, None

    def utilization(self) -> tuple[float | None, str | None]:
        if self.handle is None:
            return None, self.why
        try:
            rates = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
        except Exception as exc:  # as in pids()
            return None, f"NVML does not report the GPU's utilisation: {exc}"
        return float(rates.gpu) / 100.0, None

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(self.error):
                self.nvml.nvmlShutdown()
            self.nvml = self.handle = None
