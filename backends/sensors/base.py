"""The power-source plugin interface (ENERGY.md).

A source exposes domains and reads them; a reading is either a cumulative energy counter or a
power sample, timestamped on the same monotonic clock as the worker's timings
(``time.perf_counter_ns``). Vendor libraries are imported only inside their source module and
their errors become SensorError there.

Sources are found through the ``wattbench.power_sources`` entry point group, exactly as a
third-party source (a smart plug, a lab power analyzer) would register: each entry point is a
factory taking a ``SourceContext``. ``SourceDefaults`` gives a source the optional parts of
the interface (telemetry, flags, a modelled idle power, overlap with other sources).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from wattbench.backends.sensors.common import DomainStatus

TelemetrySample = tuple[str, str, int, float]  # (trace name "cuda:0.temp_c", unit, t_ns, value)
THROTTLED = "throttled"  # telemetry channel "<device>.throttled": 1.0 while the device is slowed


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
    # a telemetry channel of instantaneous power (W) to check this domain's energy against over
    # long windows, and that channel's update period (NVML: counter vs integrated power)
    check_channel: str | None = None
    check_period_s: float | None = None
    modelled: bool = False  # an estimate from a model (TDP × load), never a measurement


@dataclass(frozen=True)
class Reading:
    domain_id: str
    t_ns: int  # time.perf_counter_ns() at the read
    value: float  # in the domain's unit; counter value or power


@dataclass(frozen=True)
class SourceContext:
    """What every source factory is given: where sysfs is, and vendor modules to use instead of
    importing their own (tests put a fake ``pynvml`` here: fake input to the real reader)."""

    sys_root: str | None = None
    modules: Mapping[str, Any] = field(default_factory=dict)


class PowerSource(Protocol):
    name: str  # "rapl", "hwmon", "nvml", "amdsmi", "estimate"
    device_class: str  # where a source-wide status is shown: "cpu", "gpu", "node"
    precedence: int  # lower first; a later source may repeat an earlier one's domains
    fallback: bool  # used only for devices that no measured source covers (estimates)
    statuses: list[DomainStatus]  # every domain found, readable or not, and why

    def domains(self) -> list[Domain]: ...

    def read(self) -> list[Reading]:
        """Read every domain once. An unreadable domain raises SensorError or is omitted."""
        ...

    def read_telemetry(self) -> list[TelemetrySample]:
        """Other device state read alongside power (clocks, temperature, throttling)."""
        ...

    def domain_flags(self, domain_id: str) -> tuple[str, ...]:
        """Flags every figure of this domain carries (e.g. whole_gpu_for_mig)."""
        ...

    def modelled_idle_w(self, domain_id: str) -> float | None:
        """The idle power of a modelled (estimated) domain; None for a measured one."""
        ...

    def repeats(self, status: DomainStatus, earlier: Sequence[DomainStatus]) -> str | None:
        """Why this readable domain repeats one an earlier source reads (then it is shown but
        not summed), or None."""
        ...

    def close(self) -> None: ...


class SourceDefaults:
    """The optional parts of the PowerSource interface, for sources that have none of them."""

    device_class = "node"
    precedence = 10
    fallback = False

    def read_telemetry(self) -> list[TelemetrySample]:
        return []

    def domain_flags(self, domain_id: str) -> tuple[str, ...]:
        return ()

    def modelled_idle_w(self, domain_id: str) -> float | None:
        return None

    def repeats(self, status: DomainStatus, earlier: Sequence[DomainStatus]) -> str | None:
        return None
