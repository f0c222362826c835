"""The fleet's remote half: the scheduler and agent that ``wattbench scheduler`` and
``wattbench agent`` start, and the task an agent runs for the dispatcher (``service.fleet``).

An agent is a Dask nanny with one worker process: one thread and one ``wattbench-run``
resource (one run at a time), non-daemonic so that it can start each run's measuring worker,
no memory limit (a language model may use the host's memory; the nanny must not kill it for
that) and its host's inventory advertised as a worker metric. The nanny rewrites the
environment of its worker (``distributed.nanny.pre-spawn-environ`` sets OMP_NUM_THREADS,
MKL_NUM_THREADS and OPENBLAS_NUM_THREADS to 1 where the host has none, and PYTHONHASHSEED):
the agent hands its own environment over, and the task puts it back before the run's worker
is spawned, so a remote run measures with the host's own settings.

Dask's wire protocol unpickles what it receives: scheduler and agents listen on loopback
unless told otherwise, and TLS (``Security``) is for anything else, on a trusted network only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from wattbench.domain import codec
from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.domain.events import CancelToken, ProgressEvent
from wattbench.domain.fleet import HostDevice, HostInventory, HostPower
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec

log = logging.getLogger(__name__)

HOST_ENV = "WATTBENCH_HOST_ENV"  # the host's own environment (JSON), for the worker process
INVENTORY_ENV = "WATTBENCH_HOST_INVENTORY"  # the host's inventory document (JSON)
INVENTORY_METRIC = "wattbench-inventory"  # the worker metric that advertises it
RUN_RESOURCE = "wattbench-run"  # one per agent: one run at a time
DEFAULT_PORT = 8786
RECENT_SAMPLES = 256  # latencies per progress event sent back (for live charts)

_env_lock = threading.Lock()


# -- the host -----------------------------------------------------------------------------


def host_inventory() -> HostInventory:
    """This host's devices, the runtimes that use them and its power sources."""
    from wattbench import __version__
    from wattbench.service.inventory import device_inventory

    inv = device_inventory()
    power: dict[str, HostPower] = {}
    devices = []
    for d in inv.devices:
        for diag in d.power:
            power.setdefault(
                diag.title, HostPower(diag.title, diag.device, diag.ok, diag.estimate, diag.why)
            )
        devices.append(
            HostDevice(
                d.id,
                d.kind,
                d.name,
                tuple(sorted(r for r, info in d.runtimes.items() if info.usable)),
                tuple(diag.title for diag in d.power if diag.ok),
            )
        )
    cpu = inv.cpu
    return HostInventory(
        hostname=socket.gethostname(),
        cpu=cpu.get("model"),
        architecture=cpu.get("architecture"),
        logical_cpus=cpu.get("logical_cpus"),
        devices=tuple(devices),
        power=tuple(power.values()),
        notes=inv.notes,
        wattbench_version=__version__,
    )


_advertised: str | None = None  # the inventory this worker advertises, once read


def inventory_metric(worker: Any) -> str:
    """The worker metric: the inventory its agent computed (a JSON document), read from the
    environment once (a run puts the host's own environment back, which has none)."""
    global _advertised
    if _advertised is None:
        _advertised = os.environ.get(INVENTORY_ENV, "")
    return _advertised


def restore_host_environment() -> None:
    """Put back the environment the agent was started with (the nanny rewrote it)."""
    raw = os.environ.get(HOST_ENV)
    if raw is None:
        return
    env = json.loads(raw)
    inventory_metric(None)  # keep what this worker advertises
    with _env_lock:
        if dict(os.environ) == env | {HOST_ENV: raw}:
            return
        os.environ.clear()
        os.environ.update(env)
        os.environ[HOST_ENV] = raw


# -- the task -----------------------------------------------------------------------------


def _slim(event: ProgressEvent) -> ProgressEvent:
    """A progress event with its recent samples cut to the last few hundred."""
    from dataclasses import replace

    return replace(
        event,
        recent_latencies_ns=event.recent_latencies_ns[-RECENT_SAMPLES:],
        recent_starts_ns=event.recent_starts_ns[-RECENT_SAMPLES:],
    )


