"""Supervision of one run's worker process, from a thread of the caller (METHOD.md "Phases").

``supervise`` spawns the worker (``multiprocessing`` spawn context: never a fork of a process
that may hold a GPU runtime), relays its progress at ≤ 10 Hz, samples power on the same clock,
enforces the time limit, honours cancel within a second (it polls every 0.1 s), and turns a
crash, hang, out-of-memory or error in the worker into a failed RunResult with its reason. It
never raises for a failing run.

Clock: every timestamp (worker samples, measurement window, power samples) is
``time.perf_counter_ns()``, which is CLOCK_MONOTONIC on Linux and QueryPerformanceCounter on
Windows: one system-wide monotonic clock, so the worker's window [t0, t1] cuts the sampler's
trace exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from wattbench.domain import codec
from wattbench.domain.events import (
    CancelToken,
    MeasureProgress,
    Phase,
    ProgressCallback,
    ProgressEvent,
)
from wattbench.domain.result import (
    Measurement,
    PhaseTimings,
    RunResult,
    RunStatus,
)
from wattbench.domain.spec import RunSpec
from wattbench.engine import ipc
from wattbench.engine.run_energy import RunEnergy
from wattbench.engine.worker import worker_main

log = logging.getLogger(__name__)

clock = time.perf_counter_ns
POLL_S = 0.1  # cancel and time limit are checked at least this often
TERMINATE_GRACE_S = 0.5  # SIGTERM, then SIGKILL after this
LOAD_ALLOWANCE_S = 300.0  # worker start, preflight, model load/export, first call
ENERGY_NA_FAILED = "no measurement window: the run did not finish"


def default_time_limit_s(spec: RunSpec) -> float:
    """Whole-worker wall-clock limit when the spec sets none: load + warm-up + 2 × T_max + 60 s."""
    preset = spec.preset_values
    return LOAD_ALLOWANCE_S + preset.warmup_max_s + 2 * spec.measurement_t_max_s + 60.0


def time_limit_s(spec: RunSpec) -> float:
    return spec.time_limit_s if spec.time_limit_s is not None else default_time_limit_s(spec)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def describe_exit(exitcode: int | None) -> tuple[str, str]:
    """(error_kind, reason) for a worker that ended without sending a result."""
    if exitcode is None:
        return "crash", "The worker process stopped answering and was stopped."
    if exitcode < 0:
        sig = -exitcode
        name = _signal_name(sig)
        if sig == getattr(signal, "SIGKILL", 9):
            return "out_of_memory", (
                f"The worker process was killed ({name}); this is usually the system's "
                "out-of-memory killer. Try a smaller batch size or model."
            )
        return "crash", (
            f"The worker process crashed ({name}). The runtime or a native library failed; "
            "run with -v for the worker's log, or try another runtime or device."
        )
    return "crash", (
        f"The worker process exited with code {exitcode} without a result; "
        "run with -v to see its log."
    )


# -- result assembly ----------------------------------------------------------------------


def _build_result(
    spec: RunSpec,
    run_id: str,
    created_at: str,
    m: Measurement,
    energy: RunEnergy,
    *,
    worker_start_s: float | None,
    total_s: float,
) -> RunResult:
    """A DONE RunResult from the worker's measurement, with energy from the sampler."""
    t0_ns, t1_ns = m.window_ns
    figs, eflags, na = energy.figures(t0_ns, t1_ns, m.items)
    fields = m.result_fields()
    fields["phases"] = replace(m.phases, worker_start_s=worker_start_s, total_s=total_s)
    fields["flags"] = tuple(dict.fromkeys([*m.flags, *eflags]))
    fields["arrays"] = {**m.arrays, "window_ns": np.asarray([t0_ns, t1_ns], dtype=np.int64)}
    result = RunResult(
        spec=spec,
        status=RunStatus.DONE,
        id=run_id,
        created_at=created_at,
        finished_at=_now_iso(),
        energy=figs,
        energy_na_reason=na,  # also set beside estimate-only figures: it says why
        telemetry=energy.traces(),
        **fields,
    )
    return energy.with_phase_energy(result)  # generation: energy per prefill/decode token


# -- the supervisor -----------------------------------------------------------------------


@dataclass
class _State:
    phase: str = Phase.STARTING
    t_spawn_ns: int = 0
    t_ready_ns: int | None = None
    last_payload: dict[str, Any] = field(default_factory=dict)


