"""The energy part of the GPU device check: idle and loaded power, NVML's energy counter against
integrated power, and the throttle reasons, over one idle stretch and one loaded window.

Two comparisons: the run sampler's own cross-check (``energy.sampler``: the counter against
integrated instantaneous power, windows ≥ 5 s), and the counter against
``nvmlDeviceGetPowerUsage`` read directly in a thread of this module, both cut to the window by
the project's window code. ``measure_energy`` takes the NVML module and the load as arguments,
so that a fake NVML and a sleeping load exercise it on a machine without a GPU.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from check_figures import decode_throttle, energy_agreement
from wattbench.backends.sensors.base import Domain
from wattbench.backends.sensors.nvml import AVERAGE_UPDATE_PERIOD_S, THROTTLE_MASK
from wattbench.domain.spec import RunSpec
from wattbench.energy.figures import DomainSeries, WindowError, window_energy_j
from wattbench.energy.sampler import IDLE_MAX_S, IDLE_WINDOW_S, open_sampler

SAMPLE_HZ = 20.0
WARM_S = 3.0  # load before the window, so that a 1 s power average has settled
WINDOW_S = 15.0  # ≥ 10 × the 1 s period of nvmlDeviceGetPowerUsage, ≥ 5 s for the cross-check
TAIL_S = 2.0
LOAD_N = 8192

clock = time.perf_counter_ns
Sample = tuple[int, float | None, float | None, int | None]  # t_ns, energy mJ, power mW, mask


class DirectNvml:
    """Reads NVML's energy counter, its power usage and the throttle reasons in a thread."""

    def __init__(self, nvml: Any, handle: Any, hz: float) -> None:
        self.nvml, self.handle, self.period_s = nvml, handle, 1.0 / hz
        throttle = getattr(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
        self._throttle = throttle or nvml.nvmlDeviceGetCurrentClocksEventReasons
        self.samples: list[Sample] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _read(self, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(self.handle)
        except self.nvml.NVMLError:
            self.errors += 1
            return None

    def _loop(self) -> None:
        nv = self.nvml
        while not self._stop.is_set():
            e = self._read(nv.nvmlDeviceGetTotalEnergyConsumption)
            p = self._read(nv.nvmlDeviceGetPowerUsage)
            m = self._read(self._throttle)
            self.samples.append((clock(), e, p, m))
            self._stop.wait(self.period_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def masks(self, t0_ns: int, t1_ns: int) -> list[int]:
        return [int(m) for t, _, _, m in self.samples if t0_ns <= t <= t1_ns and m is not None]

    def mean_power_w(self, t0_ns: int, t1_ns: int) -> float | None:
        ps = [p for t, _, p, _ in self.samples if t0_ns <= t <= t1_ns and p is not None]
        return statistics.fmean(ps) / 1000.0 if ps else None


def _domain(device: str, kind: str, unit: str, period_s: float) -> Domain:
    return Domain(
        id=f"direct:{kind}",
        name=f"direct-{kind}",
        device=device,
        source="device-check",
        scope="gpu-board",
        kind=kind,
        unit=unit,
        update_period_s=period_s,
    )


def direct_energy_check(
    samples: list[Sample], t0_ns: int, t1_ns: int, device: str = "cuda:0"
) -> dict[str, Any]:
    """NVML's energy counter (mJ) against its power usage (mW) integrated, both cut to
    [t0, t1] by the project's window code (``energy.figures.window_energy_j``)."""
    ce = [(t, e) for t, e, _, _ in samples if e is not None]
    cp = [(t, p) for t, _, p, _ in samples if p is not None]
    if len(ce) < 2 or len(cp) < 2:
        return energy_agreement(None, None)
    base = ce[0][1]
    counter = DomainSeries(
        _domain(device, "energy", "mJ", 0.1),
        np.asarray([t for t, _ in ce], dtype=np.int64),
        np.asarray([(e - base) / 1000.0 for _, e in ce], dtype=np.float64),
    )
    power = DomainSeries(
        _domain(device, "power", "mW", AVERAGE_UPDATE_PERIOD_S),
        np.asarray([t for t, _ in cp], dtype=np.int64),
        np.asarray([p / 1000.0 for _, p in cp], dtype=np.float64),
    )
    try:
        counter_j, _ = window_energy_j(counter, t0_ns, t1_ns, 1.0 / SAMPLE_HZ)
        power_j, _ = window_energy_j(power, t0_ns, t1_ns, 1.0 / SAMPLE_HZ)
    except WindowError as exc:
        return {"ok": False, "reason": f"window: {exc}", "ratio": None}
    return energy_agreement(counter_j, power_j)


def _union(masks: list[int]) -> int:
    acc = 0
    for m in masks:
        acc |= m
    return acc


def throttle_figures(idle_masks: list[int], load_masks: list[int]) -> dict[str, Any]:
    """The reasons seen at idle and under load, and how many load samples were slowed down
    (the NVML source's own rule: power cap, HW slowdown, thermal, power brake)."""
    return {
        "idle_reasons": decode_throttle(_union(idle_masks)),
        "loaded_reasons": decode_throttle(_union(load_masks)),
        "loaded_samples": len(load_masks),
        "loaded_samples_slowed": sum(1 for m in load_masks if m & THROTTLE_MASK),
    }


def matmul_load(device: str) -> Callable[[float], int]:
    """A steady load: bf16 matrix products back to back for a number of seconds."""
    import torch

    dev = torch.device(device)
    a = torch.randn(LOAD_N, LOAD_N, device=dev, dtype=torch.bfloat16)
    b = torch.randn(LOAD_N, LOAD_N, device=dev, dtype=torch.bfloat16)
    c = torch.empty_like(a)
    torch.cuda.synchronize(dev)

    def load(seconds: float) -> int:
        done = 0
        end = clock() + int(seconds * 1e9)
        while clock() < end:
            for _ in range(10):
                torch.mm(a, b, out=c)
            torch.cuda.synchronize(dev)
            done += 10
        return done

    return load


def measure_energy(
    nvml: Any,
    load: Callable[[float], int],
    device: str,
    *,
    sys_root: str | Path | None = None,
    idle_window_s: float = IDLE_WINDOW_S,
    idle_max_s: float = IDLE_MAX_S,
    warm_s: float = WARM_S,
    window_s: float = WINDOW_S,
    tail_s: float = TAIL_S,
) -> dict[str, Any]:
    """Idle baseline, then ``load`` for warm + window + tail seconds; the figures of the window."""
    spec = RunSpec(model="builtin:resnet50", device=device, sample_hz=SAMPLE_HZ)
    sampler = open_sampler(spec, sys_root, nvml, idle_window_s=idle_window_s, idle_max_s=idle_max_s)
    nvml.nvmlInit()
    index = int(device.partition(":")[2] or 0)
    direct = DirectNvml(nvml, nvml.nvmlDeviceGetHandleByIndex(index), SAMPLE_HZ)
    direct.start()
    print(f"gpu_energy: idle baseline (≤ {idle_max_s:.0f} s)", file=sys.stderr, flush=True)
    idle = sampler.idle_baseline()
    idle_end = clock()
    idle_start = idle_end - int(idle_window_s * 1e9)
    sampler.start()
    load(warm_s)
    t0 = clock()
    items = load(window_s)
    t1 = clock()
    load(tail_s)
    sampler.stop()
    direct.stop()
    report = sampler.figures(t0, t1, items, idle)
    throttled = sorted(sampler.throttled_devices(t0, t1))
    sampler.close()
    nvml.nvmlShutdown()
    fig = next(
        (f for f in report.figures if f.device == device and f.domain not in ("device", "system")),
        None,
    )
    out: dict[str, Any] = {
        "window_s": (t1 - t0) / 1e9,
        "load_items": items,
        "idle": {
            "sampler_w": dict(idle.power_w) if idle else None,
            "stable": idle.stable if idle else None,
            "duration_s": idle.duration_s if idle else None,
            "power_usage_w": direct.mean_power_w(idle_start, idle_end),
        },
        "loaded": {
            "sampler_avg_w": fig.avg_power_w if fig else None,
            "power_usage_w": direct.mean_power_w(t0, t1),
        },
        "throttle": throttle_figures(direct.masks(idle_start, idle_end), direct.masks(t0, t1))
        | {"sampler_throttled_devices": throttled},
        "report_flags": list(report.flags),
        "direct_read_errors": direct.errors,
        "direct": direct_energy_check(direct.samples, t0, t1, device),
    }
    problems = []
    if fig is None:
        out["product"] = None
        problems.append(f"the sampler has no energy figure for {device}: {report.domain_na}")
    else:
        out["figure"] = {
            "domain": fig.domain,
            "source": fig.source,
            "method": fig.method,
            "energy_j": fig.energy_j,
            "flags": list(fig.flags),
        }
        ratio = report.cross_checks.get(fig.domain)
        if ratio is None:
            why = "no cross-check: no instantaneous power, or a window under 5 s"
            out["product"] = {"ok": None, "ratio": None, "reason": why}
        else:
            out["product"] = energy_agreement(fig.energy_j, fig.energy_j / ratio)
            if not out["product"]["ok"]:
                problems.append(f"sampler cross-check: {out['product']['reason']}")
        if fig.method != "counter-difference":
            problems.append(f"energy by {fig.method} ({fig.source}), not NVML's counter")
    if not out["direct"]["ok"]:
        problems.append(f"counter vs nvmlDeviceGetPowerUsage: {out['direct'].get('reason')}")
    out["ok"] = not problems
    if problems:
        out["reason"] = "; ".join(problems)
    return out
