"""The power-source plugin interface (ENERGY.md).

A source exposes domains and reads them; a reading is either a cumulative energy counter or a
power sample, timestamped on the same monotonic clock as the worker's timings
(``time.perf_counter_ns``). Vendor libraries are imported only inside their source module and
their errors become SensorError here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Domain:
    """One thing that can be measured: a CPU package, DRAM, a GPU board, a hwmon sensor."""

    id: str  # unique within the run: "rapl:package-0", "nvml:0", "hwmon:hwmon2/power1"
    name: str  # short label: "package-0", "dram-0", "gpu0", "power1"
    device: str  # compute device it belongs to: "cpu", "cuda:0", "node"
    source: str  # "rapl.package-0", "nvml.total_energy", "hwmon.power1_input∫", ...
    scope: str  # cpu-package | dram | gpu-board | gpu-module | node | soc
    kind: str  # "energy" (cumulative counter) or "power" (instantaneous / averaged)
    unit: str  # "uJ", "mJ", "uW", "mW", "W"
    update_period_s: float  # how often the sensor itself refreshes
    max_range: float | None = None  # counter wraps at this value (in `unit`), None = no wrap
    max_power_w: float | None = None  # plausibility bound for rejecting garbage deltas
    label: str | None = None  # the sensor's own label (hwmon `*_label`, NVML name)


@dataclass(frozen=True)
class Reading:
    domain_id: str
    t_ns: int  # time.perf_counter_ns() at the read
    value: float  # in the domain's unit; counter value or power


class PowerSource(Protocol):
    name: str  # "rapl", "hwmon", "nvml", "amdsmi", "estimate"

    def domains(self) -> list[Domain]: ...

    def read(self) -> list[Reading]:
        """Read every domain once. An unreadable domain raises SensorError or is omitted."""
        ...

    def close(self) -> None: ...
