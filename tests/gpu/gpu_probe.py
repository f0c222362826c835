"""The in-process parts of the GPU device check, one per call: ``gpu_probe.py env|timing|energy``.

Each prints one JSON object on stdout (``ok``, ``reason`` when not, and its figures) and logs to
stderr. They use the project's own code where it has the thing being checked: the torch runtime
loads the model, ``engine.timing.loop_single`` is the host-synchronised loop, and the run's power
sampler (``energy.sampler``) measures idle, loaded power and the counter-vs-power cross-check.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from check_figures import timing_agreement

DEVICE = "cuda:0"
MODEL = "builtin:resnet50"
TIMING_BLOCKS = 8  # host and event blocks alternate, so drift lands on both sides alike
TIMING_PER_BLOCK = 25
TIMING_TARGET_NS = 1_500_000  # size each workload to ≥ 1.5 ms a call
MATMUL_N = 4096

clock = time.perf_counter_ns


def _nvml_query(nvml: Any, name: str, *args: Any) -> Any:
    """An NVML answer, or the error's words: NVML raises for what a GPU does not support, and
    an older nvidia-ml-py may lack the call."""
    try:
        value = getattr(nvml, name)(*args)
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"
    return value.decode() if isinstance(value, bytes) else value


def _instant_power_w(nvml: Any, h: Any) -> Any:
    got = _nvml_query(nvml, "nvmlDeviceGetFieldValues", h, [nvml.NVML_FI_DEV_POWER_INSTANT])
    if isinstance(got, str):
        return got
    v = got[0]
    if v.nvmlReturn != 0:
        return f"error: nvmlReturn {v.nvmlReturn}"
    return (v.value.dVal if v.valueType == nvml.NVML_VALUE_TYPE_DOUBLE else v.value.uiVal) / 1e3


# -- env -------------------------------------------------------------------------------------


def env() -> dict[str, Any]:
    """What the machine is: versions, the GPU, its power limits, clocks and readings at rest."""
    import platform

    import pynvml
    import torch
    from check_figures import decode_throttle

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)

    def q(name: str, *args: Any) -> Any:
        return _nvml_query(pynvml, name, *args)

    throttle = q("nvmlDeviceGetCurrentClocksThrottleReasons", h)
    if isinstance(throttle, str):  # a newer nvidia-ml-py names them clock event reasons only
        throttle = q("nvmlDeviceGetCurrentClocksEventReasons", h)
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "nvml_driver": q("nvmlSystemGetDriverVersion"),
        "nvml_version": q("nvmlSystemGetNVMLVersion"),
        "name": q("nvmlDeviceGetName", h),
        "power_limit_w": _milli(q("nvmlDeviceGetEnforcedPowerLimit", h)),
        "default_power_limit_w": _milli(q("nvmlDeviceGetPowerManagementDefaultLimit", h)),
        "max_sm_clock_mhz": q("nvmlDeviceGetMaxClockInfo", h, pynvml.NVML_CLOCK_SM),
        "sm_clock_mhz": q("nvmlDeviceGetClockInfo", h, pynvml.NVML_CLOCK_SM),
        "temperature_c": q("nvmlDeviceGetTemperature", h, pynvml.NVML_TEMPERATURE_GPU),
        "pstate": q("nvmlDeviceGetPerformanceState", h),
        "persistence_mode": q("nvmlDeviceGetPersistenceMode", h),
        "mig_mode": q("nvmlDeviceGetMigMode", h),
        "total_energy_mj": q("nvmlDeviceGetTotalEnergyConsumption", h),
        "power_usage_w": _milli(q("nvmlDeviceGetPowerUsage", h)),
        "power_instant_w": _instant_power_w(pynvml, h),
        "throttle_reasons": decode_throttle(throttle) if isinstance(throttle, int) else throttle,
    }
    if out["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        out["torch_device"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "memory_bytes": int(props.total_memory),
        }
        out["ok"] = True
    else:
        out["ok"] = False
        out["reason"] = "torch.cuda.is_available() is False"
    pynvml.nvmlShutdown()
    return out


def _milli(value: Any) -> Any:
    return value / 1000.0 if isinstance(value, int | float) else value


# -- timing ----------------------------------------------------------------------------------


def _host_block(run: Callable[[], None], n: int) -> list[float]:
    from wattbench.engine.timing import loop_single

    starts = np.zeros(n, dtype=np.int64)
    lats = np.zeros(n, dtype=np.int64)
    loop_single(run, starts, lats, 0, n, 1 << 62)
    return [float(x) for x in lats]


def _event_block(call: Callable[[], None], n: int) -> list[float]:
    import torch

    pairs = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(n)
    ]
    for start, end in pairs:
        start.record()
        call()
        end.record()
        end.synchronize()
    return [start.elapsed_time(end) * 1e6 for start, end in pairs]  # ms -> ns


def _compare(run_synced: Callable[[], None], call: Callable[[], None]) -> dict[str, Any]:
    """The same workload timed by the project's host loop (``run_synced`` synchronises) and by
    CUDA events around ``call`` (which does not), in alternating blocks."""
    host: list[float] = []
    events: list[float] = []
    for _ in range(TIMING_BLOCKS):
        host += _host_block(run_synced, TIMING_PER_BLOCK)
        events += _event_block(call, TIMING_PER_BLOCK)
    return timing_agreement(host, events)


def _median_call_ns(run_synced: Callable[[], None], n: int = 10) -> float:
    return statistics.median(_host_block(run_synced, n))


def _model_workload() -> dict[str, Any]:
    from wattbench.backends.models.catalog import resolve_model
    from wattbench.backends.runtimes.base import RuntimeOptions
    from wattbench.backends.runtimes.registry import get_runtime

    rt = get_runtime("torch")
    entry = resolve_model(MODEL)
    batch = 8
    while True:
        loaded: Any = rt.load(entry, DEVICE, RuntimeOptions(precision="fp32", batch_size=batch))
        for _ in range(10):
            loaded.run_once()
        call_ns = _median_call_ns(loaded.run_once)
        if call_ns >= TIMING_TARGET_NS or batch >= 256:
            break
        loaded.close()
        batch *= 2
    module, args = loaded.module, loaded.args
    result = _compare(loaded.run_once, lambda: module(*args))
    loaded.close()
    return {"workload": f"{MODEL} fp32 batch {batch} (torch runtime)", **result}


def _matmul_workload() -> dict[str, Any]:
    import torch

    dev = torch.device(DEVICE)
    a = torch.randn(MATMUL_N, MATMUL_N, device=dev, dtype=torch.bfloat16)
    b = torch.randn(MATMUL_N, MATMUL_N, device=dev, dtype=torch.bfloat16)
    c = torch.empty_like(a)

    def chain(k: int) -> Callable[[], None]:
        reps = range(k)

        def call() -> None:
            for _ in reps:
                torch.mm(a, b, out=c)

        return call

    one = chain(1)
    for _ in range(20):
        one()
    torch.cuda.synchronize(dev)
    per_mm_ns = statistics.median(_event_block(one, 20))
    k = max(1, min(1000, math.ceil(TIMING_TARGET_NS / max(per_mm_ns, 1.0))))
    call = chain(k)

    def run_synced() -> None:
        call()
        torch.cuda.synchronize(dev)

    result = _compare(run_synced, call)
    return {"workload": f"{k} bf16 matmuls {MATMUL_N}² a call", **result}


def timing() -> dict[str, Any]:
    workloads = []
    for workload in (_model_workload, _matmul_workload):
        try:
            workloads.append(workload())
        except Exception as exc:  # one workload's failure must not hide the other's figures
            name = workload.__name__.strip("_")
            workloads.append(
                {"workload": name, "ok": False, "reason": f"{type(exc).__name__}: {exc}"}
            )
    bad = [f"{w['workload']}: {w.get('reason')}" for w in workloads if not w["ok"]]
    out: dict[str, Any] = {"workloads": workloads, "ok": not bad}
    if bad:
        out["reason"] = "; ".join(bad)
    return out


def energy() -> dict[str, Any]:
    import pynvml
    from gpu_energy import matmul_load, measure_energy

    load = matmul_load(DEVICE)  # the CUDA context exists before idle, as in a run's worker
    return measure_energy(pynvml, load, DEVICE)


STEPS: dict[str, Callable[[], dict[str, Any]]] = {"env": env, "timing": timing, "energy": energy}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: gpu_probe.py {'|'.join(STEPS)}", file=sys.stderr)
        return 2
    out = STEPS[argv[0]]()
    print(json.dumps(out, indent=1, default=str))
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
