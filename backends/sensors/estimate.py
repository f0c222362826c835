"""A TDP × load model for a CPU with no readable sensor: always labelled **estimate**.

P = TDP × (idle fraction + (1 − idle fraction) × CPU load), the load being the busy share of
all CPU time since the previous read (/proc/stat, else ``psutil.cpu_times``; no subprocess).
The TDP comes from ``$WATTBENCH_CPU_TDP_W`` when set, else from a rough per-core figure; the
domain's label says which, so nobody mistakes it for a measurement. Its figures carry method
"model" and the flag ``estimate`` and are never ranked with measured ones.
"""

from __future__ import annotations

import logging
import os
import time

import psutil
from wattbench.backends.sensors.base import Domain, Reading, SourceContext, SourceDefaults
from wattbench.backends.sensors.common import STATUS_OK, DomainStatus

log = logging.getLogger(__name__)

TDP_ENV = "WATTBENCH_CPU_TDP_W"
WATTS_PER_CORE_GUESS = 10.0
MIN_TDP_W = 15.0
IDLE_FRACTION = 0.3
ESTIMATE_DOMAIN_ID = "estimate:cpu"


def cpu_tdp_w() -> tuple[float, str]:
    """The TDP used by the model and where it came from."""
    env = os.environ.get(TDP_ENV)
    if env:
        try:
            value = float(env)
            if value > 0:
                return value, f"${TDP_ENV}"
        except ValueError:
            log.warning("ignoring %s=%r: not a number", TDP_ENV, env)
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    return max(MIN_TDP_W, WATTS_PER_CORE_GUESS * cores), (
        f"guess: {WATTS_PER_CORE_GUESS:g} W × {cores} cores (set ${TDP_ENV} for your CPU)"
    )


class EstimateSource(SourceDefaults):
    """One power domain, ``estimate:cpu``, modelled from TDP and CPU load."""

    name = "estimate"
    device_class = "cpu"
    fallback = True  # only for a CPU no measured source covers

    @classmethod
    def open(cls, ctx: SourceContext) -> EstimateSource:
        """The entry point factory."""
        return cls()

    def __init__(self, tdp_w: float | None = None) -> None:
        if tdp_w is None:
            self.tdp_w, self.tdp_origin = cpu_tdp_w()
        else:
            self.tdp_w, self.tdp_origin = tdp_w, "given"
        self._domain = Domain(
            id=ESTIMATE_DOMAIN_ID,
            name="cpu-estimate",
            device="cpu",
            source="estimate.tdp",
            scope="cpu-package",
            kind="power",
            unit="W",
            update_period_s=0.1,
            max_range=None,
            max_power_w=self.tdp_w * 2.0,
            label=f"estimate: TDP {self.tdp_w:g} W ({self.tdp_origin}) × CPU load",
            modelled=True,
        )
        self._stat_fd: int | None = None
        try:
            self._stat_fd = os.open("/proc/stat", os.O_RDONLY)
        except OSError:
            self._stat_fd = None  # not Linux: psutil reads the platform's own counters
        self._last = self._cpu_busy_idle()
        self.statuses = [
            DomainStatus(
                source="estimate",
                id=ESTIMATE_DOMAIN_ID,
                name="cpu-estimate",
                device="cpu",
                status=STATUS_OK,
                path="/proc/stat",
                domain=self._domain,
                note=f"ESTIMATE, not a measurement: TDP {self.tdp_w:g} W ({self.tdp_origin}) × "
                f"load; kept apart from measured figures",
            )
        ]

    def domains(self) -> list[Domain]:
        return [self._domain]

    def _cpu_busy_idle(self) -> tuple[float, float]:
        """(total, idle) CPU time so far; /proc/stat's first line read with one pread."""
        if self._stat_fd is not None:
            try:
                line = os.pread(self._stat_fd, 256, 0).split(b"\n", 1)[0].split()
                values = [float(x) for x in line[1:9]]  # user nice system idle iowait ...steal
                return sum(values), values[3] + values[4]
            except (OSError, ValueError, IndexError):
                pass
        t = psutil.cpu_times()
        return sum(t), t.idle + getattr(t, "iowait", 0.0)

    def load(self) -> float:
        """Busy share of all CPUs since the previous call (0..1)."""
        now = self._cpu_busy_idle()
        prev, self._last = self._last, now
        total = now[0] - prev[0]
        if total <= 0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - (now[1] - prev[1]) / total))

    def modelled_idle_w(self, domain_id: str) -> float | None:
        """The model's power at zero load (an estimate too)."""
        return self.tdp_w * IDLE_FRACTION if domain_id == ESTIMATE_DOMAIN_ID else None

    def read(self) -> list[Reading]:
        power_w = self.tdp_w * (IDLE_FRACTION + (1.0 - IDLE_FRACTION) * self.load())
        return [Reading(ESTIMATE_DOMAIN_ID, time.perf_counter_ns(), power_w)]

    def close(self) -> None:
        if self._stat_fd is not None:
            os.close(self._stat_fd)
            self._stat_fd = None
