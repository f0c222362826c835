"""hwmon power and energy sensors (``<root>/class/hwmon/hwmon*/``).

``energy*_input`` is a cumulative counter in µJ; ``power*_input`` (instantaneous) and
``power*_average`` (averaged) are in µW and are integrated by the sampler. Each sensor keeps its
chip ``name`` and ``*_label``. ``-ENXIO`` on read means the domain is switched off.

What a sensor measures is inferred from its chip name and label (small table below); a sensor
that cannot be placed gets scope "other" and is shown but never summed, so that nothing is
counted twice.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Sequence

from wattbench.backends.sensors.base import Domain
from wattbench.backends.sensors.common import (
    STATUS_ABSENT,
    STATUS_OK,
    STATUS_UNREADABLE,
    DomainStatus,
    SysfsSource,
    ValueFile,
    os_error_reason,
    read_optional,
    read_optional_float,
)
from wattbench.domain.errors import SensorPermissionError

log = logging.getLogger(__name__)

MEASURED_CPU_SCOPES = ("cpu-package", "dram", "soc")  # what RAPL measures better when present
DEFAULT_UPDATE_PERIOD_S = 0.1
MAX_POWER_W = 2000.0  # plausibility bound for garbage rejection (hwmon states no limit)
HWMON_GROUP = "power"
_HWMON_TMPFILES = [
    f"z /sys/class/hwmon/hwmon*/{pattern} 0440 root {HWMON_GROUP} - -"
    for pattern in ("energy*_input", "power*_input", "power*_average")
]
HWMON_PERMISSION_FIX = (
    "Make the hwmon energy/power files readable to a group (do not run Wattbench as root). "
    "Once, as an administrator:\n"
    f"  sudo groupadd --system {HWMON_GROUP}; sudo usermod -aG {HWMON_GROUP} $USER"
    "   # then log in again\n"
    "  printf '%s\\n' "
    + " ".join(f"'{line}'" for line in _HWMON_TMPFILES)
    + " | sudo tee /etc/tmpfiles.d/wattbench-hwmon.conf\n"
    "  sudo systemd-tmpfiles --create /etc/tmpfiles.d/wattbench-hwmon.conf"
    "   # again after the sensor driver reloads"
)

_FILE_RE = re.compile(r"^(energy|power)(\d+)_(input|average)$")
CPU_ENERGY_CHIPS = ("amd_energy", "zenpower", "zenergy")
ADDITIVE_SCOPES = ("cpu-package", "dram", "soc", "gpu-board")


def classify(chip: str, label: str | None) -> tuple[str, str]:
    """(device, scope) of a hwmon sensor from its chip name and label."""
    lab = (label or "").lower()
    if chip in CPU_ENERGY_CHIPS:
        if "socket" in lab or "package" in lab or lab.startswith("esocket"):
            return "cpu", "cpu-package"
        return "cpu", "cpu-core"
    if chip == "amdgpu":
        return "amdgpu", "gpu-board"
    if chip in ("power_meter", "acpi_power_meter"):
        return "node", "node"
    if re.search(r"\b(dram|ddr|mem(ory)?)\b", lab):
        return "cpu", "dram"
    if re.search(r"\b(cpu|soc|package|socket)\b", lab):
        return "cpu", "soc"
    return "node", "other"


class HwmonSource(SysfsSource):
    """Readable hwmon energy/power sensors of one sysfs tree; ``statuses`` lists all found."""

    name = "hwmon"
    subdir = ("class", "hwmon")
    precedence = 20  # after RAPL and amdsmi, whose domains some hwmon chips repeat

    def repeats(self, status: DomainStatus, earlier: Sequence[DomainStatus]) -> str | None:
        """CPU sensors that repeat RAPL's packages, and the amdgpu sensor of a card amdsmi
        reads, are shown but never summed."""
        if status.status != STATUS_OK or status.domain is None:
            return None
        readable = {
            (st.source, st.domain.scope)
            for st in earlier
            if st.status == STATUS_OK and st.domain is not None
        }
        if (
            status.device == "cpu"
            and status.domain.scope in MEASURED_CPU_SCOPES
            and ("rapl", "cpu-package") in readable
        ):
            return "repeats the RAPL counters: shown, not summed"
        if status.device == "amdgpu" and any(source == "amdsmi" for source, _ in readable):
            return "amdsmi reads this card: shown, not summed"
        return None

    def _scan(self) -> None:
        if not os.path.isdir(self.base):
            self._absent(f"{self.base} does not exist")
            return
        try:
            chips = sorted(
                (e for e in os.listdir(self.base) if e.startswith("hwmon")),
                key=lambda e: (len(e), e),
            )
        except OSError as exc:
            self._absent(f"cannot list {self.base}: {os_error_reason(exc)}")
            return
        found = 0
        for hw in chips:
            found += self._scan_chip(hw)
        if not found:
            self._absent("no hwmon chip exposes energy or power sensors")

    def _scan_chip(self, hw: str) -> int:
        chip_dir = os.path.join(self.base, hw)
        try:
            files = sorted(os.listdir(chip_dir))
        except OSError:
            return 0
        chip = read_optional(os.path.join(chip_dir, "name"), self._opener) or hw
        interval_ms = read_optional_float(os.path.join(chip_dir, "update_interval"), self._opener)
        sensors: dict[tuple[str, str], str] = {}  # (kind, index) -> file name
        for fname in files:
            m = _FILE_RE.match(fname)
            if not m:
                continue
            kind, idx, flavour = m.groups()
            key = (kind, idx)
            # prefer the instantaneous power*_input over power*_average for the same index
            if key not in sensors or flavour == "input":
                sensors[key] = fname
        for (kind, idx), fname in sorted(sensors.items()):
            self._add_sensor(hw, chip, chip_dir, kind, idx, fname, interval_ms)
        return len(sensors)

    def _add_sensor(
        self,
        hw: str,
        chip: str,
        chip_dir: str,
        kind: str,
        idx: str,
        fname: str,
        interval_ms: float | None,
    ) -> None:
        path = os.path.join(chip_dir, fname)
        label = read_optional(os.path.join(chip_dir, f"{kind}{idx}_label"), self._opener)
        device, scope = classify(chip, label)
        dname = f"{kind}{idx}"
        did = f"hwmon:{hw}/{dname}"
        try:
            vf = ValueFile(path, self._opener)
            vf.read()
        except PermissionError as exc:
            self.errors.append(
                SensorPermissionError(
                    f"Cannot read {path}: {os_error_reason(exc)}.\n{HWMON_PERMISSION_FIX}"
                )
            )
            self.statuses.append(
                DomainStatus(
                    source="hwmon",
                    id=did,
                    name=dname,
                    device=device,
                    status=STATUS_UNREADABLE,
                    path=path,
                    why="permission denied",
                    fix=HWMON_PERMISSION_FIX,
                )
            )
            return
        except OSError as exc:
            status = STATUS_ABSENT if exc.errno == errno.ENXIO else STATUS_UNREADABLE
            self.statuses.append(
                DomainStatus(
                    source="hwmon",
                    id=did,
                    name=dname,
                    device=device,
                    status=status,
                    path=path,
                    why=os_error_reason(exc),
                )
            )
            return
        except ValueError as exc:
            self.statuses.append(
                DomainStatus(
                    source="hwmon",
                    id=did,
                    name=dname,
                    device=device,
                    status=STATUS_UNREADABLE,
                    path=path,
                    why=f"bad value ({exc})",
                )
            )
            return
        period_s = DEFAULT_UPDATE_PERIOD_S
        if fname.endswith("_average"):
            avg_ms = read_optional_float(
                os.path.join(chip_dir, f"power{idx}_average_interval"), self._opener
            )
            if avg_ms and avg_ms > 0:
                period_s = avg_ms / 1000.0
        if interval_ms and interval_ms > 0:
            period_s = interval_ms / 1000.0
        integrated = "∫" if kind == "power" else ""
        domain = Domain(
            id=did,
            name=dname,
            device=device,
            source=f"hwmon.{chip}.{fname}{integrated}",
            scope=scope,
            kind="energy" if kind == "energy" else "power",
            unit="uJ" if kind == "energy" else "uW",
            update_period_s=period_s,
            max_range=None,
            max_power_w=MAX_POWER_W,
            label=label or chip,
        )
        used = scope in ADDITIVE_SCOPES
        note = None if used else f"scope {scope!r}: shown, never summed"
        self._add(
            domain,
            vf,
            DomainStatus(
                source="hwmon",
                id=did,
                name=dname,
                device=device,
                status=STATUS_OK,
                path=path,
                domain=domain,
                used=used,
                note=note,
            ),
        )
