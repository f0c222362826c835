"""What can be run, and where: the model catalog, the compute devices and the power sensors.

Every front end asks here: ``wattbench models/devices/sensors`` print these values, the GUI's
New run and Sensors pages draw them. Listing devices imports the runtimes (torch ...): call it
off a GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wattbench.backends import devices as device_probe
from wattbench.backends import system
from wattbench.backends.models import catalog
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes import registry
from wattbench.backends.runtimes.base import Availability, DeviceInfo
from wattbench.domain.errors import WattbenchError
from wattbench.domain.events import CancelToken
from wattbench.energy.doctor import Diagnosis, SensorReport
from wattbench.energy.doctor import sensor_report as _sensor_report

log = logging.getLogger(__name__)

GPU_KINDS = ("cuda", "rocm")


# -- models -----------------------------------------------------------------------------------


def list_models() -> list[ModelEntry]:
    """Every model known by name: the built-ins, then the onnx package's test models."""
    return catalog.list_models()


def describe_model(
    ref: str,
    *,
    dims: Mapping[str, int] | None = None,
    batch: int | None = None,
    input_shapes: Mapping[str, str] | None = None,
    cancel: CancelToken | None = None,
) -> ModelEntry:
    """One model (a catalog ref, a bare catalog name or a file) with its inputs checked.

    With ``dims`` or ``batch`` given, every dynamic dimension must be set (ShapeError says
    which is not); the batch defaults to a file's own fixed batch. A file is read in a probe
    process (never in the caller's), which ``cancel`` or Ctrl-C stops.
    """
    checked: dict[str, int] | None = None
    if dims is not None or batch is not None:
        checked = dict(dims or {})
        if batch is not None:
            checked[catalog.BATCH] = batch
    return catalog.resolve_model(
        catalog.canonical_ref(ref),
        dims=checked,
        input_shapes=dict(input_shapes or {}) or None,
        cancel=cancel,
    )


# -- sensors ----------------------------------------------------------------------------------


def sensor_report(sys_root: str | Path | None = None) -> SensorReport:
    """Every power source with its status, why and fix (each source opened once, closed)."""
    return _sensor_report(sys_root)


# -- devices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceChoice:
    """A compute device with what each runtime says about it and its power sources."""

    id: str  # "cpu", "cuda:0"
    kind: str
    name: str
    runtimes: Mapping[str, DeviceInfo]  # runtime name -> what that runtime reports
    power: tuple[Diagnosis, ...] = ()

    def usable_with(self, runtime: str) -> tuple[bool, str]:
        info = self.runtimes.get(runtime)
        if info is None:
            return False, f"{runtime} does not see {self.id}"
        return info.usable, info.reason

    def precisions(self, runtime: str) -> tuple[str, ...]:
        info = self.runtimes.get(runtime)
        return info.precisions if info is not None else ()


@dataclass(frozen=True)
class DeviceInventory:
    """The devices every runtime reaches, the runtimes themselves, and the CPU."""

    devices: tuple[DeviceChoice, ...]
    runtimes: Mapping[str, Availability] = field(default_factory=dict)
    formats: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # runtime -> formats
    cpu: Mapping[str, Any] = field(default_factory=dict)
    infos: tuple[DeviceInfo, ...] = ()  # one per (runtime, device), as the runtimes list them
    notes: tuple[str, ...] = ()  # e.g. "onnxruntime is not usable: ..."

    def device(self, device_id: str) -> DeviceChoice | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def problem(self, model_format: str, device: str, runtime: str, precision: str) -> str | None:
        """Why this device × runtime × precision cannot run a model of this format, or None
        (the plan's quick check; the runtime's own check follows before anything runs)."""
        choice = self.device(device)
        if choice is None:
            return f"{device} is not among the devices found"
        formats = self.formats.get(runtime)
        if formats is not None and model_format not in formats:
            return f"{runtime} cannot load {model_format} models"
        usable, reason = choice.usable_with(runtime)
        if not usable:
            return f"{runtime} cannot use {device}: {reason}"
        precisions = choice.precisions(runtime)
        if precisions and precision not in precisions:
            return f"{runtime} on {device} cannot run {precision} (it can run " + (
                f"{', '.join(precisions)})"
            )
        return None


def _power_of(device: DeviceChoice, report: SensorReport) -> tuple[Diagnosis, ...]:
    return tuple(
        d
        for d in report.diagnoses
        if d.device == device.id
        or (device.id == "cpu" and d.device in ("cpu", "dram", "node"))
        # a GPU source that found no GPU says why under every GPU entry
        or (d.device == "gpu" and device.kind in GPU_KINDS)
    )


def device_inventory(
    runtimes: Sequence[str] | None = None, *, with_sensors: bool = True
) -> DeviceInventory:
    """Devices as each runtime (all registered ones by default) sees them, grouped by device,
    each with its power sources when ``with_sensors``."""
    names = list(runtimes or registry.runtime_names())
    for name in names:
        registry.get_runtime(name)  # an unknown name is a clear error
    status = {n: a for n, a in device_probe.runtime_status().items() if n in names}
    notes = [f"{n} is not usable: {a.reason}" for n, a in status.items() if not a.ok]
    notes += [f"runtime plugin {n}: {why}" for n, why in registry.broken_plugins().items()]
    infos = device_probe.list_devices(names)
    report = None
    if with_sensors:
        try:
            report = sensor_report()
        except WattbenchError as exc:
            log.warning("sensor diagnosis failed: %s", exc)
            notes.append(f"power sensors could not be listed: {exc}")
    by_device: dict[str, list[DeviceInfo]] = {}
    for info in infos:
        by_device.setdefault(info.id, []).append(info)
    choices = []
    for dev_id, group in by_device.items():
        best = next((g for g in group if g.usable), group[0])
        choice = DeviceChoice(dev_id, best.kind, best.name, {g.runtime: g for g in group})
        if report is not None:
            choice = DeviceChoice(
                choice.id, choice.kind, choice.name, choice.runtimes, _power_of(choice, report)
            )
        choices.append(choice)
    return DeviceInventory(
        devices=tuple(choices),
        runtimes=status,
        formats={n: registry.loadable_formats(n) for n in names},
        cpu=system.cpu_summary(),
        infos=tuple(infos),
        notes=tuple(notes),
    )