class Supervisor:
    """Runs one spec in a spawned worker and watches it; use :func:`supervise`."""

    def __init__(
        self,
        spec: RunSpec,
        run_id: str,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
        run_index: int,
        run_count: int,
    ) -> None:
        self.spec = spec
        self.run_id = run_id
        self.progress = progress
        self.cancel = cancel or CancelToken()
        self.run_index = run_index
        self.run_count = run_count
        self.created_at = _now_iso()
        self.t_begin_ns = clock()
        self.state = _State()

    # -- helpers --------------------------------------------------------------------------
    def _emit(self, phase: str, energy: RunEnergy | None = None, **kw: Any) -> None:
        self.state.phase = phase
        if self.progress is None:
            return
        event = ProgressEvent(
            run_index=self.run_index,
            run_count=self.run_count,
            phase=phase,
            elapsed_s=(clock() - self.t_begin_ns) / 1e9,
            power_w=energy.latest_power_w() if energy is not None else {},
            **kw,
        )
        try:
            self.progress(event)
        except Exception:  # a broken progress consumer must not kill the run
            log.exception("progress callback failed")

    def _relay(self, p: MeasureProgress, energy: RunEnergy) -> None:
        self._emit(
            p.phase,
            energy,
            message=p.message,
            n=p.n,
            rho=p.rho,
            epsilon=p.epsilon,
            fraction=p.fraction,
            recent_latencies_ns=p.recent_latencies_ns,
            recent_starts_ns=p.recent_starts_ns,
            extra={"worker_elapsed_s": p.elapsed_s},
        )

    def _failed(
        self,
        status: RunStatus,
        reason: str,
        error_kind: str | None,
        energy_na: str = ENERGY_NA_FAILED,
    ) -> RunResult:
        st = self.state
        worker_start_s = (
            (st.t_ready_ns - st.t_spawn_ns) / 1e9 if st.t_ready_ns and st.t_spawn_ns else None
        )
        phase = st.phase
        self._emit(
            Phase.CANCELLED if status is RunStatus.CANCELLED else Phase.FAILED, message=reason
        )
        return RunResult(
            spec=self.spec,
            status=status,
            id=self.run_id,
            reason=reason,
            error_kind=error_kind,
            created_at=self.created_at,
            finished_at=_now_iso(),
            phases=PhaseTimings(
                worker_start_s=worker_start_s, total_s=(clock() - self.t_begin_ns) / 1e9
            ),
            energy_na_reason=energy_na,
            notes=f"stopped during phase {phase}",
        )

    def _cancelled(self) -> RunResult:
        return self._failed(
            RunStatus.CANCELLED,
            f"Cancelled by the user during {self.state.phase}.",
            None,
            energy_na="run cancelled",
        )

    # -- main -----------------------------------------------------------------------------
    def run(self) -> RunResult:
        spec = self.spec
        energy = RunEnergy.open(spec)
        idle_thread: threading.Thread | None = None
        try:
            if spec.idle_baseline and energy.sampler is not None:
                self._emit(Phase.IDLE_BASELINE, message="measuring idle power")
                idle_thread = threading.Thread(
                    target=energy.idle_baseline, name="wattbench-idle", daemon=True
                )
                idle_thread.start()
                # in a helper thread so that cancel stays responsive
                while idle_thread.is_alive():
                    if self.cancel.wait(POLL_S):
                        return self._cancelled()
            if self.cancel.cancelled:
                return self._cancelled()
            energy.start()
            return self._run_worker(energy)
        finally:
            energy.close(busy=idle_thread)

    def _run_worker(self, energy: RunEnergy) -> RunResult:
        spec = self.spec
        limit_s = time_limit_s(spec)
        ctx = multiprocessing.get_context("spawn")
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker_main,
            args=self._worker_args(send),
            name=f"wattbench-worker-{self.run_id[:8]}",
            daemon=True,
        )
        self._emit(Phase.STARTING, energy, message="starting the worker process")
        self.state.t_spawn_ns = clock()
        deadline_ns = self.state.t_spawn_ns + int(limit_s * 1e9)
        try:
            proc.start()
        except OSError as exc:
            send.close()
            recv.close()
            return self._failed(
                RunStatus.FAILED, f"Cannot start the worker process: {exc}", "crash"
            )
        send.close()  # the worker holds the only writing end: EOF when it dies
        try:
            return self._watch(proc, recv, energy, deadline_ns, limit_s)
        finally:
            recv.close()
            _stop_process(proc)

    def _worker_args(self, send: Any) -> tuple[Any, ...]:
        """``worker_main``'s arguments (an instance of a group adds its start barrier)."""
        return (send, codec.encode_msgpack(self.spec), _worker_log_level())

    def _watch(
        self,
        proc: Any,
        recv: Any,
        energy: RunEnergy,
        deadline_ns: int,
        limit_s: float,
    ) -> RunResult:
        from multiprocessing.connection import wait

        while True:
            if self.cancel.cancelled:
                _stop_process(proc)
                return self._cancelled()
            if clock() >= deadline_ns:
                _stop_process(proc)
                return self._failed(
                    RunStatus.FAILED,
                    f"The run exceeded its time limit of {limit_s:g} s during "
                    f"{self.state.phase} and was stopped (the worker may hang; raise the "
                    "run's time limit if the model is just slow).",
                    "time_limit",
                )
            ready = wait([recv, proc.sentinel], timeout=POLL_S)
            if recv in ready:
                try:
                    data = recv.recv_bytes()
                except (EOFError, OSError):
                    proc.join(TERMINATE_GRACE_S)
                    kind, reason = describe_exit(proc.exitcode)
                    return self._failed(RunStatus.FAILED, reason, kind)
                try:
                    msg = ipc.decode(data)
                except codec.CodecError as exc:
                    _stop_process(proc)
                    return self._failed(
                        RunStatus.FAILED, f"The worker sent a malformed message: {exc}", "error"
                    )
                done = self._handle(msg, energy)
                if done is not None:
                    return done
            elif proc.sentinel in ready and not recv.poll(0):
                proc.join(TERMINATE_GRACE_S)
                kind, reason = describe_exit(proc.exitcode)
                return self._failed(RunStatus.FAILED, reason, kind)
            else:
                self._heartbeat(energy)

    def _heartbeat(self, energy: RunEnergy) -> None:
        """A progress event while the worker is quiet (loading), so power charts keep moving."""
        if self.progress is not None and energy.started:
            self._emit(self.state.phase, energy)

    def _handle(self, msg: ipc.WorkerMessage, energy: RunEnergy) -> RunResult | None:
        st = self.state
        if isinstance(msg, ipc.Ready):
            st.t_ready_ns = msg.t_ready_ns
            return None
        if isinstance(msg, ipc.Progress):
            self._relay(msg.event, energy)
            return None
        if isinstance(msg, ipc.Failed):
            text = msg.message or msg.error_class
            if msg.error_kind == "out_of_memory":
                text = f"Out of memory in the worker ({text}); try a smaller batch or model."
            elif msg.error_kind == "error" and msg.traceback:
                # the traceback is for whoever asks (-v); the run's reason says what to do
                log.info("worker traceback:\n%s", msg.traceback)
                text = (
                    f"The {msg.phase} step failed in the worker with {msg.error_class}: "
                    f"{text.rstrip('.')}. Check that this model runs on this runtime and "
                    "device with these settings (precision, batch, shapes); run again with -v "
                    "to see the traceback."
                )
            return self._failed(RunStatus.FAILED, text, msg.error_kind)
        self._emit(Phase.FINISHING, energy, message="computing figures")
        energy.stop()
        result = _build_result(
            self.spec,
            self.run_id,
            self.created_at,
            msg.measurement,
            energy,
            worker_start_s=(st.t_ready_ns - st.t_spawn_ns) / 1e9 if st.t_ready_ns else None,
            total_s=(clock() - self.t_begin_ns) / 1e9,
        )
        self._emit(Phase.DONE, message="done", rho=_finite(result))
        return result


def _worker_log_level() -> int:
    """The worker logs at the caller's level when that is more verbose than WARNING."""
    level = logging.getLogger("wattbench").getEffectiveLevel()
    return level if level < logging.WARNING else 0


def _finite(result: RunResult) -> float | None:
    rho = result.latency.rho if result.latency else None
    return rho if rho is not None and math.isfinite(rho) else None


def _stop_process(proc: Any) -> None:
    """SIGTERM, then SIGKILL after a grace period; always reaps the process."""
    try:
        if proc.pid is None:
            return
    except ValueError:  # already closed: stopped and reaped before
        return
    if proc.is_alive():
        proc.terminate()
        proc.join(TERMINATE_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
    else:
        proc.join(0)
    with contextlib.suppress(ValueError):
        proc.close()


def supervise(
    spec: RunSpec,
    run_id: str,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    run_index: int = 0,
    run_count: int = 1,
) -> RunResult:
    """Run ``spec`` in its own spawned worker process; never raises for a failing run."""
    sup = Supervisor(spec, run_id, progress, cancel, run_index, run_count)
    try:
        return sup.run()
    except KeyboardInterrupt:
        return replace(sup._cancelled(), reason="Interrupted (Ctrl-C).")
