"""AMD GPUs through amdsmi (ROCm ≥ 6.3), an optional extra, imported here only.

Energy = accumulator × counter resolution (µJ), read as a cumulative counter; when the
accumulator is unavailable, ``current_socket_power`` (W) is integrated. On MI250 one die
reports for both: such a card shows as one device and the status says so. Only the
'amdsmi absent' path is tested on this project's machines (no AMD GPU was available).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from wattbench.backends.sensors.base import Domain, Reading, SourceContext, SourceDefaults
from wattbench.backends.sensors.common import (
    STATUS_ABSENT,
    STATUS_OK,
    STATUS_UNREADABLE,
    DomainStatus,
)
from wattbench.domain.errors import SensorError

log = logging.getLogger(__name__)

AMDSMI_FIX = (
    "install the amdsmi Python package that ships with ROCm ≥ 6.3 (/opt/rocm/share/amd_smi)"
)


@dataclass
class _Gpu:
    index: int
    handle: Any
    domain: Domain
    method: str  # "energy" | "power"


class AmdSmiSource(SourceDefaults):
    """Every AMD GPU amdsmi sees; ``statuses`` says why one cannot be measured."""

    name = "amdsmi"
    device_class = "gpu"

    @classmethod
    def open(cls, ctx: SourceContext) -> AmdSmiSource:
        """The entry point factory (``ctx.modules["amdsmi"]`` replaces the real module)."""
        return cls(ctx.modules.get("amdsmi"))

    def __init__(self, amdsmi_module: Any = None) -> None:
        self.statuses: list[DomainStatus] = []
        self._gpus: list[_Gpu] = []
        self._mod: Any = None
        mod = amdsmi_module
        if mod is None:
            try:
                import amdsmi

                mod = amdsmi
            except ImportError:
                self._absent("the amdsmi package is not installed (no ROCm)", AMDSMI_FIX)
                return
            except Exception as exc:  # amdsmi raises from import when libamd_smi is missing
                self._absent(f"amdsmi cannot load: {exc}", AMDSMI_FIX)
                return
        self._error_type: type[BaseException] = getattr(mod, "AmdSmiException", Exception)
        try:
            mod.amdsmi_init()
            handles = list(mod.amdsmi_get_processor_handles())
        except self._error_type as exc:
            self._absent(f"amdsmi could not start: {exc}", None)
            return
        self._mod = mod
        if not handles:
            self._absent("amdsmi sees no AMD GPU", None)
        for i, handle in enumerate(handles):
            self._add_gpu(i, handle)

    def _absent(self, why: str, fix: str | None) -> None:
        self.statuses.append(
            DomainStatus(
                source="amdsmi",
                id="amdsmi",
                name="amdsmi",
                device="",
                status=STATUS_ABSENT,
                why=why,
                fix=fix,
                path="amdsmi",
            )
        )

    def _add_gpu(self, i: int, handle: Any) -> None:
        mod = self._mod
        did, device = f"amdsmi:{i}", f"rocm:{i}"
        method = ""
        try:
            mod.amdsmi_get_energy_count(handle)
            method = "energy"
        except self._error_type:
            try:
                mod.amdsmi_get_power_info(handle)
                method = "power"
            except self._error_type as exc:
                self.statuses.append(
                    DomainStatus(
                        source="amdsmi",
                        id=did,
                        name=f"gpu{i}",
                        device=device,
                        status=STATUS_UNREADABLE,
                        why=f"no energy or power reading: {exc}",
                        path="amdsmi",
                    )
                )
                return
        domain = Domain(
            id=did,
            name=f"gpu{i}",
            device=device,
            source="amdsmi.energy_accumulator" if method == "energy" else "amdsmi.socket_power∫",
            scope="gpu-board",
            kind="energy" if method == "energy" else "power",
            unit="uJ" if method == "energy" else "W",
            update_period_s=0.001 if method == "energy" else 0.1,
            max_range=None,
            max_power_w=1000.0,
            label=f"AMD GPU {i}",
        )
        self._gpus.append(_Gpu(i, handle, domain, method))
        self.statuses.append(
            DomainStatus(
                source="amdsmi",
                id=did,
                name=f"gpu{i}",
                device=device,
                status=STATUS_OK,
                path=domain.source,
                domain=domain,
            )
        )

    def domains(self) -> list[Domain]:
        return [g.domain for g in self._gpus]

    def _value(self, g: _Gpu) -> float:
        """µJ for the accumulator (ROCm ≥ 6.1 names it ``energy_accumulator``, older ``power``)
        or W for socket power; ValueError for 'N/A' and other non-numbers."""
        if g.method == "energy":
            info = self._mod.amdsmi_get_energy_count(g.handle)
            acc = info.get("energy_accumulator", info.get("power"))
            return float(acc) * float(info["counter_resolution"])
        info = self._mod.amdsmi_get_power_info(g.handle)
        return float(info.get("current_socket_power", info.get("average_socket_power")))

    def read(self) -> list[Reading]:
        out: list[Reading] = []
        for g in self._gpus:
            try:
                value = self._value(g)
            except self._error_type as exc:
                log.debug("amdsmi: %s unreadable this tick: %s", g.domain.id, exc)
                continue
            except (TypeError, ValueError) as exc:  # "N/A" or a missing field this tick
                log.debug("amdsmi: %s gave no number: %s", g.domain.id, exc)
                continue
            except KeyError as exc:
                raise SensorError(f"amdsmi returned an unexpected record: {exc}") from exc
            out.append(Reading(g.domain.id, time.perf_counter_ns(), value))
        return out

    def close(self) -> None:
        if self._mod is not None:
            with contextlib.suppress(self._error_type):
                self._mod.amdsmi_shut_down()
            self._mod = None
        self._gpus = []
