"""RAPL energy counters through Linux powercap (``<root>/class/powercap/intel-rapl:*``).

Zones are matched by their ``name`` file (package-N, package-N-die-M, dram, core, uncore,
psys), never by their position. ``intel-rapl-mmio:*`` zones repeat the MSR package counters
and are dropped when the MSR zone exists. psys is a platform domain that *contains* the
packages: it is measured and shown, never added to them. AMD Zen CPUs expose the same
``intel-rapl`` zones.

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694). Wattbench never asks
to run as root: the error carries a udev rule and a tmpfiles line that make the counters
readable to one group.
"""

from __future__ import annotations

import logging
import os
import re

from wattbench.backends.sensors.base import Domain
from wattbench.backends.sensors.common import (
    STATUS_ABSENT,
    STATUS_OK,
    STATUS_UNREADABLE,
    DomainStatus,
    Opener,
    SysfsSource,
    ValueFile,
    in_container,
    os_error_reason,
    read_optional,
    read_optional_float,
)
from wattbench.domain.errors import SensorError, SensorPermissionError

log = logging.getLogger(__name__)

RAPL_GROUP = "power"
RAPL_UPDATE_PERIOD_S = 0.001  # the hardware refreshes the counters about every millisecond

# Plausibility bounds for garbage-delta rejection when the zone states no power limit.
DEFAULT_MAX_POWER_W = {
    "cpu-package": 500.0,
    "dram": 200.0,
    "cpu-core": 500.0,
    "uncore": 200.0,
    "platform": 1000.0,
}

RAPL_UDEV_RULE = (
    'SUBSYSTEM=="powercap", ACTION=="add", KERNEL=="intel-rapl:*", '
    f'RUN+="/bin/chgrp {RAPL_GROUP} /sys%p/energy_uj", RUN+="/bin/chmod g+r /sys%p/energy_uj"'
)
RAPL_TMPFILES_LINE = f"z /sys/class/powercap/intel-rapl:*/energy_uj 0440 root {RAPL_GROUP} - -"

RAPL_PERMISSION_FIX = (
    "Make the RAPL counters readable to a group (do not run Wattbench as root). Once, as an "
    "administrator:\n"
    f"  sudo groupadd --system {RAPL_GROUP}; sudo usermod -aG {RAPL_GROUP} $USER"
    "   # then log in again\n"
    "either a udev rule (re-applied whenever the driver loads):\n"
    f"  echo '{RAPL_UDEV_RULE}' | sudo tee /etc/udev/rules.d/70-wattbench-rapl.rules\n"
    "  sudo udevadm control --reload-rules && "
    "sudo udevadm trigger --subsystem-match=powercap --action=add\n"
    "or a systemd-tmpfiles entry (applied at every boot):\n"
    f"  echo '{RAPL_TMPFILES_LINE}' | sudo tee /etc/tmpfiles.d/wattbench-rapl.conf\n"
    "  sudo systemd-tmpfiles --create /etc/tmpfiles.d/wattbench-rapl.conf\n"
    "This re-opens the power side channel of CVE-2020-8694 to that group: add trusted users only."
)

CONTAINER_FIX = (
    "Container runtimes mask /sys/devices/virtual/powercap by default. Measure on the host, or "
    "start the container with `--security-opt systempaths=unconfined` (docker/podman), and make "
    "the host's counters readable (see the sensor diagnosis on the host)."
)

_PACKAGE_RE = re.compile(r"^package-(\d+)(?:-die-(\d+))?$")


def _scope_for(zone_name: str) -> str | None:
    if _PACKAGE_RE.match(zone_name):
        return "cpu-package"
    return {"dram": "dram", "core": "cpu-core", "uncore": "uncore", "psys": "platform"}.get(
        zone_name
    )


def _domain_name(zone_name: str, parent_name: str | None) -> str:
    if parent_name is None:
        return zone_name
    suffix = parent_name.removeprefix("package-")
    return f"{zone_name}-{suffix}"


def _zone_max_power_w(zone_dir: str, scope: str, opener: Opener) -> float:
    """The largest power limit the zone states (PL1/PL2/PL4, in µW), or a generous default."""
    best = 0.0
    try:
        names = os.listdir(zone_dir)
    except OSError:
        names = []
    for fname in names:
        if fname.startswith("constraint_") and fname.endswith(("_power_limit_uw", "_max_power_uw")):
            value = read_optional_float(os.path.join(zone_dir, fname), opener)
            if value is not None and value > best:
                best = value
    default = DEFAULT_MAX_POWER_W.get(scope, 500.0)
    return max(best / 1e6, default)


