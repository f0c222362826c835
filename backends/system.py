"""The system description recorded with every run (METHOD.md, preflight).

Read from psutil, /proc and /sys only — no subprocess, no vendor import (package versions
come from their metadata). Anything unreadable is None, and ``unknown`` says why.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# ISA features that matter for inference kernels (x86 and Arm spellings).
ISA_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimdhp",
    "asimddp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
    "sme",
)
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "KMP_AFFINITY",
    "OMP_PROC_BIND",
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
)
PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "nvidia-ml-py", "wattbench")

PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")
SYS_DRM = Path("/sys/class/drm")
GPU_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, sockets, physical cores and ISA flags from /proc/cpuinfo text."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    model: str | None = None
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for block in blocks:
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        model = model or fields.get("model name") or fields.get("hardware") or fields.get("cpu")
        flag_text = fields.get("flags") or fields.get("features") or ""
        flags.update(flag_text.split())
        if "physical id" in fields:
            sockets.add(fields["physical id"])
            cores.add((fields["physical id"], fields.get("core id", fields.get("processor", ""))))
    return {
        "model": model,
        "sockets": len(sockets) or None,
        "physical_cores": len(cores) or None,
        "isa": [f for f in ISA_FLAGS if f in flags],
    }


def cpu_summary(proc: Path = PROC) -> dict[str, Any]:
    """CPU model, sockets, cores, logical threads and ISA features."""
    import psutil

    info = parse_cpuinfo(_read(proc / "cpuinfo") or "")
    if info["model"] is None:
        info["model"] = platform.processor() or None
    logical = psutil.cpu_count(logical=True)
    physical = psutil.cpu_count(logical=False)
    info["physical_cores"] = info["physical_cores"] or physical
    info["logical_cpus"] = logical
    info["architecture"] = platform.machine() or None
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        freq = None
    info["max_mhz"] = float(freq.max) if freq is not None and freq.max else None
    return info


def cpufreq_state(sys_cpu: Path = SYS_CPU) -> dict[str, Any]:
    """Governor, frequency driver and turbo/boost state, None where unreadable."""
    base = sys_cpu / "cpu0" / "cpufreq"
    governor = _read(base / "scaling_governor")
    driver = _read(base / "scaling_driver")
    turbo: bool | None = None
    no_turbo = _read(sys_cpu / "intel_pstate" / "no_turbo")
    boost = _read(sys_cpu / "cpufreq" / "boost")
    if no_turbo in ("0", "1"):
        turbo = no_turbo == "0"
    elif boost in ("0", "1"):
        turbo = boost == "1"
    return {"governor": governor, "frequency_driver": driver, "turbo": turbo}


def gpus(proc: Path = PROC, drm: Path = SYS_DRM) -> dict[str, Any]:
    """GPUs as the kernel shows them: the NVIDIA driver's /proc entries (model, driver
    version) and the display devices' PCI vendors under /sys/class/drm."""
    out: dict[str, Any] = {"nvidia_driver": None, "nvidia": [], "drm": []}
    version = _read(proc / "driver" / "nvidia" / "version")
    if version:
        out["nvidia_driver"] = version.splitlines()[0]
    gpu_root = proc / "driver" / "nvidia" / "gpus"
    if gpu_root.is_dir():
        for bus in sorted(gpu_root.iterdir()):
            info: dict[str, str] = {"bus": bus.name}
            for line in (_read(bus / "information") or "").splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("Model", "GPU UUID", "Video BIOS"):
                    info[key.strip().lower().replace(" ", "_")] = value.strip()
            out["nvidia"].append(info)
    if drm.is_dir():
        for card in sorted(drm.glob("card[0-9]*")):
            if "-" in card.name:  # connectors (card0-HDMI-A-1) are not devices
                continue
            vendor = _read(card / "device" / "vendor")
            if vendor is None:
                continue
            out["drm"].append(
                {
                    "card": card.name,
                    "vendor": GPU_VENDORS.get(vendor, vendor),
                    "device_id": _read(card / "device" / "device"),
                }
            )
    return out


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def describe_system(
    proc: Path = PROC, sys_cpu: Path = SYS_CPU, drm: Path = SYS_DRM
) -> dict[str, Any]:
    """The preflight record: host, OS, CPU, memory, frequency state, versions, thread env."""
    import psutil

    unknown: dict[str, str] = {}
    cpu = cpu_summary(proc)
    freq = cpufreq_state(sys_cpu)
    for key, value in freq.items():
        if value is None:
            unknown[key] = "not readable here (no cpufreq in /sys, e.g. a VM or container)"
    if cpu["max_mhz"] is None:
        unknown["max_mhz"] = "the CPU's maximum frequency is not exposed here"
    if cpu["model"] is None:
        unknown["cpu_model"] = "no model name in /proc/cpuinfo"
    mem = psutil.virtual_memory()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
        unknown["load_average"] = "os.getloadavg() is not available here"
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions = package_versions()
    gpu = gpus(proc, drm)
    if gpu["nvidia_driver"] is None:
        unknown["nvidia_driver"] = "no NVIDIA driver loaded (/proc/driver/nvidia is absent)"
    for name in ("torch", "onnxruntime"):
        if versions.get(name) is None and versions.get(f"{name}-gpu") is None:
            unknown[f"{name}_version"] = f"{name} is not installed"
    return {
        "host": socket.gethostname(),
        "os": platform.system(),
        "os_release": platform.release(),
        "os_version": platform.version(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "cpu": cpu,
        "memory_total_bytes": int(mem.total),
        "memory_available_bytes": int(mem.available),
        "swap_total_bytes": int(psutil.swap_memory().total),
        "cpu_frequency": freq,
        "gpus": gpu,
        "load_average": load,
        "affinity": affinity,
        "boot_time_s": float(psutil.boot_time()),
        "versions": versions,
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV if k in os.environ},
        "unknown": unknown,
    }
