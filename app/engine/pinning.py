"""Core sets for a multi-instance CPU run, and what a worker does with its own.

``plan_core_sets`` splits the CPUs this process may use (``os.sched_getaffinity(0)``) into
disjoint sets of ``threads`` CPUs, one per instance, each inside one NUMA node when the nodes
allow it, the instances spread over the nodes in turn (instance 0 on the first node, 1 on the
second, ...), as CPU vendors pin one group of instances per socket. CPUs are taken in the
order the kernel numbers them. In the worker, ``apply_cpu_set`` pins the process before the
model loads (the runtime's thread pool, made at load, inherits it), and a ``GroupLink``
starts the instances measuring together and stops them together.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattbench.backends.numa import numa_nodes
from wattbench.domain.errors import BadInputError, UnsupportedOptionError, WattbenchError
from wattbench.domain.interference import cpu_list
from wattbench.domain.spec import RunSpec


@dataclass(frozen=True)
class CoreSet:
    cpus: tuple[int, ...]
    node: int | None  # its NUMA node (None: the machine shows no nodes, or the set spans them)


@dataclass(frozen=True)
class CorePlan:
    sets: tuple[CoreSet, ...]
    nodes: int  # NUMA nodes the sets lie on
    note: str = ""  # why the sets could not each stay inside one node


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on."""
    if not hasattr(os, "sched_getaffinity"):
        raise UnsupportedOptionError(
            "Pinning instances to CPU cores needs Linux (os.sched_getaffinity); run one "
            "instance on this system.",
            field="instances",
        )
    return tuple(sorted(os.sched_getaffinity(0)))


def plan_core_sets(
    available: Collection[int],
    nodes: Mapping[int, Sequence[int]],
    instances: int,
    threads: int,
) -> CorePlan:
    """``instances`` disjoint sets of ``threads`` CPUs from ``available``; BadInputError
    (field ``instances``) when there are not enough CPUs."""
    cpus = sorted(set(available))
    need = instances * threads
    if need > len(cpus):
        raise BadInputError(
            f"{instances} instances × {threads} thread{'s' if threads != 1 else ''} need "
            f"{need} CPU cores, but this process "
            f"may use {len(cpus)} ({cpu_list(cpus)}): use fewer instances or threads.",
            field="instances",
        )
    groups: list[tuple[int | None, list[int]]] = []
    placed: set[int] = set()
    for node, node_cpus in sorted(nodes.items()):
        mine = [c for c in sorted(set(node_cpus)) if c in available and c not in placed]
        placed.update(mine)
        if mine:
            groups.append((node, mine))
    rest = [c for c in cpus if c not in placed]
    if rest:  # CPUs no node lists (or no nodes at all): one group of their own
        groups.append((None, rest))
    if sum(len(g) // threads for _, g in groups) < instances:
        sets = [
            CoreSet(tuple(cpus[i * threads : (i + 1) * threads]), None) for i in range(instances)
        ]
        note = (
            f"the NUMA nodes' CPUs do not split into {instances} sets of {threads} inside one "
            "node: some instances span nodes"
        )
        return CorePlan(tuple(sets), len(groups), note)
    taken = [0] * len(groups)
    out: list[CoreSet] = []
    while len(out) < instances:
        for g, (group_node, group) in enumerate(groups):
            if len(out) == instances:
                break
            start = taken[g]
            if start + threads <= len(group):
                out.append(CoreSet(tuple(group[start : start + threads]), group_node))
                taken[g] += threads
    return CorePlan(tuple(out), len({s.node for s in out if s.node is not None}) or 1)


def core_plan(instances: int, threads: int, sys_root: str | None = None) -> CorePlan:
    """The core sets of this process's CPUs on this machine's NUMA nodes."""
    return plan_core_sets(available_cpus(), numa_nodes(sys_root), instances, threads)


def instance_threads(instances: int, threads: int | None) -> int:
    """Threads per instance: as asked, else this process's CPUs shared out evenly."""
    if threads is not None:
        return threads
    return max(1, len(available_cpus()) // instances)


def check_instances(spec: RunSpec, sys_root: str | None = None) -> CorePlan | None:
    """The core sets of a multi-instance spec on this machine (None for one instance);
    BadInputError (field ``instances``) when N × T exceeds the CPUs this process may use."""
    if spec.instances <= 1:
        return None
    return core_plan(spec.instances, instance_threads(spec.instances, spec.threads), sys_root)


def apply_cpu_set(cpus: Sequence[int]) -> None:
    """Pin this process to ``cpus`` (nothing for an empty set); BadInputError when it
    cannot be."""
    if not cpus:
        return
    if not hasattr(os, "sched_setaffinity"):
        raise UnsupportedOptionError(
            "Pinning a worker to CPU cores needs Linux (os.sched_setaffinity).", field="cpu_set"
        )
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise BadInputError(
            f"The worker cannot be pinned to {cpu_list(cpus)}: {exc.strerror or exc}. Check "
            "that these CPUs are online and allowed to this process (taskset, cgroups).",
            field="cpu_set",
        ) from exc


class GroupLink:
    """What ties the instances of a group together, passed to each worker when it is spawned:
    a start line (every instance starts measuring together) and a common stop (an instance
    whose stopping rule is met measures on until every instance's is, or T_max, so that all
    of them measure over the same window)."""

    def __init__(self, instances: int, context: Any = None) -> None:
        ctx = context or multiprocessing.get_context("spawn")
        self.instances = instances
        self.start = ctx.Barrier(instances)
        self.stopped = ctx.Value("i", 0)  # instances whose stopping rule is met
        self.all_stopped = ctx.Event()
        self._counted = False  # this process's instance is counted in ``stopped``

    def wait_start(self) -> None:
        """Wait until every instance is ready to measure; WattbenchError when another one
        failed first (the group broke the start line)."""
        try:
            self.start.wait()
        except threading.BrokenBarrierError:
            raise WattbenchError(
                "another instance of this multi-instance run stopped before measuring; its "
                "own reason says why"
            ) from None

    def may_stop(self) -> bool:
        """This instance's stopping rule is met: count it (once); True once every instance's
        is (then all of them stop)."""
        if not self._counted:
            self._counted = True
            with self.stopped.get_lock():
                self.stopped.value += 1
                if self.stopped.value >= self.instances:
                    self.all_stopped.set()
        return bool(self.all_stopped.is_set())

    def abort(self) -> None:
        """Release every instance: the ones at the start line fail, the measuring ones stop."""
        self.start.abort()
        self.all_stopped.set()