class RaplSource(SysfsSource):
    """The readable RAPL zones of one sysfs tree. ``statuses`` lists every zone found."""

    name = "rapl"
    device_class = "cpu"
    subdir = ("class", "powercap")

    # -- discovery -------------------------------------------------------------------------
    def _scan(self) -> None:
        if not os.path.isdir(self.base):
            self._absent(
                f"{self.base} does not exist (no powercap driver, not an x86 CPU, or "
                "hidden by a container)",
                CONTAINER_FIX if in_container() else None,
            )
            return
        try:
            entries = sorted(os.listdir(self.base))
        except OSError as exc:
            self._absent(f"cannot list {self.base}: {os_error_reason(exc)}", None)
            return
        msr = [e for e in entries if e.startswith("intel-rapl:")]
        mmio = [e for e in entries if e.startswith("intel-rapl-mmio:")]
        if not msr and not mmio:
            self._absent(f"no intel-rapl zones in {self.base}", None)
            return
        names: dict[str, str] = {}
        hidden = 0
        for entry in msr + mmio:
            zone_dir = os.path.join(self.base, entry)
            if not os.path.exists(zone_dir):  # dangling link: the target is masked
                hidden += 1
                continue
            zname = read_optional(os.path.join(zone_dir, "name"), self._opener)
            if zname:
                names[entry] = zname
        if hidden and not names:
            self._absent(
                f"the powercap zones in {self.base} point to a hidden folder (container masking)",
                CONTAINER_FIX,
            )
            return
        msr_top_names = {names[e] for e in msr if e.count(":") == 1 and e in names}
        for entry in msr + mmio:
            if entry not in names:
                continue
            is_mmio = entry.startswith("intel-rapl-mmio:")
            zname = names[entry]
            parts = entry.split(":")
            parent_name = None
            if len(parts) > 2:
                parent_name = names.get(":".join(parts[:2]))
            if is_mmio and parent_name is None and zname in msr_top_names:
                self.statuses.append(
                    DomainStatus(
                        source="rapl",
                        id=f"rapl-mmio:{zname}",
                        name=zname,
                        device="cpu",
                        status=STATUS_ABSENT,
                        path=os.path.join(self.base, entry),
                        why=f"duplicate of the MSR zone {zname} (intel-rapl-mmio): dropped",
                    )
                )
                continue
            if is_mmio and parent_name is not None:
                continue  # sub-zones of a dropped/duplicate mmio zone
            self._add_zone(entry, zname, parent_name, is_mmio)

    def _add_zone(self, entry: str, zname: str, parent_name: str | None, is_mmio: bool) -> None:
        zone_dir = os.path.join(self.base, entry)
        scope = _scope_for(zname)
        dname = _domain_name(zname, parent_name)
        did = f"rapl:{dname}"
        energy_path = os.path.join(zone_dir, "energy_uj")
        if scope is None:
            self.statuses.append(
                DomainStatus(
                    source="rapl",
                    id=did,
                    name=dname,
                    device="cpu",
                    status=STATUS_ABSENT,
                    path=energy_path,
                    why=f"unknown RAPL zone name {zname!r}: not used",
                )
            )
            return
        try:
            vf = ValueFile(energy_path, self._opener)
            vf.read()
        except PermissionError as exc:
            err = SensorPermissionError(
                f"Cannot read {energy_path}: {os_error_reason(exc)} (since Linux 5.10 RAPL "
                f"counters are root-only).\n{RAPL_PERMISSION_FIX}"
            )
            self.errors.append(err)
            self.statuses.append(
                DomainStatus(
                    source="rapl",
                    id=did,
                    name=dname,
                    device="cpu",
                    status=STATUS_UNREADABLE,
                    path=energy_path,
                    why="permission denied: energy_uj is readable by root only "
                    "(Linux ≥ 5.10, CVE-2020-8694)",
                    fix=RAPL_PERMISSION_FIX,
                )
            )
            return
        except (OSError, ValueError) as exc:
            reason = os_error_reason(exc) if isinstance(exc, OSError) else f"bad value ({exc})"
            self.errors.append(SensorError(f"Cannot read {energy_path}: {reason}."))
            self.statuses.append(
                DomainStatus(
                    source="rapl",
                    id=did,
                    name=dname,
                    device="cpu",
                    status=STATUS_UNREADABLE,
                    path=energy_path,
                    why=reason,
                )
            )
            return
        max_range = read_optional_float(os.path.join(zone_dir, "max_energy_range_uj"), self._opener)
        domain = Domain(
            id=did,
            name=dname,
            device="cpu",
            source=f"rapl.{dname}",
            scope=scope,
            kind="energy",
            unit="uJ",
            update_period_s=RAPL_UPDATE_PERIOD_S,
            max_range=max_range if max_range and max_range > 0 else None,
            max_power_w=_zone_max_power_w(zone_dir, scope, self._opener),
            label=f"{zname} ({entry})",
        )
        note = None
        used = True
        if scope == "platform":
            note = "psys covers the whole platform, packages included: shown, never summed"
            used = False
        elif scope in ("cpu-core", "uncore"):
            note = f"part of package {parent_name}: shown, never summed"
            used = False
        elif is_mmio:
            note = "read through the MMIO interface (no MSR zone of this name)"
        self._add(
            domain,
            vf,
            DomainStatus(
                source="rapl",
                id=did,
                name=dname,
                device="cpu",
                status=STATUS_OK,
                path=energy_path,
                domain=domain,
                note=note,
                used=used,
            ),
        )


def open_rapl(sys_root: str | None = None, *, opener: Opener | None = None) -> RaplSource:
    """A RAPL source with at least one readable zone, else the reason as a SensorError."""
    src = RaplSource(sys_root, opener=opener)
    if src.domains():
        return src
    src.close()
    perm = [e for e in src.errors if isinstance(e, SensorPermissionError)]
    if perm:
        raise perm[0]
    if src.errors:
        raise src.errors[0]
    why = "; ".join(s.why for s in src.statuses if s.why) or "no RAPL zones"
    raise SensorError(f"RAPL is not available: {why}.")
