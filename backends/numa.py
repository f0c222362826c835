"""The machine's NUMA nodes and their CPUs, read from sysfs (``devices/system/node``).

``numa_nodes`` takes the sysfs root as an argument (else $WATTBENCH_SYSFS_ROOT, else /sys), so
a test reads a fake tree it built. A machine without the node folder (a container that hides
it, a system that is not Linux) has no nodes here: the caller treats its CPUs as one node.
"""

from __future__ import annotations

import logging
import os

from wattbench.backends.sensors.common import resolve_sys_root

log = logging.getLogger(__name__)

NODE_DIR = ("devices", "system", "node")


def parse_cpulist(text: str) -> tuple[int, ...]:
    """'0-3,8-11' -> (0, 1, 2, 3, 8, 9, 10, 11); '' -> (). ValueError for anything else."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        first, last = int(lo), int(hi) if sep else int(lo)
        if first < 0 or last < first:
            raise ValueError(f"not a CPU range: {part!r}")
        cpus.extend(range(first, last + 1))
    return tuple(sorted(set(cpus)))


def numa_nodes(sys_root: str | None = None) -> dict[int, tuple[int, ...]]:
    """{node: its CPUs} for every node with CPUs; {} when the nodes cannot be read."""
    base = os.path.join(resolve_sys_root(sys_root), *NODE_DIR)
    try:
        names = os.listdir(base)
    except OSError:
        return {}
    nodes: dict[int, tuple[int, ...]] = {}
    for name in names:
        if not name.startswith("node") or not name[4:].isdigit():
            continue
        try:
            with open(os.path.join(base, name, "cpulist"), encoding="ascii") as f:
                cpus = parse_cpulist(f.read())
        except (OSError, ValueError) as exc:
            log.warning("cannot read the CPUs of NUMA %s: %s", name, exc)
            return {}  # a partial map would pin instances across nodes unknowingly
        if cpus:
            nodes[int(name[4:])] = cpus
    return dict(sorted(nodes.items()))
