"""Runs on a fleet: one plan dispatched to named hosts through Dask distributed, every result
back in the caller's store.

``Fleet`` (``service.fleet_link``) is the connection to a scheduler (``wattbench scheduler``,
or an existing one) and the hosts that joined it (``wattbench agent``, each named, each
advertising its inventory).
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
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from wattbench.domain import codec
from wattbench.domain.errors import BadInputError
from wattbench.domain.events import CancelToken, ProgressCallback, ProgressEvent
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.service.fleet_agent import RUN_RESOURCE, run_task
from wattbench.service.fleet_link import Fleet
from wattbench.service.queue import QueueItem, QueueListener, RunQueue, RunRecorder

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a dispatcher looks at its run, its cancel token and its host


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
    ) -> None:
        if not hosts:
            raise BadInputError("Choose at least one host to run on.", field="on")
        keys = itertools.count(1)
        shared = _Serialized(recorder) if recorder is not None else None
        self.queues = {
            name: RunQueue(
                shared,
                listener,
                keep_aside=keep_aside,
                executor=RemoteExecutor(fleet, name),
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


__all__ = ["FleetRun", "RemoteExecutor"]
