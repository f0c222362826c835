"""Multi-instance CPU runs: N copies of one model measured together, as CPU vendors measure.

A spec with ``instances = N > 1`` runs as a group: N worker processes (the usual spawned,
supervised workers, one ``InstanceSupervisor`` thread each), every one pinned to its own
disjoint core set (``pinning.plan_core_sets``, one NUMA node per set where the nodes allow)
with ``threads`` intra-op threads. Each worker pins itself before its model loads, warms up
and calibrates on its own, then waits at a shared start line so that all of them start
measuring together. Power is sampled ONCE for the group: the
``GroupSupervisor`` is the ordinary supervisor (same idle baseline, cancel and sampler
handling), whose one sampler covers the whole group; the instances sample nothing, so no
package is counted N times.

The group is stored as ONE RunResult: its throughput is the aggregate (the sum of the
instances' throughputs over the common window, when every instance was measuring), its
latency pools the instances' calls in that window, its energy is the group's sampler cut to
that window with the aggregate item count, and ``instances`` holds each instance's cores, the
affinity its process saw and its own figures. One result, not N results with a group id,
because everything that ranks or compares runs (compare, the verdict board, claims, the
capacity planner, reports) compares RunResults by their throughput and energy per item: a
group stored this way is compared by its aggregate with no change there, and replicates of a
group are ordinary replicates. N separate results would each be compared as if it were the
whole machine's figure.

They also stop together: an instance whose stopping rule (METHOD.md) is met measures on until
every instance's is, or T_max (``pinning.GroupLink``), so all of them measure the same window,
each under the others' load. Their ends still differ by up to a progress interval (~0.1 s)
and a call, so the aggregate is counted over the common window [latest start, earliest end]
only (a call at its edge counts in part): an instance never adds work it did alone. The result
is flagged ``instances_short_common_window`` when that window is under half of the longest
instance's measurement (an instance that failed to hold, for example).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from wattbench.domain.errors import BadInputError
from wattbench.domain.events import CancelToken, Phase, ProgressCallback, ProgressEvent
from wattbench.domain.instances import (
    FLAG_SHORT_COMMON_WINDOW,
    InstancesSummary,
    InstanceSummary,
)
from wattbench.domain.result import Interval, Measurement, RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.engine import ipc, stats
from wattbench.engine.pinning import CorePlan, GroupLink, check_instances
from wattbench.engine.run_energy import RunEnergy
from wattbench.engine.supervisor import POLL_S, Supervisor, _build_result, clock

log = logging.getLogger(__name__)

SHARED_SAMPLER = "measured once for the whole multi-instance group"
SHORT_WINDOW_SHARE = 0.5


def instance_specs(spec: RunSpec, plan: CorePlan) -> list[RunSpec]:
    """One single-instance spec per core set: pinned, with as many threads as cores, and no
    idle baseline of its own (the group measures it once)."""
    return [
        spec.with_(
            instances=1,
            cpu_set=cs.cpus,
            threads=len(cs.cpus),
            idle_baseline=False,
            sweep_id=None,
        )
        for cs in plan.sets
    ]


# -- combining the instances ----------------------------------------------------------------


@dataclass(frozen=True)
class _Share:
    """One instance's part of the common window."""

    items: float
    latencies_ns: np.ndarray  # its calls inside the window
    starts_ns: np.ndarray


def _share(m: Measurement, t0_ns: int, t1_ns: int) -> _Share:
    lats = np.asarray(m.arrays["latencies_ns"], dtype=np.int64)
    starts = np.asarray(m.arrays["starts_ns"], dtype=np.int64)
    durations = np.asarray(m.arrays.get("block_latencies_ns", lats), dtype=np.float64)
    ends = starts + durations
    overlap = np.clip(np.minimum(ends, t1_ns) - np.maximum(starts, t0_ns), 0.0, None)
    fraction = np.divide(overlap, durations, out=np.zeros_like(overlap), where=durations > 0)
    items_per_sample = m.items / max(1, starts.size)
    inside = (starts >= t0_ns) & (ends <= t1_ns)
    return _Share(float(fraction.sum() * items_per_sample), lats[inside], starts[inside])


def _rate_interval(value: float, rho: float) -> Interval:
    """items/s with the interval that mirrors the mean latency's ±rho (stats' rule)."""
    unit = stats.throughput_interval(1, 1_000_000_000, rho)
    if unit.lo is None or unit.hi is None:
        return Interval(value)
    return Interval(value, value * unit.lo, value * unit.hi)


