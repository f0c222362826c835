"""This process's memory on an NVIDIA GPU as NVML reports it, for the runtime plugins.

pynvml is imported here only, when asked; its errors become a note for the user.
"""

from __future__ import annotations

import os


def nvml_process_bytes(index: int) -> tuple[int | None, str | None]:
    """(bytes this process holds on GPU ``index``, None) or (None, why not)."""
    try:
        import pynvml
    except ImportError as exc:
        return None, f"GPU process memory: n/a (nvidia-ml-py is not installed: {exc})"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"GPU process memory: n/a (NVML: {exc})"
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        pid = os.getpid()
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == pid and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory), None
        return None, "GPU process memory: n/a (NVML lists no memory for this process)"
    except pynvml.NVMLError as exc:
        return None, f"GPU process memory: n/a (NVML: {exc})"
    finally:
        pynvml.nvmlShutdown()
