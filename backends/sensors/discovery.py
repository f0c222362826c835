"""Find every power source of this machine in well under a second, without a subprocess.

``inventory`` opens each source (RAPL, hwmon, NVML, amdsmi) and keeps the status of every
domain it found, readable or not; the TDP × load estimate is added for the CPU only when no
CPU domain can be measured. Overlaps are resolved here, once: hwmon CPU sensors that repeat
RAPL packages, and the hwmon ``amdgpu`` sensor when amdsmi reads the same card, are shown but
never summed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wattbench.backends.sensors.amdsmi_source import AmdSmiSource
from wattbench.backends.sensors.base import PowerSource
from wattbench.backends.sensors.common import STATUS_OK, DomainStatus
from wattbench.backends.sensors.estimate import EstimateSource
from wattbench.backends.sensors.hwmon import HwmonSource
from wattbench.backends.sensors.nvml import NvmlSource
from wattbench.backends.sensors.rapl import RaplSource

log = logging.getLogger(__name__)

MEASURED_CPU_SCOPES = ("cpu-package", "dram", "soc")


@dataclass
class Inventory:
    """The open sources (readable domains only) and the status of everything found."""

    sources: list[PowerSource] = field(default_factory=list)
    statuses: list[DomainStatus] = field(default_factory=list)
    duration_s: float = 0.0

    def used(self, domain_id: str) -> bool:
        """Whether a readable domain enters the device/system sums."""
        for st in self.statuses:
            if st.id == domain_id:
                return st.used
        return False

    def close(self) -> None:
        for src in self.sources:
            try:
                src.close()
            except Exception as exc:  # closing must never fail a run
                log.debug("closing %s: %s", src.name, exc)
        self.sources = []


def _str_root(sys_root: str | Path | None) -> str | None:
    return str(sys_root) if sys_root is not None else None


def inventory(
    sys_root: str | Path | None = None,
    nvml_module: Any = None,
    *,
    amdsmi_module: Any = None,
    with_estimate: bool = True,
) -> Inventory:
    """Open every source; statuses for all domains, including unreadable and absent ones."""
    t0 = time.perf_counter()
    root = _str_root(sys_root)
    rapl = RaplSource(root)
    hwmon = HwmonSource(root)
    nvml = NvmlSource(nvml_module)
    amd = AmdSmiSource(amdsmi_module)
    inv = Inventory()
    rapl_packages = any(
        st.status == STATUS_OK and st.domain is not None and st.domain.scope == "cpu-package"
        for st in rapl.statuses
    )
    amd_gpus = bool(amd.domains())
    for src in (rapl, hwmon, nvml, amd):
        for st in src.statuses:
            if src is hwmon and st.status == STATUS_OK and st.domain is not None:
                if rapl_packages and st.device == "cpu" and st.domain.scope in MEASURED_CPU_SCOPES:
                    st = dataclasses.replace(
                        st, used=False, note="repeats the RAPL counters: shown, not summed"
                    )
                elif amd_gpus and st.device == "amdgpu":
                    st = dataclasses.replace(
                        st, used=False, note="amdsmi reads this card: shown, not summed"
                    )
            inv.statuses.append(st)
        if src.domains():
            inv.sources.append(src)
        else:
            src.close()
    cpu_measured = any(
        st.status == STATUS_OK and st.used and st.device == "cpu" for st in inv.statuses
    )
    if with_estimate and not cpu_measured:
        est = EstimateSource()
        inv.sources.append(est)
        inv.statuses.extend(est.statuses)
    inv.duration_s = time.perf_counter() - t0
    return inv


def discover(sys_root: str | Path | None = None, nvml_module: Any = None) -> list[PowerSource]:
    """Every readable power source (the estimate last, when the CPU has no sensor)."""
    return inventory(sys_root, nvml_module).sources
