"""What other processes did on a run's cores (and GPU) while it measured, and how to say it.

The worker reads the figures right before and right after its measurement window
(``engine.interference``); a run whose cores were used by others beyond ``CONTENDED_SHARE`` of
their time carries the ``contended`` flag. Every figure that could not be read is None and
``unknown`` says why, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wattbench.domain import units

# Others' share of the run's core-time above which a run is "contended". A quiet CPU reads
# 1–3 % over a measurement window (kernel threads, the supervisor's sampler, the 10 ms ticks
# of /proc/stat), one busy thread sharing a pinned core takes about half of it (BENCHMARKS.md,
# "Interference detection"); a tenth of the core-time lost to others can move a throughput by
# up to a tenth, far beyond the 1 % noise threshold of a comparison.
CONTENDED_SHARE = 0.10


@dataclass(frozen=True)
class Interference:
    """Activity beside the run over its measurement window (worker process, all threads)."""

    cpus: tuple[int, ...] = ()  # the logical CPUs the worker could run on (its affinity)
    window_s: float | None = None  # wall time between the two readings
    # CPU time of other processes (and the kernel, and a hypervisor's steal) on those CPUs
    # ÷ their core-time over the window
    foreign_share: float | None = None
    own_share: float | None = None  # the worker's own CPU time ÷ the same core-time
    idle_share: float | None = None  # idle (and I/O wait) time ÷ the same core-time
    run_queue_wait_s: float | None = None  # time the worker's threads waited for a CPU
    voluntary_switches: int | None = None  # the worker's context switches in the window
    involuntary_switches: int | None = None
    cpu_mhz_start: float | None = None  # mean current frequency of those CPUs
    cpu_mhz_end: float | None = None
    throttle_events: int | None = None  # thermal throttling events counted in the window
    gpu: str | None = None  # the GPU the run used ("cuda:0"), None on the CPU
    gpu_other_pids: tuple[int, ...] | None = None  # other compute processes on it
    gpu_utilization: float | None = None  # the GPU's busy fraction at the window's end
    threshold: float = CONTENDED_SHARE
    contended: bool = False
    unknown: Mapping[str, str] = field(default_factory=dict)  # figure -> why it is None


def cpu_list(cpus: Sequence[int]) -> str:
    """'CPU 1', 'CPUs 0–3', 'CPUs 0–1, 6'."""
    if not cpus:
        return "its CPUs"
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = prev = ordered[0]
    for c in [*ordered[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}–{prev}")
        if c is not None:
            start = prev = c
    return ("CPU " if len(ordered) == 1 else "CPUs ") + ", ".join(parts)


def contention_text(i: Interference) -> str:
    """The foreign share in words: 'others used 23 % of CPUs 0–1 while measuring'."""
    return f"others used {units.percent(i.foreign_share)} of {cpu_list(i.cpus)} while measuring"


def interference_text(i: Interference | None) -> str:
    """One line for a run's details: the foreign share and what else was seen, or why not."""
    if i is None:
        return units.na("not recorded for this run")
    if i.foreign_share is None:
        text = units.na(i.unknown.get("foreign_share", "not readable here"))
    else:
        text = contention_text(i)
        if i.run_queue_wait_s is not None and i.window_s:
            text += (
                f"; its threads waited {units.duration_ns(i.run_queue_wait_s * 1e9)} of "
                f"{units.duration_ns(i.window_s * 1e9)} for a CPU"
            )
    if i.throttle_events:
        text += f"; {units.count(i.throttle_events)} thermal throttling events"
    if i.gpu is not None:
        if i.gpu_other_pids is None:
            text += f"; {i.gpu}: {units.na(i.unknown.get('gpu_other_pids'))}"
        else:
            others = ", ".join(str(p) for p in i.gpu_other_pids) or "none"
            text += f"; other processes on {i.gpu}: {others}"
            if i.gpu_utilization is not None:
                text += f" (busy {units.percent(i.gpu_utilization)})"
    if i.contended:
        text += " (contended)"
    return text


__all__ = [
    "CONTENDED_SHARE",
    "Interference",
    "contention_text",
    "cpu_list",
    "interference_text",
]