def _sum_interval(parts: Sequence[Interval]) -> Interval:
    """The sum of independent estimates; its half-widths add in quadrature."""
    total = sum(p.value for p in parts)
    if any(p.lo is None or p.hi is None for p in parts):
        return Interval(total)
    down = math.sqrt(sum((p.value - (p.lo or 0.0)) ** 2 for p in parts))
    up = math.sqrt(sum(((p.hi or 0.0) - p.value) ** 2 for p in parts))
    return Interval(total, total - down, total + up)


def combine(
    spec: RunSpec, plan: CorePlan, measured: Sequence[Measurement]
) -> tuple[Measurement, InstancesSummary]:
    """The group's measurement (aggregate throughput, pooled latency, the common window and
    its item count) and its instances' summary; BadInputError when the instances never
    measured at the same time."""
    t0 = max(m.window_ns[0] for m in measured)
    t1 = min(m.window_ns[1] for m in measured)
    if t1 <= t0:
        raise BadInputError(
            "The instances did not measure at the same time (no common window); run again, "
            "with a longer T_max.",
            field="instances",
        )
    window_s = (t1 - t0) / 1e9
    shares = [_share(m, t0, t1) for m in measured]
    summaries, rates = [], []
    for i, (m, share, cs) in enumerate(zip(measured, shares, plan.sets, strict=True)):
        lats = share.latencies_ns if share.latencies_ns.size >= stats.MIN_SAMPLES else None
        lat = stats.summarize(lats, spec.percentiles) if lats is not None else m.latency
        rate = _rate_interval(share.items / window_s, lat.rho)
        rates.append(rate)
        affinity = m.system.get("worker_process", {}).get("affinity", ())
        summaries.append(
            InstanceSummary(
                index=i,
                cpu_set=cs.cpus,
                affinity=tuple(int(c) for c in affinity),
                threads=len(cs.cpus),
                numa_node=cs.node,
                items=share.items,
                throughput_items_per_s=rate.value,
                throughput_lo=rate.lo,
                throughput_hi=rate.hi,
                n=lat.n,
                mean_ns=lat.mean_ns,
                percentiles_ns=tuple((pe.p, pe.value_ns) for pe in lat.percentiles),
                rho=lat.rho,
                converged=m.converged,
                measure_s=m.phases.measure_s,
                flags=m.flags,
            )
        )
    total = _sum_interval(rates)
    items = sum(s.items for s in shares)
    order = np.argsort(np.concatenate([s.starts_ns for s in shares]), kind="stable")
    pooled = np.concatenate([s.latencies_ns for s in shares])[order]
    starts = np.concatenate([s.starts_ns for s in shares])[order]
    which = np.concatenate(
        [np.full(s.starts_ns.size, i, dtype=np.int64) for i, s in enumerate(shares)]
    )[order]
    first = measured[0]
    latency = stats.summarize(pooled, spec.percentiles) if pooled.size >= 2 else first.latency
    flags = [f for m in measured for f in m.flags]
    longest_s = max(m.phases.measure_s for m in measured)
    if window_s < SHORT_WINDOW_SHARE * longest_s:
        flags.append(FLAG_SHORT_COMMON_WINDOW)
    summary = InstancesSummary(
        count=len(measured),
        threads=len(plan.sets[0].cpus),
        window_s=window_s,
        items=items,
        throughput_items_per_s=total.value,
        throughput_lo=total.lo,
        throughput_hi=total.hi,
        numa_nodes=plan.nodes,
        instances=tuple(summaries),
        note=plan.note,
    )
    contended = [m.interference for m in measured if m.interference and m.interference.contended]
    group = replace(
        first,
        phases=replace(first.phases, measure_s=window_s),
        latency=latency,
        throughput_items_per_s=total,
        converged=all(m.converged for m in measured),
        flags=tuple(dict.fromkeys(flags)),
        items=max(1, round(items)),
        window_ns=(t0, t1),
        arrays={"latencies_ns": pooled, "starts_ns": starts, "instance_index": which},
        interference=contended[0] if contended else first.interference,
        notes="; ".join(
            dict.fromkeys(f"instance {i + 1}: {m.notes}" for i, m in enumerate(measured) if m.notes)
        ),
    )
    return group, summary


# -- running them -----------------------------------------------------------------------------


class InstanceSupervisor(Supervisor):
    """One instance: an ordinary supervised worker that samples no power and keeps what its
    worker measured for the group."""

    def __init__(
        self,
        spec: RunSpec,
        run_id: str,
        group: GroupLink,
        cancel: CancelToken,
        progress: ProgressCallback | None,
    ) -> None:
        super().__init__(spec, run_id, progress, cancel, 0, 1)
        self.group = group
        self.measurement: Measurement | None = None

    def run(self) -> RunResult:
        if self.cancel.cancelled:
            return self._cancelled()
        return self._run_worker(RunEnergy(na_reason=SHARED_SAMPLER))

    def _worker_args(self, send: Any) -> tuple[Any, ...]:
        return (*super()._worker_args(send), self.group)

    def _handle(self, msg: ipc.WorkerMessage, energy: RunEnergy) -> RunResult | None:
        if isinstance(msg, ipc.Measured):
            self.measurement = msg.measurement
        return super()._handle(msg, energy)


