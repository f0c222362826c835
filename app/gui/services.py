"""The GUI's calls into the engine, the store, the catalog and the sensors (no Qt here).

Every function runs off the GUI thread (the controller calls them from its threads) and
imports what it needs inside, so that the window appears before torch, onnxruntime or
SQLAlchemy are loaded. Results are plain immutable values that the widgets can draw.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wattbench.domain.errors import WattbenchError
from wattbench.domain.events import CancelToken, ProgressEvent
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec

if TYPE_CHECKING:
    from wattbench.backends.models.base import ModelEntry
    from wattbench.backends.runtimes.base import DeviceInfo
    from wattbench.domain.cost import CostProfile
    from wattbench.engine.compare import Comparison

log = logging.getLogger(__name__)


# -- store ---------------------------------------------------------------------------------


def open_store(url: str | None) -> Any:
    from wattbench.db.store import open_store as _open

    return _open(url)


def close_store(store: Any) -> None:
    close = getattr(store, "close", None) or getattr(store, "dispose", None)
    if close is not None:
        try:
            close()
        except Exception:  # closing is best effort
            log.debug("closing the store failed", exc_info=True)


def describe_store(store: Any, url: str | None) -> str:
    """Where the store is (its own description, or its URL with any password hidden)."""
    describe = getattr(store, "describe", None)
    if callable(describe):
        try:
            return str(describe())
        except WattbenchError as exc:
            log.warning("could not describe the store: %s", exc)
    text = str(getattr(store, "url", None) or url or "")
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", text)


def list_runs(store: Any, *, limit: int) -> list[Any]:
    return list(store.list_runs(limit=limit, order="-created"))


def delete_cost_profile(store: Any, device: str, name: str) -> None:
    store.delete_cost_profile(device, name)


# -- catalog and devices -------------------------------------------------------------------


def list_models() -> list[ModelEntry]:
    from wattbench.backends.models.catalog import list_models as _list

    return list(_list())


def resolve_model(
    path: str, dims: Mapping[str, int] | None, input_shapes: Mapping[str, str] | None
) -> ModelEntry:
    from wattbench.backends.models.catalog import resolve_model as _resolve

    return _resolve(
        path,
        dims=dict(dims) if dims else None,
        input_shapes=dict(input_shapes) if input_shapes else None,
    )


@dataclass(frozen=True)
class PowerStatus:
    """One power source as the sensors diagnosis sees it, shown beside its device."""

    name: str  # "RAPL package-0", "NVML gpu0"
    status: str  # ok | warning | unavailable
    detail: str  # why, in words
    fix: str = ""


@dataclass(frozen=True)
class DeviceChoice:
    """A compute device with what each runtime says about it and its power sources."""

    id: str  # "cpu", "cuda:0"
    kind: str
    name: str
    runtimes: Mapping[str, DeviceInfo]  # runtime name -> what that runtime reports
    power: tuple[PowerStatus, ...] = ()

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
    devices: tuple[DeviceChoice, ...]
    notes: tuple[str, ...] = ()  # e.g. "onnxruntime is not installed"


@dataclass(frozen=True)
class SensorReport:
    """The `wattbench sensors` diagnosis as rows the Sensors page shows."""

    rows: tuple[PowerStatus, ...]
    devices: tuple[str, ...] = ()  # device of each row ("cpu", "cuda:0", "node")
    summary: str = ""
    raw: Any = None


def _runtime_devices() -> tuple[list[DeviceInfo], list[str]]:
    """Every device each registered runtime reports (the Runtime protocol's devices())."""
    try:
        from wattbench.backends.devices import list_devices
    except ModuleNotFoundError as exc:
        if exc.name != "wattbench.backends.devices":
            raise
    else:
        return list(list_devices()), []
    from wattbench.backends.runtimes.registry import get_runtime, runtime_names

    infos: list[DeviceInfo] = []
    notes: list[str] = []
    for name in runtime_names():
        try:
            runtime = get_runtime(name)
            available = runtime.available()
            if not available.ok:
                notes.append(f"{name} is not usable: {available.reason}")
                continue
            infos += runtime.devices()
        except WattbenchError as exc:
            notes.append(f"{name}: {exc}")
    return infos, notes


def device_inventory() -> DeviceInventory:
    infos, notes = _runtime_devices()
    try:
        report = sensor_report()
    except WattbenchError as exc:
        log.warning("sensor diagnosis failed: %s", exc)
        report = SensorReport(rows=(), summary=str(exc))
    by_device: dict[str, list[DeviceInfo]] = {}
    for info in infos:
        by_device.setdefault(info.id, []).append(info)
    devices = []
    for dev_id, group in by_device.items():
        best = next((g for g in group if g.usable), group[0])
        power = tuple(
            row
            for row, dev in zip(report.rows, report.devices, strict=False)
            if dev == dev_id
            or (dev_id == "cpu" and dev in ("cpu", "dram", "node"))
            # a GPU source that found no GPU says why under every GPU entry
            or (dev == "gpu" and best.kind in ("cuda", "rocm"))
        )
        devices.append(
            DeviceChoice(
                id=dev_id,
                kind=best.kind,
                name=best.name,
                runtimes={g.runtime: g for g in group},
                power=power,
            )
        )
    if report.summary and not report.rows:
        notes.append(report.summary)
    return DeviceInventory(tuple(devices), tuple(notes))


def sensor_report() -> SensorReport:
    """Diagnose every power source (the `wattbench sensors` view)."""
    import importlib

    try:
        doctor: Any = importlib.import_module("wattbench.energy.doctor")
    except ImportError:
        doctor = None
    if doctor is not None and hasattr(doctor, "diagnose"):
        diagnosis: Any = doctor.diagnose()
        items = getattr(diagnosis, "items", diagnosis)
    else:  # the sensor inventory itself: every domain found, readable or not, and why
        from wattbench.backends.sensors.discovery import inventory

        diagnosis = inventory()
        diagnosis.close()
        items = diagnosis.statuses
    rows: list[PowerStatus] = []
    devices: list[str] = []
    for item in items:
        why = getattr(item, "why", None) or getattr(item, "note", None) or ""
        source = str(getattr(item, "source", "") or "")
        name = str(getattr(item, "name", "") or "")
        rows.append(
            PowerStatus(
                name=f"{source} {name}".strip() if source and source not in name else name,
                status=str(getattr(item, "status", "")),
                detail=str(why),
                fix=str(getattr(item, "fix", "") or ""),
            )
        )
        devices.append(str(getattr(item, "device", "")))
    return SensorReport(tuple(rows), tuple(devices), raw=diagnosis)


# -- runs ----------------------------------------------------------------------------------


def validate_specs(specs: Sequence[RunSpec]) -> None:
    """Check every distinct configuration before anything is queued; one message for all."""
    from wattbench.engine.runner import validate_many

    validate_many(list(specs))


def run_one(
    spec: RunSpec,
    *,
    pending: RunResult,
    progress: Callable[[ProgressEvent], None],
    cancel: CancelToken,
    run_index: int,
    run_count: int,
) -> RunResult:
    """Run one spec in a worker process; the result keeps the id under which it was begun."""
    from wattbench.engine.runner import run_one as _run_one

    try:
        result = _run_one(
            spec, progress, cancel, run_index, run_count, run_id=pending.id, validated=True
        )
    except WattbenchError as exc:  # run_one should not raise; keep the queue going if it does
        result = pending.with_(status=RunStatus.FAILED, reason=str(exc))
    return result.with_(id=pending.id, created_at=pending.created_at)


# -- comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonView:
    """A comparison with the runs behind it, ready to draw."""

    comparison: Comparison
    runs: tuple[RunResult, ...]
    baseline_id: str | None
    energy_view: str
    cost_profiles: Mapping[str, CostProfile] = field(default_factory=dict)


def build_comparison(
    runs: Sequence[RunResult],
    *,
    baseline_id: str | None,
    energy_view: str,
    noise: float,
    cost_profiles: Mapping[str, CostProfile] | None = None,
) -> ComparisonView:
    from wattbench.engine.compare import compare_runs

    comparison = compare_runs(
        runs,
        baseline_id=baseline_id,
        noise=noise,
        energy_view=energy_view,
        cost_profiles=cost_profiles,
    )
    return ComparisonView(
        comparison, tuple(runs), baseline_id, energy_view, dict(cost_profiles or {})
    )


def report_available() -> tuple[bool, str]:
    try:
        from wattbench import reports
    except ImportError as exc:
        return False, f"Reports are not available: {exc}"
    if not hasattr(reports, "write_report"):
        return False, "Report export is not available in this version of Wattbench."
    return True, ""


def write_report(runs: Sequence[RunResult], path: str, *, baseline_id: str | None) -> None:
    from wattbench import reports

    reports.write_report(list(runs), path, baseline_id=baseline_id)
