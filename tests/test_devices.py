"""Device listing on this machine, and the system description read from /proc and /sys."""

from __future__ import annotations

from pathlib import Path

import pytest
from wattbench.backends import devices, system

CPUINFO_2S = """\
processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
physical id\t: 0
core id\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f amx_tile

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
physical id\t: 0
core id\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f amx_tile

processor\t: 2
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
physical id\t: 1
core id\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f amx_tile
"""

CPUINFO_ARM = """\
processor\t: 0
Features\t: fp asimd evtstrm aes sve bf16 i8mm
CPU implementer\t: 0x41
"""


def test_parse_cpuinfo_counts_sockets_cores_and_isa() -> None:
    info = system.parse_cpuinfo(CPUINFO_2S)
    assert info["model"] == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert info["sockets"] == 2 and info["physical_cores"] == 2  # threads 0 and 1 share a core
    assert info["isa"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "amx_tile"]
    arm = system.parse_cpuinfo(CPUINFO_ARM)
    assert arm["model"] is None and arm["sockets"] is None
    assert {"asimd", "sve", "bf16", "i8mm"} <= set(arm["isa"])


def _fake_sys_cpu(root: Path, governor: str | None, no_turbo: str | None) -> Path:
    base = root / "cpu0" / "cpufreq"
    base.mkdir(parents=True)
    if governor is not None:
        (base / "scaling_governor").write_text(governor + "\n")
        (base / "scaling_driver").write_text("intel_pstate\n")
    if no_turbo is not None:
        (root / "intel_pstate").mkdir()
        (root / "intel_pstate" / "no_turbo").write_text(no_turbo + "\n")
    return root


def test_cpufreq_state_from_a_fake_sysfs(tmp_path: Path) -> None:
    root = _fake_sys_cpu(tmp_path / "a", "performance", "1")
    assert system.cpufreq_state(root) == {
        "governor": "performance", "frequency_driver": "intel_pstate", "turbo": False,
    }  # fmt: skip
    empty = _fake_sys_cpu(tmp_path / "b", None, None)
    assert system.cpufreq_state(empty) == {
        "governor": None, "frequency_driver": None, "turbo": None,
    }  # fmt: skip


def test_describe_system_records_unknowns_with_reasons(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(CPUINFO_2S)
    sys_cpu = _fake_sys_cpu(tmp_path / "cpu", None, None)
    d = system.describe_system(proc=proc, sys_cpu=sys_cpu)
    assert d["cpu"]["model"].startswith("Intel(R) Xeon(R)")
    assert d["cpu"]["sockets"] == 2
    assert d["cpu_frequency"]["governor"] is None
    assert "governor" in d["unknown"] and d["unknown"]["governor"]
    assert d["memory_total_bytes"] > 0 and d["python"]
    assert d["versions"]["torch"] and d["versions"]["onnxruntime"]


def test_describe_system_on_this_machine_is_json_safe() -> None:
    import json

    d = system.describe_system()
    json.dumps(d)
    assert d["cpu"]["logical_cpus"] >= 1
    assert d["host"] and d["os"]


def test_cpu_is_usable_on_both_runtimes() -> None:
    infos = devices.list_devices()
    cpus = {i.runtime: i for i in infos if i.id == "cpu"}
    assert set(cpus) == {"torch", "onnxruntime", "ortgenai"}
    assert all(i.usable and i.reason for i in cpus.values())
    assert "fp32" in cpus["torch"].precisions and "bf16" in cpus["torch"].precisions
    assert cpus["onnxruntime"].precisions == ("fp32",)
    assert "CPUExecutionProvider" in cpus["onnxruntime"].details["providers"]
    assert cpus["torch"].details["logical_cpus"] >= 1


def test_absent_gpus_are_listed_as_not_usable_with_a_reason() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    infos = devices.list_devices()
    cuda = [i for i in infos if i.kind in ("cuda", "rocm")]
    assert {i.runtime for i in cuda} == {"torch", "onnxruntime", "ortgenai"}
    for info in cuda:
        assert not info.usable
        assert len(info.reason) > 20  # a sentence, not a code
    mps = [i for i in infos if i.id == "mps"]
    assert mps and not any(i.usable for i in mps)


def test_runtime_status_and_device_dict() -> None:
    status = devices.runtime_status()
    assert status["torch"].ok and status["onnxruntime"].ok
    cpu = devices.find_device("cpu", "torch")
    assert cpu is not None
    d = devices.device_dict(cpu)
    assert d["id"] == "cpu" and isinstance(d["precisions"], list)
    assert devices.find_device("npu:0", "torch") is None


def test_gpus_from_fake_nvidia_proc_and_drm(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    gpu = proc / "driver" / "nvidia" / "gpus" / "0000:3b:00.0"
    gpu.mkdir(parents=True)
    (proc / "driver" / "nvidia" / "version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
        "GCC version:  gcc version 12.2.0\n"
    )
    (gpu / "information").write_text(
        "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 123\nGPU UUID: \t GPU-abc\n"
    )
    drm = tmp_path / "drm"
    for card, vendor in (("card0", "0x10de"), ("card1", "0x1002"), ("card0-DP-1", "0x10de")):
        (drm / card / "device").mkdir(parents=True)
        (drm / card / "device" / "vendor").write_text(vendor + "\n")
    got = system.gpus(proc, drm)
    assert got["nvidia_driver"].startswith("NVRM version") and "550.54.15" in got["nvidia_driver"]
    assert got["nvidia"] == [
        {"bus": "0000:3b:00.0", "model": "NVIDIA H100 80GB HBM3", "gpu_uuid": "GPU-abc"}
    ]
    assert [(d["card"], d["vendor"]) for d in got["drm"]] == [("card0", "NVIDIA"), ("card1", "AMD")]
    none = system.gpus(tmp_path / "empty", tmp_path / "nodrm")
    assert none == {"nvidia_driver": None, "nvidia": [], "drm": []}