class GroupSupervisor(Supervisor):
    """The whole group as one run: the supervisor's own idle baseline, sampler and cancel
    handling, with the group's instances where one worker would be."""

    def __init__(
        self,
        spec: RunSpec,
        run_id: str,
        plan: CorePlan,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
        run_index: int,
        run_count: int,
    ) -> None:
        super().__init__(spec, run_id, progress, cancel, run_index, run_count)
        self.plan = plan

    def _run_worker(self, energy: RunEnergy) -> RunResult:
        specs = instance_specs(self.spec, self.plan)
        group = GroupLink(len(specs))
        stop = CancelToken()  # the user's cancel, or an instance that failed

        def relay(event: ProgressEvent) -> None:  # instance 1 speaks for the group
            if event.phase == Phase.DONE:
                return  # the group is done when all its instances are (``_finish``)
            self.state.phase = event.phase
            if self.progress is not None:  # (its supervisor guards against a failing callback)
                self.progress(
                    replace(
                        event,
                        run_index=self.run_index,
                        run_count=self.run_count,
                        elapsed_s=(clock() - self.t_begin_ns) / 1e9,
                        power_w=energy.latest_power_w(),  # the group's one sampler
                    )
                )

        sups = [
            InstanceSupervisor(
                s, f"{self.run_id[:24]}i{i:03d}", group, stop, relay if i == 0 else None
            )
            for i, s in enumerate(specs)
        ]
        results: list[RunResult | None] = [None] * len(sups)

        def one(i: int) -> None:
            result: RunResult | None = None
            try:
                result = results[i] = sups[i].run()
            finally:
                if result is None or not result.ok:
                    stop.cancel()
                    group.abort()  # the others stop waiting at the start line

        self.state.t_spawn_ns = clock()
        threads = [
            threading.Thread(target=one, args=(i,), name=f"wattbench-instance-{i}", daemon=True)
            for i in range(len(sups))
        ]
        for t in threads:
            t.start()
        cancelled = False
        try:
            while any(t.is_alive() for t in threads):
                if self.cancel.wait(POLL_S):
                    cancelled = True
                    break
        finally:
            if any(t.is_alive() for t in threads):  # cancelled, or interrupted (Ctrl-C)
                stop.cancel()
                group.abort()
                for t in threads:
                    t.join()
        if cancelled:
            return self._cancelled()
        return self._finish(sups, results, energy)

    def _finish(
        self,
        sups: Sequence[InstanceSupervisor],
        results: Sequence[RunResult | None],
        energy: RunEnergy,
    ) -> RunResult:
        failed = [(i, r) for i, r in enumerate(results) if r is None or not r.ok]
        if failed:
            # the first instance that failed on its own, not one stopped because of it
            i, r = next(
                ((i, r) for i, r in failed if r is not None and r.status is RunStatus.FAILED),
                failed[0],
            )
            reason = r.reason if r is not None else "it ended without a result"
            return self._failed(
                RunStatus.FAILED,
                f"Instance {i + 1} of {len(results)} failed: {reason}",
                r.error_kind if r is not None else "error",
            )
        measured = [s.measurement for s in sups]
        if any(m is None for m in measured):
            return self._failed(RunStatus.FAILED, "An instance sent no measurement.", "error")
        energy.stop()
        try:
            group, summary = combine(self.spec, self.plan, [m for m in measured if m])
        except BadInputError as exc:
            return self._failed(RunStatus.FAILED, str(exc), "error")
        starts = [r.phases.worker_start_s for r in results if r and r.phases.worker_start_s]
        result = _build_result(
            self.spec,
            self.run_id,
            self.created_at,
            group,
            energy,
            worker_start_s=max(starts) if starts else None,
            total_s=(clock() - self.t_begin_ns) / 1e9,
        )
        self._emit(Phase.DONE, message="done")
        return result.with_(instances=summary)


def run_group(
    spec: RunSpec,
    run_id: str,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    run_index: int = 0,
    run_count: int = 1,
) -> RunResult:
    """Run a multi-instance spec as one group (see the module docstring); never raises for a
    failing run. BadInputError before anything starts when the cores do not suffice."""
    plan = check_instances(spec)
    assert plan is not None, "run_group runs specs with several instances"
    sup = GroupSupervisor(spec, run_id, plan, progress, cancel, run_index, run_count)
    try:
        return sup.run()
    except KeyboardInterrupt:
        return replace(sup._cancelled(), reason="Interrupted (Ctrl-C).")
