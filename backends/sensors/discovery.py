"""Find every power source of this machine in well under a second, without a subprocess.

Sources are the plugins registered in the ``wattbench.power_sources`` entry point group (the
built-ins register there as a third party would). ``inventory`` opens each one, in order of
precedence, and keeps the status of every domain it found, readable or not. Overlaps are
resolved by the source that knows them (``PowerSource.repeats``: hwmon sensors that repeat
RAPL packages or an amdsmi card are shown but never summed). A fallback source (the TDP ×
load estimate) is kept only for devices no measured source covers.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wattbench.backends.sensors.base import PowerSource, SourceContext
from wattbench.backends.sensors.common import STATUS_OK, DomainStatus

log = logging.getLogger(__name__)

GROUP = "wattbench.power_sources"

SourceFactory = Callable[[SourceContext], PowerSource]


@dataclass
class Inventory:
    """The open sources (readable domains only) and the status of everything found."""

    sources: list[PowerSource] = field(default_factory=list)
    statuses: list[DomainStatus] = field(default_factory=list)
    duration_s: float = 0.0

    def used(self, domain_id: str) -> bool:
        """Whether a readable domain enters the device/system sums."""
        for st in self.statuses:
            if st.id == domain_id:
                return st.used
        return False

    def close(self) -> None:
        for src in self.sources:
            try:
                src.close()
            except Exception as exc:  # closing must never fail a run
                log.debug("closing %s: %s", src.name, exc)
        self.sources = []


@functools.cache
def factories() -> dict[str, SourceFactory]:
    """name -> factory of every power source plugin found (a broken one is skipped)."""
    from importlib.metadata import entry_points

    found: dict[str, SourceFactory] = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the others
            log.warning("power source plugin %s (%s) cannot be loaded: %s", ep.name, ep.value, exc)
    return found


def _open(name: str, factory: SourceFactory, ctx: SourceContext) -> PowerSource | None:
    try:
        return factory(ctx)
    except Exception as exc:  # a plugin's bug is a status, never a failed run
        log.warning("power source %s cannot be opened: %s", name, exc)
        return None


def _add(inv: Inventory, src: PowerSource) -> None:
    earlier = list(inv.statuses)
    for st in src.statuses:
        if not st.device:
            st = dataclasses.replace(st, device=src.device_class)
        why = src.repeats(st, earlier)
        if why is not None:
            st = dataclasses.replace(st, used=False, note=why)
        inv.statuses.append(st)
    if src.domains():
        inv.sources.append(src)
    else:
        src.close()


def inventory(
    sys_root: str | Path | None = None,
    nvml_module: Any = None,
    *,
    amdsmi_module: Any = None,
    with_estimate: bool = True,
) -> Inventory:
    """Open every source; statuses for all domains, including unreadable and absent ones."""
    t0 = time.perf_counter()
    ctx = SourceContext(
        sys_root=str(sys_root) if sys_root is not None else None,
        modules={"pynvml": nvml_module, "amdsmi": amdsmi_module},
    )
    opened = [
        src
        for name, factory in sorted(factories().items())
        if (src := _open(name, factory, ctx)) is not None
    ]
    opened.sort(key=lambda src: (src.fallback, src.precedence, src.name))
    inv = Inventory()
    for src in opened:
        if not src.fallback:
            _add(inv, src)
            continue
        covered = {st.device for st in inv.statuses if st.status == STATUS_OK and st.used}
        needed = [d for d in src.domains() if d.device not in covered]
        if with_estimate and needed:
            _add(inv, src)
        else:
            src.close()
    inv.duration_s = time.perf_counter() - t0
    return inv


def discover(sys_root: str | Path | None = None, nvml_module: Any = None) -> list[PowerSource]:
    """Every readable power source (the estimate last, when the CPU has no sensor)."""
    return inventory(sys_root, nvml_module).sources
