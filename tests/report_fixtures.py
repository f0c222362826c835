"""Synthetic but complete runs for the report tests, built with the real RunResult classes.

Figures come from seeded random latencies, so each run is internally consistent (mean, percentiles,
throughput and energy agree with its arrays). `HOSTILE` strings go into names, notes and tags.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from wattbench.domain.result import (
    FLAG_CONTENDED,
    FLAG_NOT_CONVERGED,
    EnergyFigure,
    GenerationSummary,
    Interval,
    LatencySummary,
    MemoryFigures,
    ModelInfo,
    PercentileEstimate,
    PhaseTimings,
    RunResult,
    RunStatus,
    Trace,
)
from wattbench.domain.spec import RunSpec, Scenario

HOSTILE_TAG = "<script>document.title='PWNED'</script>_$x$"  # tags are at most 128 chars
HOSTILE = (
    "<script>document.title='PWNED';document.body.innerHTML='PWNED'</script>"
    "<img src=x onerror=\"document.title='PWNED'\">$\\alpha$ & \"q\" 'a' _x"
)


def make_run(
    *,
    device: str = "cpu",
    runtime: str = "torch",
    batch: int = 32,
    mean_ms: float = 10.0,
    power_w: float | None = 50.0,
    seed: int = 0,
    n: int = 800,
    host: str = "bench-a",
    notes: str = "",
    tags: tuple[str, ...] = (),
    estimate_only: bool = False,
    status: RunStatus = RunStatus.DONE,
    model: str = "builtin:resnet50",
    model_name: str = "ResNet-50",
    generation: bool = False,
) -> RunResult:
    """One finished run whose every figure is derived from its own synthetic latencies."""
    spec = RunSpec(
        model=model,
        device=device,
        runtime=runtime,
        batch_size=batch,
        scenario=Scenario.GENERATION if generation else Scenario.OFFLINE,
        tags=tags,
        repeat=seed,
    )
    system = {
        "hostname": host,
        "cpu": {"model": "Synthetic CPU 9000", "cores": 8, "threads": 16},
        "os": "Linux 6.1",
        "torch": "2.13.0",
        "gpus": [{"name": "Synthetic GPU", "driver": "550.1"}] if device != "cpu" else [],
    }
    info = ModelInfo(
        ref=model,
        name=model_name,
        family="builtin",
        format="torch-module",
        sha256="ab" * 32,
        inputs=(("input", (batch, 3, 224, 224), "float32"),),
        parameters=25_557_032,
    )
    if status is not RunStatus.DONE:
        return RunResult(
            spec=spec, status=status, reason="worker ran out of memory", system=system, model=info,
            error_kind="out_of_memory", notes=notes,
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    lat_ns = (mean_ms * 1e6 * (1 + 0.02 * rng.standard_normal(n))).astype(np.int64)
    starts = np.cumsum(np.concatenate([[0], lat_ns[:-1]])).astype(np.int64) + 5_000_000_000
    mean = float(lat_ns.mean())
    sd = float(lat_ns.std(ddof=1))
    h = 2.093 * sd / math.sqrt(n) * 3
    pcts = []
    for p in (0.5, 0.9, 0.99):
        v = float(np.quantile(lat_ns, p))
        pcts.append(PercentileEstimate(p, v, v, v * 0.99, v * 1.01, p < 0.99 or n >= 662))
    lat = LatencySummary(
        n=n, mean_ns=mean, sd_ns=sd, cv=sd / mean, median_ns=float(np.median(lat_ns)),
        iqr_ns=float(np.subtract(*np.quantile(lat_ns, [0.75, 0.25]))), mad_ns=sd * 0.67,
        min_ns=float(lat_ns.min()), max_ns=float(lat_ns.max()), mean_lo_ns=mean - h,
        mean_hi_ns=mean + h, rho=h / mean, r1=0.05, n_eff=n * 0.95 / 1.05, outliers_low=0,
        outliers_high=2, drift=0.001, percentiles=tuple(pcts),
    )  # fmt: skip
    thr = batch / (mean * 1e-9)
    throughput = Interval(thr, thr * (1 - lat.rho), thr * (1 + lat.rho))
    duration_s = float(lat_ns.sum()) * 1e-9
    items = n * batch
    energy: tuple[EnergyFigure, ...] = ()
    telemetry: dict[str, Trace] = {}
    if power_w is not None:
        e_j = power_w * duration_s
        src = "estimate.tdp" if estimate_only else (
            "nvml.total_energy" if device != "cpu" else "rapl.package-0")  # fmt: skip
        energy = (
            EnergyFigure(
                domain="gpu0" if device != "cpu" else "package-0",
                device=device,
                source=src,
                scope="gpu-board" if device != "cpu" else "cpu-package",
                method="model" if estimate_only else "counter-difference",
                energy_j=e_j, duration_s=duration_s, avg_power_w=power_w, items=items,
                energy_per_item_j=e_j / items, items_per_j=items / e_j, idle_power_w=power_w / 5,
                energy_per_item_above_idle_j=(e_j - power_w / 5 * duration_s) / items,
                rel_uncertainty=0.02, flags=("estimate",) if estimate_only else ("wrap_corrected",),
            ),
        )  # fmt: skip
        t = np.arange(-2.0, duration_s, 0.1)
        watts = np.where(t < 0, power_w / 5, power_w + rng.standard_normal(t.size))
        telemetry["power.0"] = Trace(
            name=f"{device} power", unit="W",
            t_ns=(starts[0] + t * 1e9).astype(np.int64), values=watts.astype(np.float64),
        )  # fmt: skip
    gen = None
    if generation:
        ttft = mean * 0.2
        tpot = (mean - ttft) / (spec.new_tokens - 1)
        gen = GenerationSummary(
            prompt_tokens=spec.prompt_tokens, new_tokens=spec.new_tokens,
            ttft_ns=Interval(ttft, ttft * 0.98, ttft * 1.02),
            tpot_ns=Interval(tpot, tpot * 0.99, tpot * 1.01),
            decode_tokens_per_s=Interval(1e9 / tpot, 0.99e9 / tpot, 1.01e9 / tpot),
            e2e_tokens_per_s=Interval(spec.new_tokens * 1e9 / mean, None, None),
        )  # fmt: skip
    memory = MemoryFigures(
        peak_rss_bytes=700 * 2**20,
        gpu_process_peak_bytes=2 * 2**30 if device != "cpu" else None,
        notes=("torch allocator figures: not measured in this synthetic run",),
    )
    return RunResult(
        spec=spec,
        status=RunStatus.DONE,
        generation=gen,
        memory=memory,
        phases=PhaseTimings(
            cold_load_s=0.8,
            first_call_ns=int(mean_ms * 3e6),
            warmup_iterations=120,
            warmup_s=1.2,
            warmup_steady=True,
            null_call_ns=60.0,
            measure_s=duration_s,
            total_s=duration_s + 4,
        ),
        system=system,
        model=info,
        latency=lat,
        throughput_items_per_s=throughput,
        converged=True,
        flags=("outliers",),
        energy=energy,
        energy_na_reason=None if power_w is not None else "no power sensor readable on this host",
        arrays={"latencies_ns": lat_ns, "starts_ns": starts},
        telemetry=telemetry,
        notes=notes,
    )


def comparison_runs() -> list[RunResult]:
    """CPU baseline (2 replicates), a GPU (2 replicates) at two batch sizes, a failed run."""
    return [
        make_run(seed=1, host="bench-a", notes="baseline " + HOSTILE, tags=(HOSTILE_TAG,)),
        make_run(seed=2, host="bench-a"),
        make_run(device="cuda:0", mean_ms=12.5, power_w=20.0, seed=3, host=HOSTILE),
        make_run(device="cuda:0", mean_ms=12.4, power_w=20.5, seed=4, host=HOSTILE),
        make_run(device="cuda:0", batch=8, mean_ms=4.0, power_w=15.0, seed=5, host=HOSTILE),
        make_run(device="cpu", runtime="onnxruntime", power_w=None, seed=6, host="bench-a"),
        make_run(device="cuda:0", status=RunStatus.FAILED, seed=7, notes=HOSTILE),
    ]


def machine(host: str, *, cpu: str, cores: int, memory_gib: float, gpu: str | None = None,
            torch: str = "2.13.0+cpu") -> dict[str, Any]:  # fmt: skip
    """A system description shaped like backends.system.describe_system's, with run state."""
    return {
        "host": host,
        "os": "Linux",
        "os_release": "6.8.0-45-generic",
        "python": "3.11.7",
        "cpu": {
            "model": cpu,
            "sockets": 1,
            "physical_cores": cores,
            "logical_cpus": cores * 2,
            "isa": ["sse4_2", "avx", "avx2", "fma"],
            "architecture": "x86_64",
            "max_mhz": 4200.0,
        },
        "memory_total_bytes": int(memory_gib * 2**30),
        "memory_available_bytes": int(memory_gib * 2**30 * 0.8),
        "swap_total_bytes": 0,
        "cpu_frequency": {
            "governor": "performance",
            "frequency_driver": "intel_pstate",
            "turbo": True,
        },
        "gpus": {
            "nvidia_driver": "550.54.15" if gpu else None,
            "nvidia": [{"bus": "0000:01:00.0", "model": gpu}] if gpu else [],
            "drm": [],
        },
        "load_average": [0.2490234375, 0.7314453125, 0.892578125],
        "boot_time_s": 1796008196.123456,
        "versions": {"torch": torch, "onnxruntime": "1.32.0", "numpy": "2.4.6"},
        "unknown": {},
    }


