"""Runs on a fleet: one plan dispatched to named hosts through Dask distributed, every result
back in the caller's store.

``Fleet`` is the connection to a scheduler (``wattbench scheduler``, or an existing one) and
the hosts that joined it (``wattbench agent``, each named, each advertising its inventory).
``FleetRun`` gives every chosen host the same plan (each spec with its ``host``) in a queue of
its own (``service.queue.RunQueue``, so storing, keeping aside and events are the local
queue's) whose executor is ``RemoteExecutor``: the spec goes to that host's agent only, which
runs it as a local run would (``fleet_agent.run_task``), and the RunResult comes back as typed
data. Hosts run side by side, in rounds: no host starts round r + 1 before every host has
ended round r. Cancel sets a Dask event the remote run watches (it stops within a second); a
host that leaves the scheduler mid-run turns its run into a failed run with the reason, and
the other hosts go on.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattbench.domain import codec
from wattbench.domain.errors import BadInputError, FleetError
from wattbench.domain.events import CancelToken, ProgressCallback, ProgressEvent
from wattbench.domain.fleet import FleetHost, HostInventory
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.service.fleet_agent import INVENTORY_METRIC, RUN_RESOURCE, run_task
from wattbench.service.queue import QueueItem, QueueListener, RunQueue, RunRecorder

log = logging.getLogger(__name__)

SCHEDULER_ENV = "WATTBENCH_SCHEDULER"
TLS_ENV = {"ca": "WATTBENCH_TLS_CA", "cert": "WATTBENCH_TLS_CERT", "key": "WATTBENCH_TLS_KEY"}
ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")
POLL_S = 0.2  # how often a dispatcher looks at its run, its cancel token and its host
HOSTS_TTL_S = 0.5  # the hosts' list is asked for at most this often
CONNECT_TIMEOUT_S = 10.0


# -- where the scheduler is, and how to talk to it ----------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS fleet: the CA that signed every certificate, this process's
    certificate and its key (one certificate may serve every role on a trusted network)."""

    ca: str
    cert: str
    key: str

    @classmethod
    def from_env(cls) -> TlsFiles | None:
        values = {k: os.environ.get(v) for k, v in TLS_ENV.items()}
        if not any(values.values()):
            return None
        return cls.given(values["ca"], values["cert"], values["key"])

    @classmethod
    def given(cls, ca: str | None, cert: str | None, key: str | None) -> TlsFiles | None:
        """The files given (all three or none); BadInputError for a partial or unreadable set."""
        if not (ca or cert or key):
            return None
        missing = [
            n for n, v in (("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)) if not v
        ]
        if missing:
            raise BadInputError(
                f"TLS needs the CA, the certificate and the key: add {', '.join(missing)}.",
                field="tls",
            )
        for path in (ca, cert, key):
            if not Path(str(path)).is_file():
                raise BadInputError(f"TLS file {path} is not there (or not a file).", field="tls")
        return cls(str(ca), str(cert), str(key))

    def security(self) -> Any:
        from distributed.security import Security

        return Security(
            tls_ca_file=self.ca,
            tls_client_cert=self.cert,
            tls_client_key=self.key,
            tls_scheduler_cert=self.cert,
            tls_scheduler_key=self.key,
            tls_worker_cert=self.cert,
            tls_worker_key=self.key,
            require_encryption=True,
        )


def scheduler_address(given: str | None) -> str:
    """The scheduler's address: ``given``, else $WATTBENCH_SCHEDULER; checked for its form."""
    address = (given or os.environ.get(SCHEDULER_ENV) or "").strip()
    if not address:
        raise BadInputError(
            "Say which scheduler: --scheduler tcp://HOST:8786 (or set WATTBENCH_SCHEDULER); "
            "start one with `wattbench scheduler`.",
            field="scheduler",
        )
    if not ADDRESS.fullmatch(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise BadInputError(
            f"A scheduler address reads tcp://HOST:PORT or tls://HOST:PORT (got {address!r}).",
            field="scheduler",
        )
    return address


def security_for(address: str, tls: TlsFiles | None) -> Any | None:
    """Dask's security for ``address``: TLS with the files for tls://, none for tcp://."""
    if address.startswith("tls://"):
        if tls is None:
            raise BadInputError(
                f"{address} speaks TLS: give --tls-ca, --tls-cert and --tls-key (or set "
                f"{', '.join(TLS_ENV.values())}).",
                field="tls",
            )
        return tls.security()
    if tls is not None:
        raise BadInputError(
            f"TLS files were given but {address} is plain TCP: use tls://{address[6:]}.",
            field="tls",
        )
    return None


# -- the connection -----------------------------------------------------------------------


def _host_of(address: str, worker: dict[str, Any]) -> FleetHost:
    name = str(worker.get("name", address))
    metrics = worker.get("metrics") or {}
    raw = metrics.get(INVENTORY_METRIC) if isinstance(metrics, dict) else None
    inventory: HostInventory | None = None
    problem = None
    if raw:
        try:
            inventory = codec.from_document(json.loads(str(raw)), HostInventory)
        except (codec.CodecError, ValueError) as exc:
            problem = f"its inventory is unreadable: {exc}"
    else:
        problem = "not a wattbench agent (no inventory)"
    running = metrics.get("executing", 0) if isinstance(metrics, dict) else 0
    return FleetHost(name, address, inventory, int(running or 0), problem)


class Fleet:
    """A connection to a fleet's scheduler (a Dask client). Thread-safe; close it."""

    def __init__(self, client: Any, address: str) -> None:
        self.client = client
        self.address = address
        self._lock = threading.Lock()
        self._hosts: tuple[float, list[FleetHost]] | None = None

    @classmethod
    def connect(
        cls, address: str | None = None, tls: TlsFiles | None = None, *, timeout_s: float = 10.0
    ) -> Fleet:
        """Connect to the scheduler (FleetError with what to do when it cannot be reached)."""
        where = scheduler_address(address)
        security = security_for(where, tls if tls is not None else TlsFiles.from_env())
        from distributed import Client

        try:
            client = Client(where, security=security, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise FleetError(
                f"The fleet's scheduler at {where} cannot be reached ({exc}). Start it with "
                "`wattbench scheduler` on that host, or check the address and the TLS files."
            ) from exc
        return cls(client, where)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hosts(self, *, fresh: bool = False) -> list[FleetHost]:
        """The hosts connected now, by name (asked of the scheduler at most every 0.5 s)."""
        with self._lock:
            now = time.monotonic()
            if not fresh and self._hosts is not None and now - self._hosts[0] < HOSTS_TTL_S:
                return self._hosts[1]
            try:
                info = self.client.scheduler_info(n_workers=-1)
            except (OSError, TimeoutError) as exc:
                raise FleetError(
                    f"The fleet's scheduler at {self.address} stopped answering ({exc})."
                ) from exc
            hosts = sorted(
                (_host_of(a, w) for a, w in info.get("workers", {}).items()), key=lambda h: h.name
            )
            self._hosts = (now, hosts)
            return hosts

    def address_of(self, name: str) -> str | None:
        return next((h.address for h in self.hosts() if h.name == name), None)

    def choose(self, names: Sequence[str]) -> list[FleetHost]:
        """The hosts named (``all``: every connected one); BadInputError naming the missing."""
        hosts = self.hosts(fresh=True)
        if not hosts:
            raise BadInputError(
                f"No host has joined the scheduler at {self.address}: start `wattbench agent "
                f"--scheduler {self.address}` on each host.",
                field="on",
            )
        if list(names) == ["all"]:
            return hosts
        by_name = {h.name: h for h in hosts}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadInputError(
                f"Not connected to the scheduler: {', '.join(missing)} (connected: "
                f"{', '.join(by_name)}).",
                field="on",
            )
        return [by_name[n] for n in dict.fromkeys(names)]


def parse_hosts(text: str) -> tuple[str, ...]:
    """``--on a,b`` or ``--on all`` as names; BadInputError for an empty list."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise BadInputError("--on names the hosts: --on HOST[,HOST…] or --on all.", field="on")
    return names


# -- one run on one host --------------------------------------------------------------------


def _failed(spec: RunSpec, run_id: str, reason: str) -> RunResult:
    return RunResult(spec=spec, status=RunStatus.FAILED, id=run_id, reason=reason)


class RemoteExecutor:
    """The executor of one host's queue: each run goes to that host's agent only."""

    def __init__(self, fleet: Fleet, host: str) -> None:
        self.fleet = fleet
        self.host = host

    def __call__(
        self,
        spec: RunSpec,
        progress: ProgressCallback,
        cancel: CancelToken,
        run_index: int,
        run_count: int,
        *,
        run_id: str,
    ) -> RunResult:
        address = self.fleet.address_of(self.host)
        if address is None:
            return _failed(
                spec,
                run_id,
                f"Host {self.host} is not connected to the scheduler (its agent stopped or its "
                "network is down): the run did not start.",
            )
        client = self.fleet.client
        topic, cancel_name = f"wattbench-progress-{run_id}", f"wattbench-cancel-{run_id}"

        def on_event(event: tuple[float, Any]) -> None:
            try:
                progress(codec.from_document(event[1], ProgressEvent))
            except codec.CodecError as exc:
                log.warning(
                    "run %s: a progress event from %s is unreadable: %s", run_id[:8], self.host, exc
                )

        client.subscribe_topic(topic, on_event)
        try:
            future = client.submit(
                run_task,
                codec.encode_msgpack(spec),
                run_id,
                run_index,
                run_count,
                cancel_name,
                topic,
                key=f"wattbench-run-{run_id}",
                workers=[address],
                allow_other_workers=False,
                resources={RUN_RESOURCE: 1},
                pure=False,
            )
            frame = self._wait(future, cancel, cancel_name, address, spec, run_id)
        finally:
            client.unsubscribe_topic(topic)
        if isinstance(frame, RunResult):
            return frame
        return self._decode(frame, spec, run_id)

    def _wait(
        self,
        future: Any,
        cancel: CancelToken,
        cancel_name: str,
        address: str,
        spec: RunSpec,
        run_id: str,
    ) -> bytes | RunResult:
        from distributed import Event

        told = False
        while True:
            try:
                return future.result(timeout=POLL_S)
            except TimeoutError:
                pass
            except Exception as exc:  # the task itself broke on the host (not a failed run)
                return _failed(
                    spec, run_id, f"Host {self.host} could not run it: {type(exc).__name__}: {exc}"
                )
            if cancel.cancelled and not told:
                Event(cancel_name, client=self.fleet.client).set()
                told = True
            if self.fleet.address_of(self.host) != address:
                future.cancel()
                return _failed(
                    spec,
                    run_id,
                    f"Host {self.host} left the fleet mid-run (its agent stopped or its network "
                    "went down): the run was not measured to its end.",
                )

    def _decode(self, frame: object, spec: RunSpec, run_id: str) -> RunResult:
        if not isinstance(frame, bytes):
            return _failed(
                spec, run_id, f"Host {self.host} sent back {type(frame).__name__}, not a run."
            )
        try:
            result = codec.decode_msgpack(frame, RunResult)
        except codec.CodecError as exc:
            return _failed(
                spec, run_id, f"Host {self.host} sent back a result that is not a run: {exc}"
            )
        if result.id != run_id or result.spec != spec:
            return _failed(
                spec,
                run_id,
                f"Host {self.host} sent back another run ({result.id[:8]}) than the one sent.",
            )
        return result


# -- a plan on several hosts ----------------------------------------------------------------


class _Serialized:
    """A recorder written to by one host's thread at a time (SQLite takes one writer)."""

    def __init__(self, recorder: RunRecorder) -> None:
        self._recorder = recorder
        self._lock = threading.Lock()

    def begin_run(self, spec: RunSpec, run_id: str) -> None:
        with self._lock:
            self._recorder.begin_run(spec, run_id)

    def finish_run(self, result: RunResult) -> None:
        with self._lock:
            self._recorder.finish_run(result)


class FleetRun:
    """The same plan on several hosts: one queue per host, run side by side in rounds."""

    def __init__(
        self,
        fleet: Fleet,
        hosts: Sequence[str],
        recorder: RunRecorder | None = None,
        listener: QueueListener | None = None,
        *,
        keep_aside: bool = True,
        executor_for: Callable[[Fleet, str], Any] = RemoteExecutor,
    ) -> None:
        if not hosts:
            raise BadInputError("Choose at least one host to run on.", field="on")
        keys = itertools.count(1)
        shared = _Serialized(recorder) if recorder is not None else None
        self.fleet = fleet
        self.queues = {
            name: RunQueue(
                shared,
                listener,
                keep_aside=keep_aside,
                executor=executor_for(fleet, name),
                keys=keys,
            )
            for name in hosts
        }

    def submit(self, specs: Sequence[RunSpec]) -> list[QueueItem]:
        """Every host gets every spec (with its name), in the plan's order."""
        added: list[QueueItem] = []
        for name, queue in self.queues.items():
            added += queue.submit([s.with_(host=name) for s in specs])
        return added

    def items(self) -> list[QueueItem]:
        """Every run, in the order submitted (host by host)."""
        return sorted((it for q in self.queues.values() for it in q.items()), key=lambda it: it.key)

    def cancel_all(self) -> None:
        for queue in self.queues.values():
            queue.cancel_all()

    def run_all(self) -> list[QueueItem]:
        """Run every host's queue to its end, hosts side by side, round by round."""
        rounds = sorted({it.spec.repeat for q in self.queues.values() for it in q.items()})
        barrier = threading.Barrier(len(self.queues))

        def drive(queue: RunQueue) -> None:
            for r in rounds:
                while queue.run_next(lambda it, r=r: it.spec.repeat <= r) is not None:  # type: ignore[misc]
                    pass
                # another host's thread broke: go on without waiting for it
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()

        threads = [
            threading.Thread(target=self._guard, args=(drive, q, barrier), name=f"fleet-{n}")
            for n, q in self.queues.items()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.items()

    @staticmethod
    def _guard(
        drive: Callable[[RunQueue], None], queue: RunQueue, barrier: threading.Barrier
    ) -> None:
        try:
            drive(queue)
        except Exception:
            log.exception("a fleet host's queue stopped")
            barrier.abort()


__all__ = [
    "SCHEDULER_ENV",
    "Fleet",
    "FleetRun",
    "RemoteExecutor",
    "TlsFiles",
    "parse_hosts",
    "scheduler_address",
    "security_for",
]
