"""Cut the measurement window out of sampled series and turn it into energy figures.

ENERGY.md 'Per run': the window [t₀, t₁] comes from the worker's ``perf_counter_ns`` clock and
is cut out of the sampler's series on the same clock, interpolating linearly at the edges.
Counters give E(t₁) − E(t₀) ("counter-difference"); power sensors are integrated with the
trapezoid rule ("integrated-samples"); the TDP × load estimate is a "model". A window shorter
than 10 × the sensor's update period is flagged ``below_resolution`` and its energy is the
surrounding average power × T, never 0 J. A sensor that does not change for more than 10 × its
update period inside the window is flagged ``stale``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from wattbench.backends.sensors.base import Domain
from wattbench.domain.result import EnergyFigure

log = logging.getLogger(__name__)

FLAG_BELOW_RESOLUTION = "below_resolution"
FLAG_STALE = "stale"
FLAG_ESTIMATE = "estimate"
FLAG_THROTTLED = "throttled"
FLAG_INCOMPLETE = "incomplete"  # an aggregate misses a domain it should contain
FLAG_IDLE_UNSTABLE = "idle_unstable"
FLAG_CROSS_CHECK = "cross_check_mismatch"  # counter and integrated power disagree by > 5 %
CROSS_CHECK_MIN_S = 5.0
CROSS_CHECK_TOLERANCE = 0.05

METHOD_COUNTER = "counter-difference"
METHOD_INTEGRATED = "integrated-samples"
METHOD_MODEL = "model"
METHOD_MIXED = "mixed"

RESOLUTION_FACTOR = 10.0
STALE_FACTOR = 10.0


@dataclass
class DomainSeries:
    """What the sampler recorded for one domain (cumulative J for counters, W for power)."""

    domain: Domain
    t_ns: np.ndarray  # int64, perf_counter_ns
    values: np.ndarray  # float64: cumulative energy J (kind "energy") or power W ("power")
    used: bool = True  # enters the device/system sums
    flags: tuple[str, ...] = ()  # counter / source flags (wrap_corrected, whole_gpu_for_mig ...)
    lost_at_ns: int | None = None  # the source stopped answering at this time

    @property
    def is_estimate(self) -> bool:
        return self.domain.modelled

    @property
    def method(self) -> str:
        if self.is_estimate:
            return METHOD_MODEL
        return METHOD_COUNTER if self.domain.kind == "energy" else METHOD_INTEGRATED


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power per domain id, measured before the run until a rolling mean was stable."""

    power_w: Mapping[str, float]
    duration_s: float
    stable: bool
    window_s: float


@dataclass
class EnergyReport:
    figures: list[EnergyFigure] = field(default_factory=list)
    flags: tuple[str, ...] = ()
    na_reason: str | None = None  # set when no figure is a measurement
    domain_na: dict[str, str] = field(default_factory=dict)  # domain → why it has no figure
    # domain → counter energy ÷ integrated instantaneous power (NVML cross-check, windows ≥ 5 s)
    cross_checks: dict[str, float] = field(default_factory=dict)

    def figure(self, domain: str) -> EnergyFigure | None:
        for f in self.figures:
            if f.domain == domain:
                return f
        return None


class WindowError(Exception):
    """The window cannot be cut out of this series; the message says why."""


def _edge_value(t: np.ndarray, v: np.ndarray, at_ns: int, slack_ns: int) -> float:
    if at_ns < t[0] - slack_ns or at_ns > t[-1] + slack_ns:
        raise WindowError("the samples do not cover the measurement window")
    if at_ns < t[0] or at_ns > t[-1]:  # within the slack: extrapolate from the nearest pair
        i = 0 if at_ns < t[0] else len(t) - 2
        if len(t) < 2 or t[i + 1] == t[i]:
            return float(v[0] if at_ns < t[0] else v[-1])
        slope = (v[i + 1] - v[i]) / (t[i + 1] - t[i])
        return float(v[i] + slope * (at_ns - t[i]))
    return float(np.interp(float(at_ns), t.astype(np.float64), v))


def _span_power_w(s: DomainSeries, t0_ns: int, t1_ns: int, span_ns: int) -> float:
    """Average power over the samples enclosing a span ≥ span_ns centred on the window."""
    t, v = s.t_ns, s.values
    mid = (t0_ns + t1_ns) // 2
    half = max(span_ns, t1_ns - t0_ns) // 2
    i0 = max(0, int(np.searchsorted(t, mid - half, side="right")) - 1)
    i1 = min(len(t) - 1, int(np.searchsorted(t, mid + half, side="left")))
    if i1 <= i0:
        raise WindowError("too few samples around the window")
    if s.domain.kind == "energy":
        return float((v[i1] - v[i0]) / ((t[i1] - t[i0]) / 1e9))
    return float(np.mean(v[i0 : i1 + 1]))


