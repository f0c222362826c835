"""The worker process of one run: preflight, load, measure, send the result back.

Started with ``multiprocessing.get_context("spawn").Process(target=worker_main, ...)`` by the
supervisor. It talks over one end of a Pipe with ``send_bytes`` frames from ``ipc`` (JSON +
raw arrays, never pickle): ``ready`` once Python is up, ``progress`` at ≤ 10 Hz, then exactly
one of ``result`` or ``error`` (error class name, message for the user, phase).

Test hook: the environment variable ``WATTBENCH_TEST_FAULT`` (read here only, at the start of
the measurement phase) makes the worker misbehave on purpose so tests can check that the
supervisor survives it: ``crash`` (abort: SIGABRT), ``hang`` (sleep forever), ``oom`` (raise
MemoryError), ``oom-kill`` (SIGKILL, as the kernel's out-of-memory killer ends a process),
``raise`` (raise RuntimeError).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from wattbench.domain.errors import BadInputError, ModelError, WattbenchError
from wattbench.domain.events import Phase
from wattbench.domain.spec import RunSpec
from wattbench.engine.ipc import KIND_ERROR, KIND_PROGRESS, KIND_READY, KIND_RESULT, encode_message
from wattbench.engine.measure import jsonable, measure

log = logging.getLogger(__name__)

FAULT_ENV = "WATTBENCH_TEST_FAULT"
FAULTS = ("crash", "hang", "oom", "oom-kill", "raise")


class _Channel:
    """Sends frames to the supervisor and remembers the phase last reported."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.phase = Phase.STARTING

    def send(
        self, kind: str, payload: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> None:
        try:
            self.conn.send_bytes(encode_message(kind, payload, arrays))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            os._exit(1)  # the supervisor is gone: nobody wants this run any more

    def progress(self, event: Mapping[str, Any]) -> None:
        self.phase = str(event.get("phase", self.phase))
        self.send(KIND_PROGRESS, jsonable(dict(event)))


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


def runtime_options(spec: RunSpec) -> Any:
    """The runtime's options for ``spec`` (RuntimeOptions of backends/runtimes/base.py)."""
    from wattbench.backends.runtimes.registry import options_from_spec

    return options_from_spec(spec)


def resolve_entry(spec: RunSpec) -> Any:
    """The catalog entry of ``spec.model``; unexpected reader errors become ModelError."""
    from wattbench.backends.models import catalog

    # the batch goes with the dims: a fixed-batch model or an --input-shape is checked
    # against the run's batch size, not against batch 1
    dims = {**spec.dims_map, catalog.BATCH: spec.batch_size}
    try:
        return catalog.resolve(spec.model, dims=dims, input_shapes=dict(spec.input_shapes) or None)
    except WattbenchError:
        raise
    except Exception as exc:  # a parser's own exception: the file is not a usable model
        raise ModelError(f"Cannot read the model {spec.model}: {exc}") from exc


def concrete_inputs(spec: RunSpec, entry: Any) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of every input, with batch and dynamic dimensions fixed."""
    from wattbench.backends.models import catalog

    return catalog.concrete_inputs(
        entry, spec.batch_size, spec.dims_map, dict(spec.input_shapes) or None
    )


def _describe_system() -> dict[str, Any]:
    try:
        from wattbench.backends.system import describe_system

        system = dict(describe_system())
    except ImportError as exc:
        system = {"unknown": f"system description not available: {exc}"}
    except Exception as exc:  # a probe must never stop the run: record what failed
        log.warning("system description failed: %s", exc)
        system = {"unknown": f"system description failed: {exc}"}
    proc: dict[str, Any] = {"pid": os.getpid(), "python": sys.version.split()[0]}
    if hasattr(os, "sched_getaffinity"):
        proc["affinity"] = sorted(os.sched_getaffinity(0))
    system["worker_process"] = proc
    return system


def _load(spec: RunSpec, chan: _Channel) -> tuple[Any, dict[str, Any], float]:
    """Resolve and load the model; returns (loaded, model info dict, load seconds)."""
    from wattbench.backends.models import catalog
    from wattbench.backends.runtimes.registry import get_runtime

    chan.progress({"phase": Phase.LOADING, "message": f"loading {spec.model}"})
    entry = resolve_entry(spec)
    inputs = concrete_inputs(spec, entry)
    info = {
        "ref": entry.ref,
        "name": entry.name,
        "family": entry.family,
        "format": entry.format,
        "sha256": catalog.model_sha256(entry),
        "inputs": [[str(n), [int(s) for s in shape], str(dt)] for n, shape, dt in inputs],
        "parameters": entry.parameters,
    }
    runtime = get_runtime(spec.runtime)
    t0 = time.perf_counter_ns()
    loaded = runtime.load(entry, spec.device, runtime_options(spec))
    return loaded, info, (time.perf_counter_ns() - t0) / 1e9


def _is_oom(exc: BaseException) -> bool:
    """torch.OutOfMemoryError / onnxruntime allocation failures, recognized by name."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return "outofmemory" in text or "out of memory" in text or "failed to allocate" in text


def worker_main(conn: Connection, spec_dict: dict[str, Any], log_level: int = 0) -> None:
    """Entry point of the spawned worker process."""
    if log_level:
        logging.basicConfig(level=log_level, format="%(levelname)s worker %(name)s: %(message)s")
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    chan = _Channel(conn)
    chan.send(KIND_READY, {"pid": os.getpid(), "t_ready_ns": time.perf_counter_ns()})
    try:
        spec = RunSpec.from_dict(spec_dict)
        chan.progress({"phase": Phase.PREFLIGHT, "message": "describing the system"})
        t0 = time.perf_counter_ns()
        system = _describe_system()
        preflight_s = (time.perf_counter_ns() - t0) / 1e9
        loaded, model_info, load_s = _load(spec, chan)
        try:
            system["runtime_settings"] = jsonable(dict(loaded.settings()))
            out = measure(loaded, spec, chan.progress, load_s=load_s, before_measure=fault_hook())
        finally:
            loaded.close()
        arrays = out.pop("arrays")
        out["phases"]["preflight_s"] = preflight_s
        payload = jsonable(out | {"system": system, "model": model_info})
        chan.send(KIND_RESULT, payload, arrays)
    except MemoryError as exc:
        _send_error(chan, exc, kind="out_of_memory")
    except BadInputError as exc:
        _send_error(chan, exc, kind="bad_input")
    except WattbenchError as exc:
        _send_error(chan, exc, kind="error")
    except Exception as exc:
        kind = "out_of_memory" if _is_oom(exc) else "error"
        _send_error(chan, exc, kind=kind, tb=traceback.format_exc())
    finally:
        conn.close()


def _send_error(chan: _Channel, exc: BaseException, *, kind: str, tb: str | None = None) -> None:
    chan.send(
        KIND_ERROR,
        {
            "error_class": type(exc).__name__,
            "message": str(exc),
            "error_kind": kind,
            "phase": chan.phase,
            "traceback": tb,
        },
    )
