"""Interference detection over a run's measurement window (in the worker process).

``InterferenceProbe.start()`` right before the window and ``stop()`` right after it read the
per-CPU times of /proc/stat for the CPUs the worker may use (its affinity), the worker's own
CPU time and context switches (every thread), its threads' run-queue waits, CPU frequencies,
thermal throttle counters and, on an NVIDIA GPU, the other compute processes and the GPU's
utilisation. The foreign share is the busy time of those CPUs that was not the worker's,
over their core-time in the window::

    foreign = max(0, Σ Δbusy − own CPU time) / Σ Δ(busy + idle)

A run whose foreign share exceeds ``CONTENDED_SHARE`` is flagged ``contended``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wattbench.backends import activity
from wattbench.backends.activity import PROC, SYS_CPU, CpuTicks, OwnUsage
from wattbench.domain import units
from wattbench.domain.interference import CONTENDED_SHARE, Interference, contention_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shares:
    """Shares of the CPUs' core-time over a window (they add up to 1 but for rounding)."""

    foreign: float
    own: float
    idle: float


def cpu_shares(
    before: Mapping[int, CpuTicks],
    after: Mapping[int, CpuTicks],
    cpus: Sequence[int],
    own_cpu_s: float,
    ticks_per_s: float,
) -> tuple[Shares | None, str | None]:
    """The foreign, own and idle shares of ``cpus`` between two /proc/stat readings."""
    present = [c for c in cpus if c in before and c in after]
    if not present:
        return None, "/proc/stat lists none of the CPUs the run used"
    busy = sum(after[c].busy - before[c].busy for c in present)
    idle = sum(after[c].idle - before[c].idle for c in present)
    total = busy + idle
    if busy < 0 or idle < 0 or total <= 0:
        return None, "/proc/stat did not advance over the window (too short, or reset)"
    own_ticks = own_cpu_s * ticks_per_s
    foreign = max(0.0, busy - own_ticks) / total
    return Shares(foreign=foreign, own=min(own_ticks, busy) / total, idle=idle / total), None


def _gpu_index(device: str) -> int | None:
    kind, _, index = device.partition(":")
    if kind != "cuda":
        return None
    return int(index) if index.isdigit() else 0


@dataclass
class _Reading:
    t_ns: int
    ticks: dict[int, CpuTicks] | None
    own: OwnUsage | None
    waits: dict[int, int] | None
    mhz: float | None
    throttle: dict[str, int] | None
    gpu_pids: set[int] | None