def window_energy_j(
    s: DomainSeries, t0_ns: int, t1_ns: int, sample_period_s: float
) -> tuple[float, tuple[str, ...]]:
    """Energy of one domain in [t0, t1] and the flags the cut adds."""
    if s.lost_at_ns is not None and s.lost_at_ns <= t1_ns:
        raise WindowError("the sensor stopped answering during the window (device lost)")
    if len(s.t_ns) < 2:
        raise WindowError("fewer than two samples")
    if t1_ns <= t0_ns:
        raise WindowError("empty window")
    duration_s = (t1_ns - t0_ns) / 1e9
    resolution_s = RESOLUTION_FACTOR * s.domain.update_period_s
    slack_ns = int(1.5 * sample_period_s * 1e9)
    flags: list[str] = []
    if duration_s < resolution_s:
        flags.append(FLAG_BELOW_RESOLUTION)
        power_w = _span_power_w(s, t0_ns, t1_ns, int(resolution_s * 1e9))
        energy_j = power_w * duration_s
    elif s.domain.kind == "energy":
        e0 = _edge_value(s.t_ns, s.values, t0_ns, slack_ns)
        e1 = _edge_value(s.t_ns, s.values, t1_ns, slack_ns)
        energy_j = e1 - e0
    else:
        p0 = _edge_value(s.t_ns, s.values, t0_ns, slack_ns)
        p1 = _edge_value(s.t_ns, s.values, t1_ns, slack_ns)
        inside = (s.t_ns > t0_ns) & (s.t_ns < t1_ns)
        t = np.concatenate(([t0_ns], s.t_ns[inside], [t1_ns])).astype(np.float64) / 1e9
        p = np.concatenate(([p0], s.values[inside], [p1]))
        energy_j = float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2.0)
    if is_stale(s, t0_ns, t1_ns):
        flags.append(FLAG_STALE)
    if not energy_j > 0:
        raise WindowError("the sensor reported no energy in the window (stuck or switched off)")
    return energy_j, tuple(flags)


def is_stale(s: DomainSeries, t0_ns: int, t1_ns: int) -> bool:
    """True when the value stays the same for > 10 × update period (and ≥ 3 samples)."""
    if s.is_estimate:
        return False
    lo = max(0, int(np.searchsorted(s.t_ns, t0_ns, side="left")) - 1)
    hi = int(np.searchsorted(s.t_ns, t1_ns, side="right")) + 1
    t, v = s.t_ns[lo:hi], s.values[lo:hi]
    if len(v) < 3:
        return False
    limit_ns = STALE_FACTOR * s.domain.update_period_s * 1e9
    same = np.diff(v) == 0
    run_start: int | None = None
    for i, eq in enumerate(same):
        if eq and run_start is None:
            run_start = i
        if run_start is not None and (not eq or i == len(same) - 1):
            end = i + 1 if eq else i
            if end - run_start >= 2 and t[end] - t[run_start] > limit_ns:
                return True
            run_start = None
    return False


def _figure(
    domain: str,
    device: str,
    source: str,
    scope: str,
    method: str,
    energy_j: float,
    duration_s: float,
    items: int,
    idle_w: float | None,
    flags: Iterable[str],
) -> EnergyFigure:
    above = None
    if idle_w is not None:
        above = (energy_j - idle_w * duration_s) / items
    return EnergyFigure(
        domain=domain,
        device=device,
        source=source,
        scope=scope,
        method=method,
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=energy_j / duration_s,
        items=items,
        energy_per_item_j=energy_j / items,
        items_per_j=items / energy_j,
        idle_power_w=idle_w,
        energy_per_item_above_idle_j=above,
        flags=tuple(sorted(set(flags))),
    )


