"""Device names as the runtimes read them: "cpu", "cuda:N" (ROCm builds too), "mps", "xpu:N"."""

from __future__ import annotations

from wattbench.domain.errors import DeviceError

KINDS = ("cpu", "cuda", "mps", "xpu")


def parse_device(device: str) -> tuple[str, int | None]:
    """("cuda", 0) from "cuda:0"; ("cpu", None) from "cpu". DeviceError when malformed."""
    kind, _, index = device.strip().lower().partition(":")
    if kind == "rocm":
        kind = "cuda"  # ROCm builds of torch expose AMD GPUs as cuda devices
    if kind not in KINDS:
        raise DeviceError(
            f"Unknown device {device!r}: use cpu, cuda:N, mps or xpu:N (see the device list).",
            field="device",
        )
    if not index:
        return kind, (0 if kind in ("cuda", "xpu") else None)
    if kind in ("cpu", "mps"):
        raise DeviceError(
            f"Device {device!r}: {kind} takes no index; write {kind} (one CPU device covers "
            "every core; set fewer threads to use fewer)."
            if kind == "cpu"
            else f"Device {device!r}: mps takes no index; write mps.",
            field="device",
        )
    if not index.isdigit():
        raise DeviceError(
            f"Cannot read the device {device!r}: the index must be a number, e.g. {kind}:0."
        )
    return kind, int(index)


def torch_device(device: str) -> str:
    """The name torch gives the device: "cuda:0", "cpu"."""
    kind, index = parse_device(device)
    return kind if index is None else f"{kind}:{index}"