class InterferenceProbe:
    """Reads the host's activity at both ends of a window; ``stop()`` gives the figures."""

    def __init__(
        self,
        device: str = "cpu",
        *,
        proc: Path = PROC,
        sys_cpu: Path = SYS_CPU,
        pid: int | None = None,
        nvml_module: Any = None,
    ) -> None:
        self.proc, self.sys_cpu = proc, sys_cpu
        self.pid = os.getpid() if pid is None else pid
        self.unknown: dict[str, str] = {}
        cpus, why = activity.affinity()
        if cpus is None:
            cpus = tuple(sorted((activity.cpu_ticks(proc)[0] or {}).keys()))
            self._why("cpus", why)
        self.cpus: tuple[int, ...] = cpus
        self.device = device
        index = _gpu_index(device)
        self.gpu = None if index is None else activity.GpuNeighbours(index, nvml_module)
        self.begin: _Reading | None = None

    def _why(self, name: str, why: str | None) -> None:
        if why is not None:
            self.unknown.setdefault(name, why)

    def _read(self, *, at_start: bool) -> _Reading:
        """One reading; the CPU times and the clock are read together, as the last thing
        before the window and the first after it (NVML and /sys reads stay outside)."""

        def cpu() -> tuple[int, dict[int, CpuTicks] | None, OwnUsage | None]:
            ticks, why = activity.cpu_ticks(self.proc)
            self._why("foreign_share", why)
            own, why = activity.own_usage()
            self._why("own_share", why)
            return time.perf_counter_ns(), ticks, own

        after = None if at_start else cpu()
        gpu_pids = None
        if self.gpu is not None:
            gpu_pids, why = self.gpu.pids()
            self._why("gpu_other_pids", why)
        waits, why = activity.run_queue_wait_ns(self.pid, self.proc)
        self._why("run_queue_wait_s", why)
        mhz, why = activity.mean_cur_freq_mhz(self.cpus, self.sys_cpu)
        self._why("cpu_mhz", why)
        throttle, why = activity.throttle_counts(self.cpus, self.sys_cpu)
        self._why("throttle_events", why)
        t_ns, ticks, own = cpu() if after is None else after
        return _Reading(t_ns, ticks, own, waits, mhz, throttle, gpu_pids)

    def start(self) -> None:
        self.begin = self._read(at_start=True)

    def close(self) -> None:
        if self.gpu is not None:
            self.gpu.close()

    def stop(self) -> Interference:
        """The figures over [start, stop] (closes the GPU's NVML session)."""
        end = self._read(at_start=False)
        try:
            return self._figures(end)
        finally:
            self.close()

    def _figures(self, end: _Reading) -> Interference:
        b = self.begin
        if b is None:
            raise RuntimeError("InterferenceProbe.stop() without start()")
        own_s = None if b.own is None or end.own is None else end.own.cpu_s - b.own.cpu_s
        shares = None
        if b.ticks is not None and end.ticks is not None:
            hz = activity.clock_ticks_per_s()
            if own_s is None or hz is None:
                self._why("foreign_share", "the worker's own CPU time is not readable here")
            else:
                shares, why = cpu_shares(b.ticks, end.ticks, self.cpus, own_s, hz)
                self._why("foreign_share", why)
        if shares is None:
            for name in ("own_share", "idle_share"):
                self._why(name, self.unknown.get("foreign_share"))
        wait_s = None
        if b.waits is not None and end.waits is not None:
            # a thread started in the window waited only in it; one that ended is not counted
            wait_s = sum(w - b.waits.get(t, 0) for t, w in end.waits.items()) / 1e9
        throttle = None
        if b.throttle is not None and end.throttle is not None:
            throttle = sum(max(0, v - b.throttle.get(k, v)) for k, v in end.throttle.items())
        figures = Interference(
            cpus=self.cpus,
            window_s=(end.t_ns - b.t_ns) / 1e9,
            foreign_share=None if shares is None else shares.foreign,
            own_share=None if shares is None else shares.own,
            idle_share=None if shares is None else shares.idle,
            run_queue_wait_s=wait_s,
            voluntary_switches=_diff(b.own, end.own, "voluntary"),
            involuntary_switches=_diff(b.own, end.own, "involuntary"),
            cpu_mhz_start=b.mhz,
            cpu_mhz_end=end.mhz,
            throttle_events=throttle,
            gpu=None if self.gpu is None else self.device,
            gpu_other_pids=self._gpu_others(b, end),
            gpu_utilization=self._gpu_utilization(),
            threshold=CONTENDED_SHARE,
            contended=shares is not None and shares.foreign > CONTENDED_SHARE,
        )
        return _with_unknown(figures, self.unknown)

    def _gpu_others(self, b: _Reading, end: _Reading) -> tuple[int, ...] | None:
        if self.gpu is None or b.gpu_pids is None or end.gpu_pids is None:
            return None
        return tuple(sorted((b.gpu_pids | end.gpu_pids) - {self.pid}))

    def _gpu_utilization(self) -> float | None:
        if self.gpu is None:
            return None
        value, why = self.gpu.utilization()
        self._why("gpu_utilization", why)
        return value


def _diff(b: OwnUsage | None, e: OwnUsage | None, name: str) -> int | None:
    if b is None or e is None:
        return None
    return int(getattr(e, name)) - int(getattr(b, name))


def _with_unknown(i: Interference, unknown: Mapping[str, str]) -> Interference:
    """Reasons only for the figures that stayed None."""
    reasons: dict[str, str] = {}
    for name, why in unknown.items():
        key = "cpu_mhz_start" if name == "cpu_mhz" else name
        if getattr(i, key, None) is None:
            reasons[name] = why
    if i.voluntary_switches is None:
        reasons.setdefault("voluntary_switches", unknown.get("own_share", "not readable here"))
    return replace(i, unknown=reasons)


def contention_note(i: Interference | None) -> str | None:
    """The sentence a contended run carries in its notes, or None."""
    if i is None or not i.contended:
        return None
    return f"contended: {contention_text(i)} (above {units.percent(i.threshold)} of the core-time)"
