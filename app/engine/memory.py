"""The memory pass of a run: up to three extra iterations after the timed phases, apart from
them so that measuring memory cannot disturb timing (METHOD.md "What a run stores").

Host RSS is read here; device figures come from the runtime plugin that owns the device.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from wattbench.backends.runtimes.base import LoadedModel
from wattbench.domain.result import MemoryFigures

log = logging.getLogger(__name__)


def _peak_rss_bytes() -> tuple[int | None, str | None]:
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (int(peak) if sys.platform == "darwin" else int(peak) * 1024), None
    except ImportError:
        pass
    try:
        import psutil

        info = psutil.Process().memory_info()
        wset = getattr(info, "peak_wset", None)
        if wset is None:
            return None, "peak RSS: n/a (this platform reports no peak)"
        return int(wset), None
    except Exception as exc:  # psutil raises its own types per platform
        return None, f"peak RSS: n/a ({exc})"


MEMORY_CALLS = 3


def memory_pass(loaded: LoadedModel, one: Callable[[int], int]) -> MemoryFigures:
    """Peak memory from up to three extra iterations, after (and apart from) the timed phases.

    Host RSS is read here: the process's peak over its life, which the timed phases reached
    already. Device figures come from the runtime plugin that owns the device: an allocator's
    peak after one call, the device's per-process figure as the largest of three snapshots.
    A device with no figure at all (the CPU) gets one call.
    """
    loaded.reset_peak_memory()
    process_peak: int | None = None
    for _ in range(MEMORY_CALLS):
        one(1)
        device = loaded.peak_memory()
        if device.process_bytes is not None:
            process_peak = max(process_peak or 0, device.process_bytes)
        figures = (device.allocated_peak_bytes, device.reserved_peak_bytes, device.process_bytes)
        if all(f is None for f in figures):
            break
    device = loaded.peak_memory()
    rss, rss_note = _peak_rss_bytes()
    notes = [rss_note or "peak RSS is the worker process's peak over its life (load included)"]
    return MemoryFigures(
        peak_rss_bytes=rss,
        torch_allocated_peak_bytes=device.allocated_peak_bytes,
        torch_reserved_peak_bytes=device.reserved_peak_bytes,
        gpu_process_peak_bytes=process_peak,
        notes=(*notes, *device.notes),
    )
