"""The power sampler that runs in the supervisor during every run.

A daemon thread reads every open source at ``spec.sample_hz`` (10 Hz by default, and never
less often than a counter's safe poll interval) and stamps each reading with
``time.perf_counter_ns`` — the clock the worker times inferences with (``clock`` in
wattbench.engine.timing), which is CLOCK_MONOTONIC on Linux and system-wide, so the worker's
[t₀, t₁] can be cut out of these series exactly. Raw counter values go through
wattbench.energy.counters; the figures come from wattbench.energy.figures.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from wattbench.backends.runtimes import torch_ddp
from wattbench.backends.runtimes.device_names import torch_device
from wattbench.backends.sensors.base import THROTTLED, Domain, PowerSource
from wattbench.backends.sensors.common import STATUS_OK
from wattbench.backends.sensors.discovery import Inventory, inventory
from wattbench.domain.errors import SensorError
from wattbench.domain.result import Trace
from wattbench.domain.spec import RunSpec
from wattbench.energy.counters import EnergyCounter, PowerGauge, min_poll_interval_s
from wattbench.energy.figures import (
    CROSS_CHECK_MIN_S,
    CROSS_CHECK_TOLERANCE,
    FLAG_CROSS_CHECK,
    DomainSeries,
    EnergyReport,
    IdleBaseline,
    WindowError,
    compute_report,
    window_energy_j,
)

log = logging.getLogger(__name__)

IDLE_WINDOW_S = 5.0
IDLE_MAX_S = 20.0
IDLE_TOLERANCE = 0.02
IDLE_STEP_S = 1.0


@dataclass
class _Track:
    domain: Domain
    source: PowerSource
    counter: EnergyCounter | None
    gauge: PowerGauge | None
    used: bool
    t_ns: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    lost_at_ns: int | None = None
    last_power_w: float | None = None


class Sampler:
    """Samples every readable domain in a background thread; see module docstring."""

    def __init__(
        self,
        spec: RunSpec,
        inv: Inventory,
        *,
        sample_hz: float | None = None,
        idle_window_s: float = IDLE_WINDOW_S,
        idle_max_s: float = IDLE_MAX_S,
    ) -> None:
        self.spec = spec
        self.inventory = inv
        hz = sample_hz if sample_hz is not None else spec.sample_hz
        if not hz > 0:
            raise ValueError(f"sample rate must be positive (got {hz})")
        self.idle_window_s = idle_window_s
        self.idle_max_s = idle_max_s
        self._tracks: dict[str, _Track] = {}
        poll_s = 1.0 / hz
        for src in inv.sources:
            for dom in src.domains():
                counter = gauge = None
                if dom.kind == "energy":
                    counter = EnergyCounter(
                        dom.unit, dom.max_range, dom.max_power_w, dom.update_period_s
                    )
                    poll_s = min(
                        poll_s, min_poll_interval_s(dom.max_range, dom.unit, dom.max_power_w)
                    )
                else:
                    gauge = PowerGauge(dom.unit, dom.max_power_w)
                self._tracks[dom.id] = _Track(dom, src, counter, gauge, inv.used(dom.id))
        self.period_s = poll_s
        self._telemetry: dict[str, tuple[str, list[int], list[float]]] = {}
        self._lost_sources: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = threading.Event()  # ends an idle baseline still running in a thread
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    # -- sampling --------------------------------------------------------------------------
    def sample_once(self) -> None:
        """Read every source once and record the readings (also used by tests and idle)."""
        for src in self.inventory.sources:
            if id(src) in self._lost_sources:
                continue
            try:
                readings = src.read()
                telemetry = src.read_telemetry()
            except SensorError as exc:
                self._source_lost(src, str(exc))
                continue
            except Exception as exc:  # a sensor bug must not kill the run
                log.warning("power source %s failed: %s", src.name, exc)
                self._source_lost(src, f"{src.name}: {exc}")
                continue
            with self._lock:
                for r in readings:
                    self._record(r.domain_id, r.t_ns, r.value)
                for name, unit, t_ns, value in telemetry:
                    tr = self._telemetry.setdefault(name, (unit, [], []))
                    tr[1].append(t_ns)
                    tr[2].append(value)

    def _record(self, domain_id: str, t_ns: int, raw: float) -> None:
        tr = self._tracks.get(domain_id)
        if tr is None:
            return
        if tr.counter is not None:
            energy_j = tr.counter.feed(t_ns, raw)
            if energy_j is None:
                return
            if tr.t_ns and t_ns > tr.t_ns[-1]:
                tr.last_power_w = (energy_j - tr.values[-1]) / ((t_ns - tr.t_ns[-1]) / 1e9)
            tr.t_ns.append(t_ns)
            tr.values.append(energy_j)
        elif tr.gauge is not None:
            power_w = tr.gauge.feed(raw)
            if power_w is None:
                return
            tr.last_power_w = power_w
            tr.t_ns.append(t_ns)
            tr.values.append(power_w)

    def _source_lost(self, src: PowerSource, why: str) -> None:
        now = time.perf_counter_ns()
        self._lost_sources.add(id(src))
        self.errors.append(why)
        log.warning("power source lost: %s", why)
        with self._lock:
            for tr in self._tracks.values():
                if tr.source is src and tr.lost_at_ns is None:
                    tr.lost_at_ns = now

    def _loop(self) -> None:
        period_ns = int(self.period_s * 1e9)
        next_ns = time.perf_counter_ns()
        while not self._stop.is_set():
            self.sample_once()
            next_ns += period_ns
            now = time.perf_counter_ns()
            if next_ns < now:  # overran (a slow read): skip ahead instead of bursting
                next_ns = now + period_ns
            self._stop.wait((next_ns - now) / 1e9)

    def start(self) -> None:
        """Start the background thread (one sample is taken at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="wattbench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one final sample, so the series cover the whole window."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._thread = None
        self.sample_once()

    def close(self) -> None:
        self._closed.set()
        self.stop()
        self.inventory.close()

    # -- idle --------------------------------------------------------------------------------
    def idle_baseline(self) -> IdleBaseline | None:
        """Idle power per domain: sample until the rolling mean over ``idle_window_s`` agrees
        within ±2 % with the one a second earlier, for every domain; at most ``idle_max_s``."""
        if not self.spec.idle_baseline or not self._tracks:
            return None
        modelled = self._modelled_idle_w()
        if len(modelled) == len(self._tracks):  # nothing to measure: no waiting
            return IdleBaseline(power_w=modelled, duration_s=0.0, stable=True, window_s=0.0)
        t_start = time.perf_counter_ns()
        step_ns = int(min(IDLE_STEP_S, self.idle_window_s / 2) * 1e9)
        window_ns = int(self.idle_window_s * 1e9)
        stable = False
        means: dict[str, float] = {}
        while True:
            tick = time.perf_counter_ns()
            self.sample_once()
            now = time.perf_counter_ns()
            if now - t_start >= window_ns + step_ns:
                means, stable = self._idle_means(now, window_ns, step_ns)
                if stable:
                    break
            if now - t_start >= self.idle_max_s * 1e9 or self._closed.is_set():
                break
            time.sleep(max(0.0, self.period_s - (time.perf_counter_ns() - tick) / 1e9))
        if not means:
            means, stable = self._idle_means(time.perf_counter_ns(), window_ns, step_ns)
        duration_s = (time.perf_counter_ns() - t_start) / 1e9
        return IdleBaseline(
            power_w={**means, **modelled},
            duration_s=duration_s,
            stable=stable,
            window_s=self.idle_window_s,
        )

    def _modelled_idle_w(self) -> dict[str, float]:
        """Idle power of estimate domains, from their model (nothing to measure there)."""
        out: dict[str, float] = {}
        for did, tr in self._tracks.items():
            idle_w = tr.source.modelled_idle_w(did)
            if idle_w is not None:
                out[did] = idle_w
        return out

    def _idle_means(
        self, now_ns: int, window_ns: int, step_ns: int
    ) -> tuple[dict[str, float], bool]:
        means: dict[str, float] = {}
        stable = True
        with self._lock:
            for did, tr in self._tracks.items():
                if tr.source.modelled_idle_w(did) is not None:
                    continue  # modelled, not measured
                cur = _mean_power_w(tr, now_ns - window_ns, now_ns)
                prev = _mean_power_w(tr, now_ns - window_ns - step_ns, now_ns - step_ns)
                if cur is None:
                    stable = False
                    continue
                means[did] = cur
                if prev is None or abs(cur - prev) > IDLE_TOLERANCE * max(abs(cur), 1e-9):
                    stable = False
        return means, stable

    # -- results -----------------------------------------------------------------------------
    def latest_power_w(self) -> dict[str, float]:
        """The most recent power of each domain (W), keyed by domain id."""
        with self._lock:
            return {
                did: tr.last_power_w
                for did, tr in self._tracks.items()
                if tr.last_power_w is not None
            }

    def series(self) -> list[DomainSeries]:
        out = []
        with self._lock:
            for tr in self._tracks.values():
                flags: set[str] = set()
                stats = (
                    tr.counter.stats
                    if tr.counter is not None
                    else (tr.gauge.stats if tr.gauge is not None else None)
                )
                if stats is not None:
                    flags |= stats.flags
                flags |= set(tr.source.domain_flags(tr.domain.id))
                out.append(
                    DomainSeries(
                        domain=tr.domain,
                        t_ns=np.asarray(tr.t_ns, dtype=np.int64),
                        values=np.asarray(tr.values, dtype=np.float64),
                        used=tr.used,
                        flags=tuple(sorted(flags)),
                        lost_at_ns=tr.lost_at_ns,
                    )
                )
        return out

    def throttled_devices(self, t0_ns: int, t1_ns: int) -> set[str]:
        """Devices a source saw slowed down (its "<device>.throttled" channel) in the window."""
        out: set[str] = set()
        with self._lock:
            for name, (_, ts, vs) in self._telemetry.items():
                if not name.endswith(f".{THROTTLED}"):
                    continue
                for t, v in zip(ts, vs, strict=True):
                    if t0_ns <= t <= t1_ns and v > 0:
                        out.add(name.rsplit(".", 1)[0])
                        break
        return out

    def figures(
        self, t0_ns: int, t1_ns: int, items: int, idle: IdleBaseline | None
    ) -> EnergyReport:
        """Energy figures for the window [t0_ns, t1_ns] (perf_counter_ns) of ``items``."""
        unreadable = [
            (
                f"{st.source}: {st.why}"
                if st.name == st.source
                else f"{st.source} {st.name}: {st.why}"
            )
            for st in self.inventory.statuses
            if st.status != STATUS_OK and st.why
        ]
        unreadable += self.errors
        report = compute_report(
            self.series(),
            t0_ns,
            t1_ns,
            items,
            idle,
            run_device=self.spec.device,
            sample_period_s=self.period_s,
            throttled_devices=self.throttled_devices(t0_ns, t1_ns),
            unreadable=unreadable,
            rank_devices=rank_devices(self.spec),
        )
        self._cross_check(report, t0_ns, t1_ns)
        return report

    def _cross_check(self, report: EnergyReport, t0_ns: int, t1_ns: int) -> None:
        """ENERGY.md: a counter's energy vs the power channel its source names for checking it
        (NVML: integrated instantaneous power), over windows of ≥ 5 s."""
        if (t1_ns - t0_ns) / 1e9 < CROSS_CHECK_MIN_S:
            return
        for s in self.series():
            channel, period_s = s.domain.check_channel, s.domain.check_period_s
            if channel is None or period_s is None:
                continue
            fig = report.figure(s.domain.name)
            with self._lock:
                tel = self._telemetry.get(channel)
                if fig is None or tel is None:
                    continue
                t_arr = np.asarray(tel[1], dtype=np.int64)
                p_arr = np.asarray(tel[2], dtype=np.float64)
            inst_dom = dataclasses.replace(
                s.domain, kind="power", unit="W", update_period_s=period_s
            )
            try:
                inst_j, _ = window_energy_j(
                    DomainSeries(inst_dom, t_arr, p_arr), t0_ns, t1_ns, self.period_s
                )
            except WindowError:
                continue
            ratio = fig.energy_j / inst_j
            report.cross_checks[s.domain.name] = ratio
            if abs(ratio - 1.0) > CROSS_CHECK_TOLERANCE:
                report.flags = tuple(sorted({*report.flags, FLAG_CROSS_CHECK}))

    def traces(self) -> list[Trace]:
        """Power per domain (W) and GPU telemetry, on the perf_counter_ns clock."""
        out: list[Trace] = []
        for s in self.series():
            if len(s.t_ns) < 2:
                continue
            if s.domain.kind == "energy":
                dt_s = np.diff(s.t_ns) / 1e9
                ok = dt_s > 0
                power = np.diff(s.values)[ok] / dt_s[ok]
                out.append(Trace(f"power:{s.domain.id}", "W", s.t_ns[1:][ok].copy(), power))
            else:
                out.append(Trace(f"power:{s.domain.id}", "W", s.t_ns.copy(), s.values.copy()))
        with self._lock:
            for name, (unit, ts, vs) in self._telemetry.items():
                out.append(
                    Trace(
                        name, unit, np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64)
                    )
                )
        return out