WORKSTATION = machine("ws-01", cpu="Intel Core i9-13900K", cores=24, memory_gib=63.7,
                      gpu="NVIDIA GeForce RTX 4090", torch="2.13.0+cu124")  # fmt: skip
LAPTOP = machine("lt-07", cpu="Intel Core i7-1365U", cores=10, memory_gib=23.5)


def eight_runs() -> list[RunResult]:
    """Eight finished runs on two machines: a CPU baseline, a GPU at two batch sizes and an ONNX
    CPU configuration (2 replicates each), one run not converged and one contended."""
    cpu = [make_run(seed=s, host="lt-07", mean_ms=10.0, power_w=28.0) for s in (1, 2)]
    ort = [make_run(seed=s, runtime="onnxruntime", host="lt-07", mean_ms=8.0, power_w=30.0)
           for s in (3, 4)]  # fmt: skip
    gpu = [make_run(seed=s, device="cuda:0", host="ws-01", mean_ms=2.5, power_w=300.0)
           for s in (5, 6)]  # fmt: skip
    gpu8 = [make_run(seed=s, device="cuda:0", batch=8, host="ws-01", mean_ms=1.0, power_w=160.0)
            for s in (7, 8)]  # fmt: skip
    runs = [r.with_(system=LAPTOP) for r in cpu + ort] + [r.with_(system=WORKSTATION)
                                                         for r in gpu + gpu8]  # fmt: skip
    runs[3] = runs[3].with_(converged=False, flags=(FLAG_NOT_CONVERGED,))
    runs[7] = runs[7].with_(flags=(FLAG_CONTENDED,))
    return runs
