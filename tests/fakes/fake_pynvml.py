"""A fake ``pynvml`` module: the same names and error codes the real one has, driven by a
small per-GPU model, so the real NVML source reads it as it would read a driver.

Energy and power follow ``power_w`` (a number or a function of seconds since creation) on the
real ``perf_counter`` clock; ``lose_after_reads`` makes the GPU fall off the bus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_FI_DEV_POWER_AVERAGE = 185
NVML_FI_DEV_POWER_INSTANT = 186
NVML_VALUE_TYPE_DOUBLE = 0
NVML_VALUE_TYPE_UNSIGNED_INT = 1
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_TEMPERATURE_GPU = 0

_MESSAGES = {
    3: "Not Supported",
    4: "Insufficient Permissions",
    9: "Driver Not Loaded",
    12: "NVML Shared Library Not Found",
    15: "GPU is lost",
}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML error {self.value}")


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    power_w: float | Callable[[float], float] = 300.0
    energy_counter: bool = True
    instant_field: bool = True
    power_limit_w: float = 700.0
    lose_after_reads: int | None = None
    clock_event_reasons: int = 0
    mig: bool = False
    sm_clock_mhz: int = 1980
    reads: int = 0
    t_start: float = field(default_factory=time.perf_counter)
    energy_mj_at_start: float = 123_456_789.0

    def power_at(self, t_s: float) -> float:
        return self.power_w(t_s) if callable(self.power_w) else float(self.power_w)

    def energy_mj(self) -> float:
        # integrate the power model numerically at 1 ms (callables may be any shape)
        t = time.perf_counter() - self.t_start
        if not callable(self.power_w):
            return self.energy_mj_at_start + self.power_w * t * 1000.0
        steps = max(1, int(t / 0.001))
        dt = t / steps
        total = sum(self.power_at((i + 0.5) * dt) for i in range(steps)) * dt
        return self.energy_mj_at_start + total * 1000.0


class FakeNvml:
    """Install with ``monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([...]))`` or pass
    it as ``nvml_module``."""

    NVMLError = NVMLError

    def __init__(self, gpus: list[FakeGpu] | None = None, *, library_missing: bool = False) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.library_missing = library_missing
        self.initialized = False
        for name, value in globals().items():
            if name.startswith("NVML_"):
                setattr(self, name, value)

    def _gpu(self, handle: Any) -> FakeGpu:
        gpu: FakeGpu = handle
        gpu.reads += 1
        if gpu.lose_after_reads is not None and gpu.reads > gpu.lose_after_reads:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return gpu

    def nvmlInit(self) -> None:
        if self.library_missing:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self.initialized = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: Any) -> str:
        return self._gpu(h).name

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        return int(self._gpu(h).power_limit_w * 1000)

    def nvmlDeviceGetMigMode(self, h: Any) -> list[int]:
        g = self._gpu(h)
        return [int(g.mig), int(g.mig)]

    def nvmlDeviceGetTotalEnergyConsumption(self, h: Any) -> int:
        g = self._gpu(h)
        if not g.energy_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(g.energy_mj())

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        g = self._gpu(h)
        return int(g.power_at(time.perf_counter() - g.t_start) * 1000)

    def nvmlDeviceGetFieldValues(self, h: Any, field_ids: list[int]) -> list[Any]:
        g = self._gpu(h)
        out = []
        for fid in field_ids:
            ok = fid in (NVML_FI_DEV_POWER_INSTANT, NVML_FI_DEV_POWER_AVERAGE) and g.instant_field
            value = int(g.power_at(time.perf_counter() - g.t_start) * 1000) if ok else 0
            out.append(
                SimpleNamespace(
                    fieldId=fid,
                    nvmlReturn=NVML_SUCCESS if ok else NVML_ERROR_NOT_SUPPORTED,
                    valueType=NVML_VALUE_TYPE_UNSIGNED_INT,
                    value=SimpleNamespace(uiVal=value),
                )
            )
        return out

    def nvmlDeviceGetClockInfo(self, h: Any, kind: int) -> int:
        g = self._gpu(h)
        return g.sm_clock_mhz if kind == NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        self._gpu(h)
        return 61

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> Any:
        self._gpu(h)
        return SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> Any:
        self._gpu(h)
        return SimpleNamespace(used=12 * 2**30, total=80 * 2**30, free=68 * 2**30)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: Any) -> int:
        return self._gpu(h).clock_event_reasons
