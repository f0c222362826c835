"""Sensor diagnosis: every device, every power source, its status, and for each one that
cannot be read, why and the exact fix (used by ``wattbench sensors`` and the GUI page).

Fixes never say "run as root": RAPL permission problems get the udev rule or tmpfiles line
that makes the counters readable to one group (see wattbench.backends.sensors.rapl).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattbench.backends.sensors.common import STATUS_OK, DomainStatus, resolve_sys_root
from wattbench.backends.sensors.discovery import inventory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Diagnosis:
    """One power source or domain as the user sees it."""

    device: str  # "cpu", "cuda:0", "node", "gpu" (a GPU source that found no GPU) ...
    source: str  # rapl | hwmon | nvml | amdsmi | estimate
    id: str
    name: str
    status: str  # ok | unreadable | absent
    why: str | None = None
    fix: str | None = None
    path: str | None = None
    note: str | None = None
    method: str | None = None  # "nvml.total_energy", "rapl.package-0" ... for readable ones
    scope: str | None = None
    used: bool = True  # enters the device/system sums
    estimate: bool = False

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def title(self) -> str:
        """'rapl package-0': the source and the domain, as a list shows them."""
        return self.name if self.source in self.name else f"{self.source} {self.name}"

    @property
    def detail(self) -> str:
        """Why it cannot be read, or a note on how it is used ('' when there is nothing)."""
        return self.why or self.note or ""


def _from_status(st: DomainStatus) -> Diagnosis:
    dom = st.domain
    return Diagnosis(
        device=st.device,
        source=st.source,
        id=st.id,
        name=st.name,
        status=st.status,
        why=st.why,
        fix=st.fix,
        path=st.path,
        note=st.note,
        method=dom.source if dom is not None else None,
        scope=dom.scope if dom is not None else None,
        used=st.used,
        estimate=dom is not None and dom.modelled,
    )


@dataclass(frozen=True)
class SensorReport:
    sys_root: str
    discovery_s: float
    diagnoses: list[Diagnosis]

    @property
    def measured(self) -> bool:
        """True when at least one real (not estimated) domain can be read."""
        return any(d.ok and not d.estimate for d in self.diagnoses)


def sensor_report(
    sys_root: str | Path | None = None, nvml_module: Any = None, *, amdsmi_module: Any = None
) -> SensorReport:
    """Open every source once, diagnose it, close it again."""
    root = resolve_sys_root(str(sys_root) if sys_root is not None else None)
    inv = inventory(root, nvml_module, amdsmi_module=amdsmi_module)
    try:
        diags = [_from_status(st) for st in inv.statuses]
    finally:
        inv.close()
    return SensorReport(sys_root=root, discovery_s=inv.duration_s, diagnoses=diags)


def diagnose(
    sys_root: str | Path | None = None, nvml_module: Any = None, *, amdsmi_module: Any = None
) -> list[Diagnosis]:
    """Every device and power source with its status, why and fix."""
    return sensor_report(sys_root, nvml_module, amdsmi_module=amdsmi_module).diagnoses
