"""NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py), imported here only.

Per GPU, best first (ENERGY.md): the cumulative ``nvmlDeviceGetTotalEnergyConsumption`` (mJ,
Volta+), else ``NVML_FI_DEV_POWER_INSTANT`` integrated, else ``nvmlDeviceGetPowerUsage``, which
is a 1 s average on Ampere and newer: it is integrated with its 1 s update period stated, so
short windows come out flagged ``below_resolution``. Telemetry (clocks, temperature,
utilization, memory, clock-event reasons) is read alongside for the run's traces.

Domains are named by NVML index (``cuda:<i>``); with ``CUDA_DEVICE_ORDER`` unset, CUDA may
number GPUs differently (fastest first) — set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` to make them
agree. NVML errors become SensorError here; a lost GPU raises SensorError from ``read``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wattbench.backends.sensors.base import (
    THROTTLED,
    Domain,
    Reading,
    SourceContext,
    SourceDefaults,
    TelemetrySample,
)
from wattbench.backends.sensors.common import (
    STATUS_ABSENT,
    STATUS_OK,
    STATUS_UNREADABLE,
    DomainStatus,
)
from wattbench.domain.errors import SensorError, SensorPermissionError

log = logging.getLogger(__name__)

ENERGY_UPDATE_PERIOD_S = 0.1
INSTANT_UPDATE_PERIOD_S = 0.02
AVERAGE_UPDATE_PERIOD_S = 1.0
DEFAULT_MAX_POWER_W = 1000.0

# clock-event reasons that mean the GPU was slowed down (idle / app clocks are not throttling)
THROTTLE_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80  # SW power cap, HW slowdown, SW/HW thermal, brake
FLAG_WHOLE_GPU_FOR_MIG = "whole_gpu_for_mig"
TELEMETRY = (
    ("power_w", "W"),
    ("sm_clock_mhz", "MHz"),
    ("mem_clock_mhz", "MHz"),
    ("temp_c", "°C"),
    ("util_pct", "%"),
    ("mem_used_bytes", "B"),
    ("clock_event_reasons", "mask"),
    ("power_limit_w", "W"),
)

NVML_INSTALL_FIX = "pip install nvidia-ml-py   (the NVIDIA driver must be installed too)"
NVML_PERMISSION_FIX = (
    "NVML refused access: make /dev/nvidia* readable to your user (add it to the group that "
    "owns them, usually `video`: sudo usermod -aG video $USER, then log in again)."
)


@dataclass
class _Gpu:
    index: int
    handle: Any
    domain: Domain
    method: str  # "energy" | "instant" | "usage"
    mig: bool = False


def _err_code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


class NvmlSource(SourceDefaults):
    """Every NVIDIA GPU NVML can see; ``statuses`` says why one cannot be measured."""

    name = "nvml"
    device_class = "gpu"

    @classmethod
    def open(cls, ctx: SourceContext) -> NvmlSource:
        """The entry point factory (``ctx.modules["pynvml"]`` replaces the real module)."""
        return cls(ctx.modules.get("pynvml"))

    def __init__(self, nvml_module: Any = None) -> None:
        self.statuses: list[DomainStatus] = []
        self.errors: list[SensorError] = []
        self._gpus: list[_Gpu] = []
        self._nvml: Any = None
        self._unsupported: set[tuple[int, str]] = set()
        self.lost = False
        mod = nvml_module
        if mod is None:
            try:
                import pynvml

                mod = pynvml
            except ImportError:
                self._absent("the nvidia-ml-py package (pynvml) is not installed", NVML_INSTALL_FIX)
                return
        self._nvml = mod
        self._error_type: type[BaseException] = getattr(mod, "NVMLError", Exception)
        try:
            mod.nvmlInit()
        except self._error_type as exc:
            self._init_failed(exc)
            self._nvml = None
            return
        try:
            count = int(mod.nvmlDeviceGetCount())
        except self._error_type as exc:
            self._absent(f"NVML could not count GPUs: {exc}", None)
            return
        if count == 0:
            self._absent("NVML sees no NVIDIA GPU", None)
        for i in range(count):
            self._add_gpu(i)

    # -- discovery -------------------------------------------------------------------------
    def _code(self, name: str) -> int | None:
        value = getattr(self._nvml, name, None)
        return value if isinstance(value, int) else None

    def _absent(self, why: str, fix: str | None) -> None:
        self.statuses.append(
            DomainStatus(
                source="nvml",
                id="nvml",
                name="nvml",
                device="",
                status=STATUS_ABSENT,
                why=why,
                fix=fix,
                path="NVML",
            )
        )

    def _init_failed(self, exc: BaseException) -> None:
        code = _err_code(exc)
        if code in (
            self._code("NVML_ERROR_LIBRARY_NOT_FOUND"),
            self._code("NVML_ERROR_DRIVER_NOT_LOADED"),
        ):
            self._absent(f"no NVIDIA driver here (NVML: {exc})", None)
        elif code == self._code("NVML_ERROR_NO_PERMISSION"):
            self.errors.append(SensorPermissionError(f"NVML: {exc}. {NVML_PERMISSION_FIX}"))
            self.statuses.append(
                DomainStatus(
                    source="nvml",
                    id="nvml",
                    name="nvml",
                    device="",
                    status=STATUS_UNREADABLE,
                    why=f"permission denied ({exc})",
                    fix=NVML_PERMISSION_FIX,
                    path="NVML",
                )
            )
        else:
            self._absent(f"NVML could not start: {exc}", None)

    def _try(self, fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
        try:
            return fn(), None
        except self._error_type as exc:
            return None, exc

    def _add_gpu(self, i: int) -> None:
        mod = self._nvml
        device = f"cuda:{i}"
        handle, exc = self._try(lambda: mod.nvmlDeviceGetHandleByIndex(i))
        if exc is not None:
            self.statuses.append(
                DomainStatus(
                    source="nvml",
                    id=f"nvml:{i}",
                    name=f"gpu{i}",
                    device=device,
                    status=STATUS_UNREADABLE,
                    why=f"cannot open GPU {i}: {exc}",
                    path="NVML",
                )
            )
            return
        raw_name, _ = self._try(lambda: mod.nvmlDeviceGetName(handle))
        label = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name or f"GPU {i}")
        limit_mw, _ = self._try(lambda: mod.nvmlDeviceGetEnforcedPowerLimit(handle))
        max_power_w = max(float(limit_mw) / 1000.0, 50.0) if limit_mw else DEFAULT_MAX_POWER_W
        mig_mode, _ = self._try(lambda: mod.nvmlDeviceGetMigMode(handle))
        mig = bool(mig_mode and mig_mode[0])
        reasons: list[str] = []
        method, source, kind, unit, period = "", "", "", "", 0.0
        _, exc = self._try(lambda: mod.nvmlDeviceGetTotalEnergyConsumption(handle))
        if exc is None:
            method, source, kind, unit = "energy", "nvml.total_energy", "energy", "mJ"
            period = ENERGY_UPDATE_PERIOD_S
        else:
            reasons.append(f"total energy counter: {exc}")
            if self._instant_power_mw(handle) is not None:
                method, source, kind, unit = "instant", "nvml.power_instant∫", "power", "mW"
                period = INSTANT_UPDATE_PERIOD_S
            else:
                reasons.append("instantaneous power field: not supported")
                _, exc2 = self._try(lambda: mod.nvmlDeviceGetPowerUsage(handle))
                if exc2 is None:
                    method, source, kind, unit = "usage", "nvml.power_usage∫", "power", "mW"
                    period = AVERAGE_UPDATE_PERIOD_S
                else:
                    reasons.append(f"power usage: {exc2}")
        did = f"nvml:{i}"
        if not method:
            self.statuses.append(
                DomainStatus(
                    source="nvml",
                    id=did,
                    name=f"gpu{i}",
                    device=device,
                    status=STATUS_UNREADABLE,
                    why=f"{label}: no power reading is supported ({'; '.join(reasons)})",
                    path="NVML",
                )
            )
            return
        domain = Domain(
            id=did,
            name=f"gpu{i}",
            device=device,
            source=source,
            scope="gpu-module" if "GH200" in label else "gpu-board",
            kind=kind,
            unit=unit,
            update_period_s=period,
            max_range=None,
            max_power_w=max_power_w,
            label=label,
            # ENERGY.md: the counter against integrated instantaneous power, over ≥ 5 s
            check_channel=f"{device}.power_w" if method == "energy" else None,
            check_period_s=INSTANT_UPDATE_PERIOD_S if method == "energy" else None,
        )
        notes = []
        if reasons:
            notes.append("fallback: " + "; ".join(reasons))
        if method == "usage":
            notes.append("power usage is a 1 s average on Ampere and newer")
        if mig:
            notes.append("MIG is on: NVML reports the whole GPU, not one MIG instance")
        self._gpus.append(_Gpu(i, handle, domain, method, mig))
        self.statuses.append(
            DomainStatus(
                source="nvml",
                id=did,
                name=f"gpu{i}",
                device=device,
                status=STATUS_OK,
                path=source,
                domain=domain,
                note="; ".join(notes) or None,
            )
        )

    def _instant_power_mw(
        self, handle: Any, which: str = "NVML_FI_DEV_POWER_INSTANT"
    ) -> float | None:
        fid = self._code(which)
        if fid is None:
            return None
        vals, exc = self._try(lambda: self._nvml.nvmlDeviceGetFieldValues(handle, [fid]))
        if exc is not None or not vals:
            return None
        v = vals[0]
        if getattr(v, "nvmlReturn", 1) != 0:
            return None
        if getattr(v, "valueType", None) == self._code("NVML_VALUE_TYPE_DOUBLE"):
            return float(v.value.dVal)
        return float(v.value.uiVal)

    # -- PowerSource -----------------------------------------------------------------------
    def domains(self) -> list[Domain]:
        return [g.domain for g in self._gpus]

    def domain_flags(self, domain_id: str) -> tuple[str, ...]:
        for g in self._gpus:
            if g.domain.id == domain_id and g.mig:
                return (FLAG_WHOLE_GPU_FOR_MIG,)
        return ()

    def _raise_if_lost(self, exc: BaseException, gpu: _Gpu) -> None:
        if _err_code(exc) == self._code("NVML_ERROR_GPU_IS_LOST"):
            self.lost = True
            raise SensorError(
                f"GPU {gpu.index} ({gpu.domain.label}) fell off the bus during "
                f"the run (NVML: {exc}); its energy is unknown."
            ) from exc

    def read(self) -> list[Reading]:
        mod = self._nvml
        out: list[Reading] = []
        for g in self._gpus:
            try:
                if g.method == "energy":
                    value = float(mod.nvmlDeviceGetTotalEnergyConsumption(g.handle))
                elif g.method == "instant":
                    got = self._instant_power_mw(g.handle)
                    if got is None:
                        continue
                    value = got
                else:
                    value = float(mod.nvmlDeviceGetPowerUsage(g.handle))
            except self._error_type as exc:
                self._raise_if_lost(exc, g)
                log.debug("nvml: %s unreadable this tick: %s", g.domain.id, exc)
                continue
            out.append(Reading(g.domain.id, time.perf_counter_ns(), value))
        return out

    def read_telemetry(self) -> list[TelemetrySample]:
        """(trace name, unit, t_ns, value) for power, clocks, temperature, utilization,
        memory, clock-event reasons and power limit of every GPU, and whether it is throttled
        (a slowdown among the clock-event reasons); unsupported ones are dropped."""
        out: list[TelemetrySample] = []
        for g in self._gpus:
            dev = g.domain.device
            for name, unit in TELEMETRY:
                key = (g.index, name)
                if key in self._unsupported:
                    continue
                try:
                    value = self._telemetry_value(g, name)
                except self._error_type as exc:
                    self._raise_if_lost(exc, g)
                    if _err_code(exc) == self._code("NVML_ERROR_NOT_SUPPORTED"):
                        self._unsupported.add(key)
                    continue
                except AttributeError:  # an older pynvml without this call
                    self._unsupported.add(key)
                    continue
                if value is None:
                    continue
                now = time.perf_counter_ns()
                out.append((f"{dev}.{name}", unit, now, float(value)))
                if name == "clock_event_reasons":
                    slowed = 1.0 if int(value) & THROTTLE_MASK else 0.0
                    out.append((f"{dev}.{THROTTLED}", "bool", now, slowed))
        return out

    def _telemetry_value(self, g: _Gpu, name: str) -> float | None:
        mod, h = self._nvml, g.handle
        if name == "power_w":
            return _div(self._instant_power_mw(h), 1000.0)
        if name == "sm_clock_mhz":
            return float(mod.nvmlDeviceGetClockInfo(h, mod.NVML_CLOCK_SM))
        if name == "mem_clock_mhz":
            return float(mod.nvmlDeviceGetClockInfo(h, mod.NVML_CLOCK_MEM))
        if name == "temp_c":
            return float(mod.nvmlDeviceGetTemperature(h, mod.NVML_TEMPERATURE_GPU))
        if name == "util_pct":
            return float(mod.nvmlDeviceGetUtilizationRates(h).gpu)
        if name == "mem_used_bytes":
            return float(mod.nvmlDeviceGetMemoryInfo(h).used)
        if name == "clock_event_reasons":
            return float(mod.nvmlDeviceGetCurrentClocksEventReasons(h))
        if name == "power_limit_w":
            return float(mod.nvmlDeviceGetEnforcedPowerLimit(h)) / 1000.0
        raise ValueError(name)

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(self._error_type):
                self._nvml.nvmlShutdown()
            self._nvml = None
        self._gpus = []


def _div(value: float | None, by: float) -> float | None:
    return None if value is None else value / by
