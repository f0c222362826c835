"""The run queue: one run at a time, begin → run → finish → store, for every front end.

``RunQueue`` holds the runs submitted (already planned and checked, see ``plan``), runs each in
its own worker process through the engine, records it in the store before it starts (so a
crash leaves a trace) and stores its result when it ends, and goes on after a failure. Every
change is reported to the listener as a ``QueueEvent`` carrying an immutable snapshot of the
item, from the thread that made the change. Cancel reaches a queued run (it never starts) or
the running one (its worker stops within a second).

The CLI calls ``run_all`` on its main thread; the GUI's controller calls ``serve`` on its run
thread and turns the events into Qt signals.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from wattbench.db.spool import Spool
from wattbench.domain.errors import WattbenchError
from wattbench.domain.events import CancelToken, Phase, ProgressCallback, ProgressEvent
from wattbench.domain.result import RunResult, RunStatus, new_run_id
from wattbench.domain.spec import RunSpec, join_label

log = logging.getLogger(__name__)


class ItemState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (ItemState.DONE, ItemState.FAILED, ItemState.CANCELLED)


_STATE_OF = {RunStatus.DONE: ItemState.DONE, RunStatus.CANCELLED: ItemState.CANCELLED}
_PHASE_OF = {ItemState.DONE: Phase.DONE, ItemState.CANCELLED: Phase.CANCELLED}


@dataclass(frozen=True)
class QueueItem:
    """One queued run as it stands (a snapshot: the queue makes a new one on every change)."""

    key: int
    spec: RunSpec
    run_id: str  # the id it is (or will be) stored under
    state: ItemState = ItemState.QUEUED
    phase: str = Phase.QUEUED
    message: str = ""
    n: int = 0
    rho: float | None = None
    epsilon: float | None = None
    fraction: float | None = None
    elapsed_s: float = 0.0
    reason: str | None = None  # why it failed or was cancelled, and why it was not stored
    stored: bool = False
    store_error: str | None = None
    kept_at: str | None = None  # the spool file of a run that could not be stored
    converged: bool | None = None  # known once the run is done
    result: RunResult | None = None  # once a run that started has ended

    @property
    def label(self) -> str:
        """The run's configuration, with its round when it is one of a plan's runs."""
        if self.spec.sweep_id is None:
            return self.spec.label()
        return join_label((self.spec.label(), f"round {self.spec.repeat + 1}"))

    @property
    def result_id(self) -> str | None:
        """The run's id once it ran (stored or not); None for a run that never started."""
        return self.run_id if self.result is not None else None

    @property
    def unstored(self) -> bool:
        """A run that ended with a result that is not in the store (kept aside, or lost when
        even the spool failed); a queue without a store (``--no-store``) has none."""
        return self.result is not None and not self.stored and self.store_error is not None


