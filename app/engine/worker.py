"""The worker process of one run: preflight, load, measure, send the result back.

Started with ``multiprocessing.get_context("spawn").Process(target=worker_main, ...)`` by the
supervisor, with the spec as MessagePack bytes. It talks over one end of a Pipe with
``send_bytes`` frames of ``ipc`` messages (typed values, never pickle): ``Ready`` once Python is
up, ``Progress`` at ≤ 10 Hz, then exactly one of ``Measured`` or ``Failed``.

Test hook: the environment variable ``WATTBENCH_TEST_FAULT`` (read here only, at the start of
the measurement phase) makes the worker misbehave on purpose so tests can check that the
supervisor survives it: ``crash`` (abort: SIGABRT), ``hang`` (sleep forever), ``oom`` (raise
MemoryError), ``oom-kill`` (SIGKILL, as the kernel's out-of-memory killer ends a process),
``raise`` (raise RuntimeError).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from wattbench.backends.lifetime import die_with_parent
from wattbench.backends.models import probe
from wattbench.backends.runtimes.base import LoadedModel
from wattbench.domain import codec
from wattbench.domain.errors import BadInputError, WattbenchError, is_out_of_memory
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.domain.result import ModelInfo
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine import ipc
from wattbench.engine.measure import measure
from wattbench.engine.pinning import GroupLink, apply_cpu_set
from wattbench.engine.server import measure_server

log = logging.getLogger(__name__)

FAULT_ENV = "WATTBENCH_TEST_FAULT"
FAULTS = ("crash", "hang", "oom", "oom-kill", "raise")


class _Channel:
    """Sends frames to the supervisor and remembers the phase last reported."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.phase = Phase.STARTING

    def send(self, message: ipc.WorkerMessage) -> None:
        try:
            self.conn.send_bytes(ipc.encode(message))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            os._exit(1)  # the supervisor is gone: nobody wants this run any more

    def progress(self, event: MeasureProgress) -> None:
        self.phase = event.phase
        self.send(ipc.Progress(event))


def fault_hook() -> Callable[[], None] | None:
    """The test fault requested through WATTBENCH_TEST_FAULT, or None."""
    fault = os.environ.get(FAULT_ENV, "").strip().lower()
    if not fault:
        return None
    if fault not in FAULTS:
        log.warning("ignoring unknown %s=%r (known: %s)", FAULT_ENV, fault, ", ".join(FAULTS))
        return None

    def inject() -> None:
        log.warning("test fault %r injected", fault)
        if fault == "crash":
            try:
                import resource

                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file for a test
            except (ImportError, ValueError, OSError):
                pass
            os.abort()
        if fault == "hang":
            while True:
                time.sleep(3600)
        if fault == "oom":
            raise MemoryError("test fault: simulated out of memory")
        if fault == "oom-kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("test fault: simulated failure in the worker")

    return inject


def tie_to_parent() -> None:
    """End this worker when the process that started it dies, even by SIGKILL.

    On Linux the kernel kills it (``lifetime.die_with_parent``), even while a model call holds
    the GIL; the supervising thread outlives the worker (it always stops and reaps it), so that
    only comes with the parent's death. Everywhere (and as a second line on Linux), a daemon
    thread waits on the parent's sentinel, which the system closes when the parent dies.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by a supervisor (a test calling worker_main directly)
        return
    if parent.pid is not None:
        die_with_parent(parent.pid)
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(1)  # the supervisor is gone: nobody wants this run any more

    threading.Thread(target=watch, name="wattbench-parent-watch", daemon=True).start()


def _describe_system() -> dict[str, Any]:
    from wattbench.backends.system import describe_system

    try:
        system = dict(describe_system())
    except Exception as exc:  # a probe must never stop the run: record what failed
        log.warning("system description failed: %s", exc)
        system = {"unknown": f"system description failed: {exc}"}
    proc: dict[str, Any] = {"pid": os.getpid(), "python": sys.version.split()[0]}
    if hasattr(os, "sched_getaffinity"):
        proc["affinity"] = sorted(os.sched_getaffinity(0))
    system["worker_process"] = proc
    return system


def _load(spec: RunSpec, chan: _Channel) -> tuple[LoadedModel, ModelInfo, float]:
    """Resolve and load the model; returns (loaded, model information, load seconds)."""
    from wattbench.backends.models import catalog
    from wattbench.backends.runtimes.registry import get_runtime
    from wattbench.engine.validate import resolve_entry, runtime_options

    chan.progress(MeasureProgress(Phase.LOADING, f"loading {spec.model}"))
    entry = resolve_entry(spec)
    inputs = catalog.concrete_inputs(
        entry, spec.batch_size, dict(spec.dims), dict(spec.input_shapes) or None
    )
    info = ModelInfo(
        ref=entry.ref,
        name=entry.name,
        family=entry.family,
        format=entry.format,
        sha256=catalog.model_sha256(entry),
        inputs=tuple((str(n), tuple(int(s) for s in shape), str(dt)) for n, shape, dt in inputs),
        parameters=entry.parameters,
    )
    runtime = get_runtime(spec.runtime)
    t0 = time.perf_counter_ns()
    loaded = runtime.load(entry, spec.device, runtime_options(spec, entry))
    return loaded, info, (time.perf_counter_ns() - t0) / 1e9


def worker_main(
    conn: Connection, spec_frame: bytes, log_level: int = 0, group: GroupLink | None = None
) -> None:
    """Entry point of the spawned worker process; ``group``: what ties the instances of a
    multi-instance run together (engine/pinning.py), None for a run of its own."""
    if log_level:
        logging.basicConfig(level=log_level, format="%(levelname)s worker %(name)s: %(message)s")
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    tie_to_parent()
    probe.mark_disposable()  # this process may hang or die: it reads the model file itself
    chan = _Channel(conn)
    chan.send(ipc.Ready(pid=os.getpid(), t_ready_ns=time.perf_counter_ns()))
    try:
        spec = codec.decode_msgpack(spec_frame, RunSpec)
        apply_cpu_set(spec.cpu_set)  # before the runtime loads: its threads inherit the set
        chan.progress(MeasureProgress(Phase.PREFLIGHT, "describing the system"))
        t0 = time.perf_counter_ns()
        system = _describe_system()
        preflight_s = (time.perf_counter_ns() - t0) / 1e9
        loaded, model_info, load_s = _load(spec, chan)
        try:
            system["runtime_settings"] = dict(loaded.settings())
            server = spec.scenario is Scenario.SERVER
            run = measure_server if server else partial(measure, group=group)
            out = run(loaded, spec, chan.progress, load_s=load_s, before_measure=fault_hook())
        finally:
            loaded.close()
        out = dataclasses.replace(
            out,
            system=system,
            model=model_info,
            phases=dataclasses.replace(out.phases, preflight_s=preflight_s),
        )
        chan.send(ipc.Measured(out))
    except MemoryError as exc:
        _send_error(chan, exc, kind="out_of_memory")
    except BadInputError as exc:
        _send_error(chan, exc, kind="bad_input")
    except WattbenchError as exc:
        _send_error(chan, exc, kind="error")
    except Exception as exc:
        kind = "out_of_memory" if is_out_of_memory(exc) else "error"
        _send_error(chan, exc, kind=kind, tb=traceback.format_exc())
    finally:
        conn.close()


def _send_error(chan: _Channel, exc: BaseException, *, kind: str, tb: str | None = None) -> None:
    chan.send(
        ipc.Failed(
            error_class=type(exc).__name__,
            message=str(exc),
            error_kind=kind,
            phase=chan.phase,
            traceback=tb,
            field=getattr(exc, "field", None),
        )
    )
