"""A fake sysfs tree under a temporary folder: real files the real readers open.

``FakeSysfs`` writes ``class/powercap/intel-rapl:*`` zones and ``class/hwmon/hwmon*`` chips the
way the kernel lays them out. Unreadable files are made mode 000; because the tests may run as
root (who can read anything), ``enforcing_opener`` applies the permission bits the way the
kernel applies them to an ordinary user, and is installed as the readers' default opener.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_MAX_RANGE_UJ = 262143328850


def enforcing_opener(path: str, flags: int) -> int:
    """os.open, refusing files an ordinary (non-owner, non-group) user may not read."""
    st = os.stat(path)
    if not st.st_mode & stat.S_IROTH:
        raise PermissionError(errno.EACCES, "Permission denied", path)
    return os.open(path, flags)


class FakeSysfs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.powercap = root / "class" / "powercap"
        self.hwmon = root / "class" / "hwmon"

    def _write(self, path: Path, value: object, *, readable: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_text(f"{value}\n")
        path.chmod(0o644 if readable else 0o000)
        return path

    def rapl_zone(
        self,
        entry: str,
        name: str,
        energy_uj: float = 1_000_000,
        *,
        max_range_uj: float | None = DEFAULT_MAX_RANGE_UJ,
        power_limit_uw: float | None = 125_000_000,
        readable: bool = True,
    ) -> Path:
        """A zone such as ``intel-rapl:0`` (name package-0) or ``intel-rapl:0:1`` (dram)."""
        zone = self.powercap / entry
        self._write(zone / "name", name)
        self._write(zone / "energy_uj", int(energy_uj), readable=readable)
        if max_range_uj is not None:
            self._write(zone / "max_energy_range_uj", int(max_range_uj))
        if power_limit_uw is not None:
            self._write(zone / "constraint_0_power_limit_uw", int(power_limit_uw))
        return zone

    def set_energy(self, entry: str, energy_uj: float) -> None:
        """Rewrite the counter in place (same inode, no truncation), as sysfs would show it:
        readers holding the file open see the new value and never a half-written one."""
        _rewrite(self.powercap / entry / "energy_uj", energy_uj)

    def hwmon_chip(
        self,
        hw: str,
        chip: str,
        files: dict[str, float],
        *,
        labels: dict[str, str] | None = None,
        unreadable: tuple[str, ...] = (),
        update_interval_ms: float | None = None,
    ) -> Path:
        """A chip ``hwmonN`` named ``chip`` with e.g. {"power1_input": 12_500_000}."""
        d = self.hwmon / hw
        self._write(d / "name", chip)
        for fname, value in files.items():
            self._write(d / fname, int(value), readable=fname not in unreadable)
        for key, label in (labels or {}).items():
            self._write(d / f"{key}_label", label)
        if update_interval_ms is not None:
            self._write(d / "update_interval", int(update_interval_ms))
        return d

    def set_hwmon(self, hw: str, fname: str, value: float) -> None:
        _rewrite(self.hwmon / hw / fname, value)

    def numa_node(self, node: int, cpulist: str, *, readable: bool = True) -> Path:
        """``devices/system/node/nodeN/cpulist``, e.g. ``numa_node(1, "4-7,12-15")``."""
        return self._write(
            self.root / "devices" / "system" / "node" / f"node{node}" / "cpulist",
            cpulist,
            readable=readable,
        )


@contextmanager
def live_counters(fs: FakeSysfs, watts: dict[str, float]) -> Iterator[None]:
    """RAPL zones (entry -> constant power in W) whose counters a thread rewrites every 5 ms
    from the time since start, so they always read power × elapsed time however late it runs."""
    stop = threading.Event()
    t_start = time.perf_counter()

    def write() -> None:
        while not stop.is_set():
            dt = time.perf_counter() - t_start
            for entry, power in watts.items():
                fs.set_energy(entry, 1e9 + power * dt * 1e6)
            time.sleep(0.005)

    th = threading.Thread(target=write, name="fake-rapl-writer", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()


def _rewrite(path: Path, value: float) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, f"{int(value):<30d}\n".encode(), 0)
    finally:
        os.close(fd)


def two_socket_tree(root: Path, *, readable: bool = True) -> FakeSysfs:
    """Two packages with DRAM, a core sub-zone, psys, and an mmio duplicate of package-0."""
    fs = FakeSysfs(root)
    fs.rapl_zone("intel-rapl:0", "package-0", 10_000_000, readable=readable)
    fs.rapl_zone("intel-rapl:0:0", "core", 5_000_000, power_limit_uw=None, readable=readable)
    fs.rapl_zone("intel-rapl:0:1", "dram", 2_000_000, power_limit_uw=None, readable=readable)
    fs.rapl_zone("intel-rapl:1", "package-1", 20_000_000, readable=readable)
    fs.rapl_zone("intel-rapl:1:0", "dram", 3_000_000, power_limit_uw=None, readable=readable)
    fs.rapl_zone("intel-rapl:2", "psys", 90_000_000, readable=readable)
    fs.rapl_zone("intel-rapl-mmio:0", "package-0", 10_000_000, readable=readable)
    return fs
