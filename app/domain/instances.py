"""What a multi-instance CPU run measured: N copies of one model, each in its own worker
process pinned to its own cores, measured together under one power measurement.

The run's ``throughput_items_per_s`` is the aggregate (the sum of the instances' throughputs
over the window in which all of them measured) and its ``latency`` pools every instance's calls
in that window; this part holds what only such a run has: each instance's cores, the affinity
its process saw, and its own figures, all over the same common window.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbench.domain import units
from wattbench.domain.interference import cpu_list

# the window in which every instance measured is shorter than half of the longest instance's
# own measurement: the instances did not run together for most of it
FLAG_SHORT_COMMON_WINDOW = "instances_short_common_window"


@dataclass(frozen=True)
class InstanceSummary:
    """One instance of a multi-instance run, over the group's common window."""

    index: int
    cpu_set: tuple[int, ...]  # the cores it was given
    affinity: tuple[int, ...]  # the cores its process was allowed, read inside it
    threads: int  # its intra-op threads
    numa_node: int | None  # the NUMA node of its cores (None: one node, or unknown)
    items: float  # items completed in the common window (calls at its edges counted in part)
    # items ÷ the common window, with its 95 % interval (None: none could be made)
    throughput_items_per_s: float
    throughput_lo: float | None
    throughput_hi: float | None
    # its calls inside the common window: how many, their mean, percentiles (p, ns) and the
    # relative half-width of the mean's interval
    n: int
    mean_ns: float
    percentiles_ns: tuple[tuple[float, float], ...]
    rho: float
    converged: bool  # its own measurement met the stopping rule
    measure_s: float  # its own measurement's length
    flags: tuple[str, ...] = ()

    def percentile_ns(self, p: float) -> float | None:
        for q, value in self.percentiles_ns:
            if abs(q - p) < 1e-9:
                return value
        return None


@dataclass(frozen=True)
class InstancesSummary:
    """The group: the aggregate throughput is the sum of the instances' (same window)."""

    count: int
    threads: int  # per instance
    window_s: float  # the common window: every instance was measuring
    items: float
    # the aggregate (the run's throughput): the sum of the instances', with its interval
    throughput_items_per_s: float
    throughput_lo: float | None
    throughput_hi: float | None
    numa_nodes: int  # NUMA nodes the instances were spread over
    instances: tuple[InstanceSummary, ...] = ()
    note: str = ""

    @property
    def cores(self) -> int:
        return sum(len(i.cpu_set) for i in self.instances)


def instances_lines(s: InstancesSummary) -> list[str]:
    """A multi-instance run's own figures in words (run and show output)."""
    nodes = f" on {s.numa_nodes} NUMA nodes" if s.numa_nodes > 1 else ""
    total = units.estimate(s.throughput_items_per_s, s.throughput_lo, s.throughput_hi)
    lines = [
        f"instances: {s.count} × {s.threads} thread{'s' if s.threads != 1 else ''} "
        f"({s.cores} cores{nodes}), measured together over a common window of "
        f"{units.duration_s(s.window_s)}; aggregate {total} items/s = the sum of the "
        "instances'; one power measurement for the group"
    ]
    for i in s.instances:
        pct = [
            f"p{p * 100:g} {units.duration_ns(value)}"
            for p, value in i.percentiles_ns
            if p in (0.5, 0.99)
        ]
        seen = "" if i.affinity == i.cpu_set else f" (its process saw {cpu_list(i.affinity)})"
        node = f", node {i.numa_node}" if i.numa_node is not None and s.numa_nodes > 1 else ""
        lines.append(
            f"  instance {i.index + 1}: {cpu_list(i.cpu_set)}{node}{seen}: "
            f"{units.estimate(i.throughput_items_per_s, i.throughput_lo, i.throughput_hi)} "
            f"items/s, mean {units.duration_ns(i.mean_ns)}"
            + (f", {', '.join(pct)}" if pct else "")
            + f", {units.rho(i.rho)}"
            + ("" if i.converged else ", not converged")
        )
    if s.note:
        lines.append(f"  {s.note}")
    return lines