def rank_devices(spec: RunSpec) -> tuple[str, ...]:
    """The devices of a data-parallel run's ranks as the power sources name them (cuda:N),
    whose energy the run's device figure sums; () for a run of one process."""
    if spec.data_parallel <= 1:
        return ()
    return tuple(torch_device(d) for d in torch_ddp.rank_devices(spec.device, spec.data_parallel))


def _mean_power_w(tr: _Track, a_ns: int, b_ns: int) -> float | None:
    t = tr.t_ns
    if len(t) < 2 or t[0] > a_ns:
        return None
    t_arr = np.asarray(t, dtype=np.int64)
    v_arr = np.asarray(tr.values, dtype=np.float64)
    if tr.counter is not None:
        e0 = float(np.interp(a_ns, t_arr, v_arr))
        e1 = float(np.interp(min(b_ns, t[-1]), t_arr, v_arr))
        span_s = (min(b_ns, t[-1]) - a_ns) / 1e9
        return (e1 - e0) / span_s if span_s > 0 else None
    sel = (t_arr >= a_ns) & (t_arr <= b_ns)
    return float(np.mean(v_arr[sel])) if sel.any() else None


def open_sampler(
    spec: RunSpec,
    sys_root: str | Path | None = None,
    nvml_module: Any = None,
    *,
    idle_window_s: float = IDLE_WINDOW_S,
    idle_max_s: float = IDLE_MAX_S,
) -> Sampler:
    """Discover the sources (≤ 1 s, no subprocess) and return a sampler ready to start."""
    return Sampler(
        spec, inventory(sys_root, nvml_module), idle_window_s=idle_window_s, idle_max_s=idle_max_s
    )
