"""Every compute device each runtime can reach, with why it is or is not usable.

One ``DeviceInfo`` per (runtime, device): the CPU, CUDA/ROCm GPUs, MPS, XPU, and what the
onnxruntime execution providers reach. A runtime that cannot be imported lists no devices and
says why in ``runtime_status``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from wattbench.backends.runtimes.base import Availability, DeviceInfo

log = logging.getLogger(__name__)


def runtime_status() -> dict[str, Availability]:
    """Each registered runtime's availability (version, or why it cannot be used)."""
    from wattbench.backends.runtimes import registry

    out: dict[str, Availability] = {}
    for name in registry.runtime_names():
        try:
            out[name] = registry.get_runtime(name).available()
        except Exception as exc:  # a broken plugin is reported, not fatal
            out[name] = Availability(False, f"{type(exc).__name__}: {exc}")
    return out


def list_devices(runtimes: Iterable[str] | None = None) -> list[DeviceInfo]:
    """Devices as each runtime (all registered ones by default) sees them."""
    from wattbench.backends.runtimes import registry

    out: list[DeviceInfo] = []
    for name in runtimes or registry.runtime_names():
        runtime = registry.get_runtime(name)
        if not runtime.available().ok:
            continue
        try:
            out.extend(runtime.devices())
        except Exception as exc:  # a driver error must not hide the other devices
            log.warning("listing %s devices failed: %s", name, exc)
            out.append(
                DeviceInfo(
                    id="?",
                    kind="unknown",
                    name=f"{name} devices",
                    runtime=name,
                    usable=False,
                    reason=f"listing failed: {type(exc).__name__}: {exc}",
                    precisions=(),
                )
            )
    return out


def find_device(device: str, runtime: str) -> DeviceInfo | None:
    """The entry of ``device`` ("cpu", "cuda:0") for ``runtime``, or None when not listed."""
    for info in list_devices([runtime]):
        if info.id == device or (info.id in ("cuda", "xpu") and device.startswith(info.id)):
            return info
    return None


def device_dict(info: DeviceInfo) -> dict[str, Any]:
    """A JSON-able dict of one device entry."""
    d = asdict(info)
    d["precisions"] = list(info.precisions)
    return d