class EventKind(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"  # done, failed or cancelled (a queued run cancelled included)


@dataclass(frozen=True)
class QueueEvent:
    kind: EventKind
    item: QueueItem
    progress: ProgressEvent | None = None  # PROGRESS only


QueueListener = Callable[[QueueEvent], None]


class Executor(Protocol):
    """Runs one queued spec to its end (a RunResult, never an exception for a failing run):
    here in a worker process (``run_here``), or on a fleet host (``service.fleet``)."""

    def __call__(
        self,
        spec: RunSpec,
        progress: ProgressCallback,
        cancel: CancelToken,
        run_index: int,
        run_count: int,
        *,
        run_id: str,
    ) -> RunResult: ...


def run_here(
    spec: RunSpec,
    progress: ProgressCallback,
    cancel: CancelToken,
    run_index: int,
    run_count: int,
    *,
    run_id: str,
) -> RunResult:
    """The local executor: the engine's ``run_one`` on a spec the plan checked already."""
    # imported on the run thread at the first run: the engine (supervisor, sampler, worker)
    # is not needed to show a queue, and the GUI window should not wait for its import
    from wattbench.engine.runner import run_one

    return run_one(spec, progress, cancel, run_index, run_count, run_id=run_id, validated=True)


class RunRecorder(Protocol):
    """Where runs are recorded: the run store (``db.store.Store``) or anything like it."""

    def begin_run(self, spec: RunSpec, run_id: str) -> None: ...

    def finish_run(self, result: RunResult) -> None: ...


def _message(exc: BaseException) -> str:
    if isinstance(exc, WattbenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class RunQueue:
    """See the module docstring. Thread-safe: submit and cancel from any thread.

    ``keep_aside``: where a result goes that the recorder cannot take (or every result, when
    there is no recorder because no store could be opened): the data folder's spool (True,
    ``db.spool``), another spool, or nowhere (False: the user chose not to store runs). A
    spooled run is stored at the next open of a run store.
    """

    def __init__(
        self,
        recorder: RunRecorder | None = None,
        listener: QueueListener | None = None,
        *,
        keep_aside: bool | Spool = True,
        executor: Executor = run_here,
        keys: Iterator[int] | None = None,
    ) -> None:
        self.recorder = recorder
        self.executor = executor
        self.listener = listener
        self.spool = Spool.default() if keep_aside is True else keep_aside or None
        self._lock = threading.Condition()
        self._keys = keys or itertools.count(1)  # queues that share a listener share keys
        self._items: dict[int, QueueItem] = {}
        self._tokens: dict[int, CancelToken] = {}
        self._order: list[int] = []  # queued keys, in order
        self._started = 0  # runs started since the queue was last idle
        self._closed = False

    # -- state ----------------------------------------------------------------------------
    def items(self) -> list[QueueItem]:
        with self._lock:
            return list(self._items.values())

    def item(self, key: int) -> QueueItem | None:
        with self._lock:
            return self._items.get(key)

    @property
    def busy(self) -> bool:
        with self._lock:
            return any(not it.state.finished for it in self._items.values())

    def pending_count(self) -> int:
        with self._lock:
            return sum(1 for it in self._items.values() if not it.state.finished)

    def _update(self, key: int, **changes: object) -> QueueItem:
        with self._lock:
            item = dataclasses.replace(self._items[key], **changes)  # type: ignore[arg-type]
            self._items[key] = item
            return item

    def _emit(self, event: QueueEvent) -> None:
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:  # a broken listener must not stop the queue
            log.exception("queue listener failed")

    # -- submitting and cancelling -------------------------------------------------------------
    def submit(self, specs: Sequence[RunSpec]) -> list[QueueItem]:
        """Queue runs (planned and checked already); they run in this order."""
        added = []
        with self._lock:
            for spec in specs:
                key = next(self._keys)
                item = QueueItem(key, spec, new_run_id(), epsilon=spec.target_epsilon)
                self._items[key] = item
                self._tokens[key] = CancelToken()
                self._order.append(key)
                added.append(item)
            self._lock.notify_all()
        for item in added:
            self._emit(QueueEvent(EventKind.QUEUED, item))
        return added

    def cancel(self, key: int) -> None:
        """A queued run never starts; the running one stops within a second."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item.state.finished:
                return
            self._tokens[key].cancel()
            queued = item.state is ItemState.QUEUED
            if queued:
                self._order.remove(key)
        if queued:
            done = self._update(
                key,
                state=ItemState.CANCELLED,
                phase=Phase.CANCELLED,
                reason="Cancelled before it started.",
            )
            self._emit(QueueEvent(EventKind.FINISHED, done))
        else:
            self._emit(QueueEvent(EventKind.PROGRESS, self._update(key, message="cancelling…")))

    def cancel_all(self) -> None:
        for item in self.items():
            self.cancel(item.key)

    def clear_finished(self) -> None:
        with self._lock:
            for key in [k for k, it in self._items.items() if it.state.finished]:
                del self._items[key]
                self._tokens.pop(key, None)

    # -- running ------------------------------------------------------------------------------
    def run_all(self) -> list[QueueItem]:
        """Run every queued run, one after the other; their final snapshots in queue order."""
        keys = []
        while (item := self.run_next()) is not None:
            keys.append(item.key)
        with self._lock:
            return [self._items[k] for k in keys if k in self._items]

    def serve(self) -> None:
        """Run queued runs as they come until ``close`` (the GUI's run thread)."""
        while True:
            with self._lock:
                while not self._order and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
            self.run_next()

    def close(self) -> None:
        """Cancel everything and let ``serve`` return."""
        self.cancel_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def run_next(self, when: Callable[[QueueItem], bool] | None = None) -> QueueItem | None:
        """Run the next queued run to its end (stored); None when nothing is queued (or the
        next one is not to run yet: ``when`` says no, as for a fleet's next round)."""
        with self._lock:
            if not self._order:
                self._started = 0
                return None
            if when is not None and not when(self._items[self._order[0]]):
                return None
            key = self._order.pop(0)
            token = self._tokens[key]
            index = self._started
            self._started += 1
            count = index + 1 + len(self._order)
        item = self._update(key, state=ItemState.RUNNING, phase=Phase.STARTING)
        self._emit(QueueEvent(EventKind.STARTED, item))
        try:
            return self._execute(item, token, index, count)
        except Exception as exc:  # never let the queue die with a run
            log.exception("run %s: unexpected error", item.run_id[:8])
            failed = self._update(
                key, state=ItemState.FAILED, phase=Phase.FAILED, reason=_message(exc)
            )
            self._emit(QueueEvent(EventKind.FINISHED, failed))
            return failed

    def _execute(self, item: QueueItem, token: CancelToken, index: int, count: int) -> QueueItem:
        store_error: str | None = None
        if self.recorder is not None:
            try:
                self.recorder.begin_run(item.spec, item.run_id)
            except Exception as exc:  # measure anyway; finishing may still store it
                log.warning("run %s: could not record its start: %s", item.run_id[:8], exc)
                store_error = _message(exc)

        def progress(event: ProgressEvent) -> None:
            cancelling = token.cancelled
            snap = self._update(
                item.key,
                phase=event.phase,
                message="cancelling…" if cancelling else event.message,
                n=event.n,
                rho=event.rho,
                epsilon=event.epsilon if event.epsilon is not None else item.epsilon,
                fraction=event.fraction,
                elapsed_s=event.elapsed_s,
            )
            self._emit(QueueEvent(EventKind.PROGRESS, snap, progress=event))

        try:
            result = self.executor(item.spec, progress, token, index, count, run_id=item.run_id)
        except WattbenchError as exc:  # an executor should not raise; keep the queue going
            result = RunResult(
                spec=item.spec, status=RunStatus.FAILED, id=item.run_id, reason=str(exc)
            )
        stored, kept_at = False, None
        if self.recorder is not None:
            try:
                self.recorder.finish_run(result)
                stored, store_error = True, None
            except Exception as exc:
                log.error("run %s: could not store its result: %s", item.run_id[:8], exc)
                store_error = _message(exc)
        elif self.spool is not None:
            store_error = store_error or "no run store could be opened"
        if not stored and self.spool is not None:
            try:
                kept_at = str(self.spool.keep(result))
                store_error = (
                    f"{store_error}. It is kept aside in {kept_at} and will be stored at the "
                    "next open of a run store"
                )
            except WattbenchError as exc:
                store_error = f"{store_error}. {exc}"
        state = _STATE_OF.get(result.status, ItemState.FAILED)
        reasons = [r for r in (result.reason, store_error and f"Not stored: {store_error}") if r]
        done = self._update(
            item.key,
            state=state,
            phase=_PHASE_OF.get(state, Phase.FAILED),
            message="",
            reason=" ".join(reasons) or None,
            stored=stored,
            store_error=store_error,
            kept_at=kept_at,
            converged=result.converged,
            n=result.latency.n if result.latency is not None else item.n,
            rho=result.latency.rho if result.latency is not None else None,
            result=result,
        )
        self._emit(QueueEvent(EventKind.FINISHED, done))
        return done