def run_task(
    spec_frame: bytes, run_id: str, run_index: int, run_count: int, cancel_name: str, topic: str
) -> bytes:
    """Run one spec on this host (a Dask task on an agent): validated here, measured in its
    own worker process with the host's environment, progress logged under ``topic``, stopped
    when the Dask event ``cancel_name`` is set. Returns the RunResult, MessagePack-encoded;
    never raises for a run that fails."""
    from distributed import Event, get_client, get_worker
    from wattbench.engine.runner import run_one

    restore_host_environment()
    worker = get_worker()
    spec = codec.decode_msgpack(spec_frame, RunSpec)
    token = CancelToken()
    cancel_event = Event(cancel_name, client=get_client())  # this worker's own client
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            try:
                if cancel_event.wait(timeout=0.2):
                    token.cancel()
                    return
            except Exception as exc:  # the scheduler went away: the run goes on alone
                log.warning("run %s: cancel event unreadable: %s", run_id[:8], exc)
                finished.wait(1.0)

    def progress(event: ProgressEvent) -> None:
        worker.log_event(topic, codec.to_document(_slim(event)))

    watcher = threading.Thread(target=watch, name=f"cancel-{run_id[:8]}", daemon=True)
    watcher.start()
    try:
        result = run_one(spec, progress, token, run_index, run_count, run_id=run_id)
    except BadInputError as exc:
        result = RunResult(
            spec=spec, status=RunStatus.FAILED, id=run_id, reason=str(exc), error_kind="bad_input"
        )
    except Exception as exc:  # the dispatcher gets a failed run, never a remote traceback
        log.exception("run %s failed on this host", run_id[:8])
        reason = str(exc) if isinstance(exc, WattbenchError) else f"{type(exc).__name__}: {exc}"
        result = RunResult(spec=spec, status=RunStatus.FAILED, id=run_id, reason=reason)
    finally:
        finished.set()
    return codec.encode_msgpack(result)


# -- the processes ------------------------------------------------------------------------


def serve_scheduler(
    host: str, port: int, security: Any | None, on_ready: Callable[[str], None]
) -> None:
    """A Dask scheduler on ``host:port`` until the process is stopped (no dashboard)."""
    from distributed import Scheduler

    async def main() -> None:
        async with Scheduler(
            host=host,
            port=port,
            protocol="tls" if security is not None else "tcp",
            security=security,
            dashboard=False,
            dashboard_address=f"{host}:0",  # its health endpoint, on the same interface
        ) as scheduler:
            on_ready(scheduler.address)
            await scheduler.finished()

    asyncio.run(main())


def serve_agent(
    scheduler: str,
    name: str,
    listen: str | None,
    security: Any | None,
    on_ready: Callable[[str], None],
) -> None:
    """A Dask nanny and its worker for this host, joined to ``scheduler`` as ``name``, until
    the process is stopped."""
    import dask
    from distributed import Nanny
    from distributed.worker import DEFAULT_METRICS

    host_env = dict(os.environ)
    inventory = json.dumps(codec.to_document(host_inventory()))
    dask.config.set({"distributed.worker.daemon": False})
    host = listen or _listen_host(scheduler)

    async def main() -> None:
        async with Nanny(
            scheduler,
            name=name,
            nthreads=1,
            resources={RUN_RESOURCE: 1},
            memory_limit=0,
            host=host,
            security=security,
            env={HOST_ENV: json.dumps(host_env), INVENTORY_ENV: inventory},
            metrics={**DEFAULT_METRICS, INVENTORY_METRIC: inventory_metric},
            dashboard=False,
            dashboard_address=f"{host}:0",
        ) as nanny:
            on_ready(str(nanny.worker_address))
            await nanny.finished()

    asyncio.run(main())


def _listen_host(scheduler: str) -> str:
    """Loopback for a scheduler on loopback; else the address this host reaches it from."""
    from distributed.comm import get_address_host
    from distributed.utils import get_ip

    where = get_address_host(scheduler)
    if where in ("localhost", "::1") or where.startswith("127."):
        return "127.0.0.1"
    return get_ip(where)


__all__ = [
    "DEFAULT_PORT",
    "INVENTORY_METRIC",
    "RUN_RESOURCE",
    "host_inventory",
    "run_task",
    "serve_agent",
    "serve_scheduler",
]