def compute_report(
    series: list[DomainSeries],
    t0_ns: int,
    t1_ns: int,
    items: int,
    idle: IdleBaseline | None,
    *,
    run_device: str,
    sample_period_s: float,
    throttled_devices: Iterable[str] = (),
    unreadable: Iterable[str] = (),
    rank_devices: Iterable[str] = (),
) -> EnergyReport:
    """Per-domain figures plus the aggregate 'device' and 'system' figures (ENERGY.md).

    ``rank_devices``: the devices of a data-parallel run's ranks; its 'device' figure sums
    them all (the run's items are every rank's), flagged incomplete where one has no figure."""
    if items < 1:
        raise ValueError(f"a window needs at least one inference (got {items})")
    report = EnergyReport()
    duration_s = (t1_ns - t0_ns) / 1e9
    throttled = set(throttled_devices)
    run_flags: set[str] = set()
    if idle is not None and not idle.stable:
        run_flags.add(FLAG_IDLE_UNSTABLE)
    parts: list[tuple[DomainSeries, EnergyFigure]] = []
    for s in series:
        dom = s.domain
        try:
            energy_j, cut_flags = window_energy_j(s, t0_ns, t1_ns, sample_period_s)
        except WindowError as exc:
            report.domain_na[dom.name] = str(exc)
            continue
        flags = set(s.flags) | set(cut_flags)
        if s.is_estimate:
            flags.add(FLAG_ESTIMATE)
        if dom.device in throttled:
            flags.add(FLAG_THROTTLED)
        idle_w = idle.power_w.get(dom.id) if idle is not None else None
        fig = _figure(
            dom.name,
            dom.device,
            dom.source,
            dom.scope,
            s.method,
            energy_j,
            duration_s,
            items,
            idle_w,
            flags,
        )
        report.figures.append(fig)
        parts.append((s, fig))
        run_flags |= flags - {FLAG_ESTIMATE}
    measured = [(s, f) for s, f in parts if s.used and not s.is_estimate]
    estimates = [(s, f) for s, f in parts if s.is_estimate]
    ranks = set(rank_devices)
    devices = {run_device, *ranks}
    lost_run_device = any(
        s.domain.device in devices and s.domain.name in report.domain_na for s in series
    )
    dev_parts = [(s, f) for s, f in measured if s.domain.device in devices]
    if not dev_parts:
        dev_parts = [(s, f) for s, f in estimates if s.domain.device in devices]
    # sensors that were readable at discovery but gave no figure for this window, and why
    lost = [
        (s.domain.device, f"{s.domain.name} ({s.domain.source}): {report.domain_na[s.domain.name]}")
        for s in series
        if s.domain.name in report.domain_na and not s.is_estimate
    ]
    failed = [text for _, text in lost]
    if dev_parts:
        unread = not ranks <= {s.domain.device for s, _ in dev_parts}  # a rank's device
        report.figures.append(
            _aggregate(
                "device",
                run_device,
                "device",
                dev_parts,
                duration_s,
                items,
                idle,
                lost_run_device or unread,
            )
        )
    else:
        why = [text for device, text in lost if device in devices] or list(unreadable)
        report.domain_na["device"] = f"no readable power sensor for {run_device}" + (
            ": " + "; ".join(why) if why else ""
        )
    sys_parts = measured or estimates
    if sys_parts:
        incomplete = lost_run_device or not any(s.domain.device in devices for s, _ in sys_parts)
        report.figures.append(
            _aggregate("system", "node", "system", sys_parts, duration_s, items, idle, incomplete)
        )
    if not measured:
        if failed:
            report.na_reason = "the power sensors gave no figure for this run (" + (
                "; ".join(failed) + ")"
            )
        else:
            reasons = "; ".join(unreadable) or "no power sensor found"
            report.na_reason = f"no power sensor can be read here ({reasons})"
        if estimates:
            report.na_reason += "; the figures shown are a TDP × load estimate"
    if throttled:
        run_flags.add(FLAG_THROTTLED)
    report.flags = tuple(sorted(run_flags))
    return report


def _aggregate(
    name: str,
    device: str,
    scope: str,
    parts: list[tuple[DomainSeries, EnergyFigure]],
    duration_s: float,
    items: int,
    idle: IdleBaseline | None,
    incomplete: bool,
) -> EnergyFigure:
    energy_j = sum(f.energy_j for _, f in parts)
    methods = {f.method for _, f in parts}
    flags = {fl for _, f in parts for fl in f.flags}
    if incomplete:
        flags.add(FLAG_INCOMPLETE)
    idle_w: float | None = None
    if idle is not None and all(s.domain.id in idle.power_w for s, _ in parts):
        idle_w = sum(idle.power_w[s.domain.id] for s, _ in parts)
    source = "+".join(f.source for _, f in parts)
    method = methods.pop() if len(methods) == 1 else METHOD_MIXED
    return _figure(name, device, source, scope, method, energy_j, duration_s, items, idle_w, flags)
