"""Child processes that end with their parent: a run's worker, a model file's probe."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux, ``PR_SET_PDEATHSIG``:
    it acts even while this process holds the GIL in a call that never returns), and exit at
    once if ``parent_pid`` is already gone. The signal comes when the parent *thread* that
    started this process ends, so start children from a thread that outlives them. Elsewhere
    it does nothing: the caller needs its own watch."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        log.warning("cannot tie this process to its parent with prctl: %s", exc)
    if os.getppid() != parent_pid:  # the parent died before the tie was made
        os._exit(1)
