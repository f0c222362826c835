"""The one place where the GUI crosses threads.

The controller owns the run thread (runs execute one at a time, each in its own worker process
through the engine's supervisor), a single database thread (every store call, serialized) and a
small pool for other long work (catalog, devices, validation, comparison, sensors, reports).
It re-emits typed Qt signals on the GUI thread; widgets call its methods and connect to its
signals, and never touch threads, the store or the engine themselves.

Engine, store and backend modules are imported inside the functions that run off the GUI
thread, so the window appears before torch (or SQLAlchemy) is loaded.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal, Slot
from wattbench.domain.errors import WattbenchError
from wattbench.domain.events import CancelToken, Phase, ProgressEvent
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.gui import services
from wattbench.gui.live_buffer import LiveBuffer

log = logging.getLogger(__name__)

T = TypeVar("T")

PROGRESS_MIN_INTERVAL_NS = 100_000_000  # at most ~10 progress signals per second per run
RUN_CACHE_SIZE = 64  # loaded runs (with arrays) kept for the compare view


class ItemState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (ItemState.DONE, ItemState.FAILED, ItemState.CANCELLED)


@dataclass
class QueueItem:
    """One queued run as the GUI sees it. Mutated on the GUI thread only."""

    key: int
    spec: RunSpec
    state: ItemState = ItemState.QUEUED
    phase: str = Phase.QUEUED
    message: str = ""
    n: int = 0
    rho: float | None = None
    epsilon: float | None = None
    fraction: float | None = None
    elapsed_s: float = 0.0
    result_id: str | None = None
    reason: str | None = None
    stored: bool = False
    converged: bool | None = None  # known once the run is done
    token: CancelToken = field(default_factory=CancelToken, repr=False)

    @property
    def label(self) -> str:
        return self.spec.label()


def user_message(exc: BaseException) -> str:
    """The text to show for an exception: ours carry a message for the user."""
    if isinstance(exc, WattbenchError):
        return str(exc)
    return f"Internal error ({type(exc).__name__}: {exc}). See the log for details."


class Controller(QObject):
    """Owns every thread of the GUI; see the module docstring."""

    # store
    storeReady = Signal(str)  # a description of the open store (URL with any password hidden)
    storeFailed = Signal(str)
    storeDescribed = Signal(str)  # the store's description again (e.g. its run count changed)
    runsListed = Signal(object)  # list[RunSummary]
    runLoaded = Signal(object)  # RunResult (with arrays)
    runsChanged = Signal()  # something was added, deleted, tagged or noted
    costProfilesReady = Signal(object)  # list[CostProfile]
    # catalog, devices, sensors
    catalogReady = Signal(object)  # list[ModelEntry]
    modelResolved = Signal(object)  # ModelEntry
    modelRejected = Signal(str, str)  # path, message
    devicesReady = Signal(object)  # services.DeviceInventory
    sensorsReady = Signal(object)  # services.SensorReport
    # launching and the queue
    launchChecking = Signal(int)  # request id: validation started
    launchRejected = Signal(int, str)  # request id, message (nothing was queued)
    launched = Signal(int, object)  # request id, list[int] of queue keys
    queueChanged = Signal()  # items added or cleared
    itemChanged = Signal(int)  # one item's state or progress changed
    runStarted = Signal(int)
    runFinished = Signal(int, object)  # key, RunResult (stored)
    queueIdle = Signal()
    # comparison and reports
    comparisonReady = Signal(object)  # services.ComparisonView
    comparisonFailed = Signal(str)
    reportWritten = Signal(str)
    # navigation between pages: the runs browser asks for a comparison of its selection
    compareRequested = Signal(object)  # list[str] of run ids (also kept in compare_selection)
    pageRequested = Signal(str)  # a page name, see MainWindow.show_page
    # anything else that failed off the GUI thread: (what, message)
    failed = Signal(str, str)

    _deliver = Signal(object, object)  # (callback, value) from any thread, run on the GUI thread

    def __init__(self, db_url: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)
        self._db_url = db_url
        self._store: Any = None
        self._store_description = ""
        self._closed = False
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="wattbench-db")
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="wattbench-work")
        self._keys = itertools.count(1)
        self._requests = itertools.count(1)
        self.items: dict[int, QueueItem] = {}
        self._jobs: queue.Queue[tuple[int, RunSpec, CancelToken] | None] = queue.Queue()
        self._runs_started = 0
        self.live = LiveBuffer()
        self._run_cache: OrderedDict[str, RunResult] = OrderedDict()
        self.compare_selection: list[str] = []  # the last ids sent to the compare page
        self._run_thread = threading.Thread(
            target=self._run_loop, name="wattbench-runs", daemon=True
        )
        self._run_thread.start()

    # ------------------------------------------------------------------ thread plumbing
    def _post(self, callback: Callable[[Any], None], value: Any = None) -> None:
        """Run callback(value) on the GUI thread (callable from any thread)."""
        if self._closed:
            return
        try:
            self._deliver.emit(callback, value)
        except RuntimeError:  # the QObject is gone (application shutting down)
            log.debug("dropped a delivery after shutdown")

    @Slot(object, object)
    def _on_deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        if self._closed:
            return
        try:
            callback(value)
        except Exception:  # a bug in a GUI callback must not kill the event loop
            log.exception("error in a GUI callback")

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        what: str,
        fn: Callable[[], T],
        on_ok: Callable[[T], None],
        on_error: Callable[[str], None] | None = None,
    ) -> Future[T] | None:
        """Run fn() on pool; on_ok(result) or on_error(message) later on the GUI thread."""
        if self._closed:
            return None

        def done(future: Future[T]) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is None:
                self._post(on_ok, future.result())
                return
            if not isinstance(exc, WattbenchError):
                log.error("%s failed", what, exc_info=exc)
            message = user_message(exc)
            if on_error is not None:
                self._post(on_error, message)
            else:
                self._post(lambda m: self.failed.emit(what, m), message)

        try:
            future = pool.submit(fn)
        except RuntimeError:  # pool shut down
            return None
        future.add_done_callback(done)
        return future

    def _db(
        self,
        what: str,
        fn: Callable[[Any], T],
        on_ok: Callable[[T], None],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Run fn(store) on the database thread."""

        def call() -> T:
            if self._store is None:
                raise WattbenchError("The run database is not open: choose a database in Settings.")
            return fn(self._store)

        self._submit(self._db_pool, what, call, on_ok, on_error)

    def _db_blocking(self, fn: Callable[[Any], T]) -> T:
        """Call fn(store) on the database thread and wait (for the run thread only)."""

        def call() -> T:
            if self._store is None:
                raise WattbenchError("The run database is not open: choose a database in Settings.")
            return fn(self._store)

        return self._db_pool.submit(call).result()

    # ------------------------------------------------------------------ store
    @property
    def store_description(self) -> str:
        return self._store_description

    def open_store(self, url: str | None = None) -> None:
        """(Re)open the run store; storeReady or storeFailed follows."""
        self._db_url = url

        def open_() -> tuple[Any, str]:
            old = self._store
            self._store = None
            if old is not None:
                services.close_store(old)
            store = services.open_store(url)
            self._store = store
            return store, services.describe_store(store, url)

        def ok(value: tuple[Any, str]) -> None:
            self._store_description = value[1]
            self.storeReady.emit(value[1])
            self.runsChanged.emit()

        def bad(message: str) -> None:
            self._store_description = ""
            self.storeFailed.emit(message)

        self._run_cache.clear()
        self._submit(self._db_pool, "open the run database", open_, ok, bad)

    def refresh_store_description(self) -> None:
        """Describe the open store again (database thread): storeDescribed follows."""

        def describe(store: Any) -> str:
            return services.describe_store(store, self._db_url)

        def ok(text: str) -> None:
            self._store_description = text
            self.storeDescribed.emit(text)

        self._db("describe the run database", describe, ok, lambda _message: None)

    def refresh_runs(self, limit: int = 10_000) -> None:
        self._db("list runs", lambda s: services.list_runs(s, limit=limit), self.runsListed.emit)

    def load_run(self, run_id: str) -> None:
        cached = self._run_cache.get(run_id)
        if cached is not None:
            self.runLoaded.emit(cached)
            return

        def ok(result: RunResult) -> None:
            self._remember(result)
            self.runLoaded.emit(result)

        self._db("load a run", lambda s: s.get_run(run_id, with_arrays=True), ok)

    def add_tag(self, run_ids: Sequence[str], tag: str) -> None:
        ids = list(run_ids)

        def do(store: Any) -> None:
            for rid in ids:
                store.add_tag(rid, tag)

        self._db("tag runs", do, lambda _: self._changed(ids))

    def remove_tag(self, run_ids: Sequence[str], tag: str) -> None:
        ids = list(run_ids)

        def do(store: Any) -> None:
            for rid in ids:
                store.remove_tag(rid, tag)

        self._db("untag runs", do, lambda _: self._changed(ids))

    def set_note(self, run_id: str, note: str) -> None:
        self._db(
            "save a note", lambda s: s.set_note(run_id, note), lambda _: self._changed([run_id])
        )

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        ids = list(run_ids)
        self._db("delete runs", lambda s: s.delete_runs(ids), lambda _: self._changed(ids))

    def _changed(self, run_ids: Sequence[str]) -> None:
        for rid in run_ids:
            self._run_cache.pop(rid, None)
        self.runsChanged.emit()

    def _remember(self, result: RunResult) -> None:
        self._run_cache[result.id] = result
        self._run_cache.move_to_end(result.id)
        while len(self._run_cache) > RUN_CACHE_SIZE:
            self._run_cache.popitem(last=False)

    # cost profiles
    def refresh_cost_profiles(self) -> None:
        self._db(
            "read cost profiles", lambda s: list(s.get_cost_profiles()), self.costProfilesReady.emit
        )

    def save_cost_profile(self, profile: Any) -> None:
        self._db(
            "save a cost profile",
            lambda s: s.save_cost_profile(profile),
            lambda _: self.refresh_cost_profiles(),
        )

    def delete_cost_profile(self, device: str, name: str) -> None:
        self._db(
            "delete a cost profile",
            lambda s: services.delete_cost_profile(s, device, name),
            lambda _: self.refresh_cost_profiles(),
        )

    # ------------------------------------------------------------------ catalog, devices, sensors
    def refresh_catalog(self) -> None:
        self._submit(self._pool, "list models", services.list_models, self.catalogReady.emit)

    def resolve_model_file(
        self,
        path: str,
        dims: dict[str, int] | None = None,
        input_shapes: dict[str, str] | None = None,
    ) -> None:
        """Check a model file off-thread: modelResolved or modelRejected follows."""
        self._submit(
            self._pool,
            "open a model file",
            lambda: services.resolve_model(path, dims, input_shapes),
            self.modelResolved.emit,
            lambda message: self.modelRejected.emit(path, message),
        )

    def refresh_devices(self) -> None:
        self._submit(self._pool, "list devices", services.device_inventory, self.devicesReady.emit)

    def diagnose_sensors(self) -> None:
        self._submit(self._pool, "diagnose sensors", services.sensor_report, self.sensorsReady.emit)

    # ------------------------------------------------------------------ launching runs
    def launch(self, specs: Sequence[RunSpec]) -> int:
        """Validate specs off-thread, then queue them all, or none (launchRejected)."""
        request = next(self._requests)
        specs = list(specs)
        if not specs:
            self.launchRejected.emit(request, "Nothing to run: choose a model and a device.")
            return request
        self.launchChecking.emit(request)

        def check() -> list[RunSpec]:
            services.validate_specs(specs)
            return specs

        self._submit(
            self._pool,
            "check the runs",
            check,
            lambda ok: self._enqueue(request, ok),
            lambda message: self.launchRejected.emit(request, message),
        )
        return request

    def _enqueue(self, request: int, specs: list[RunSpec]) -> None:
        keys = []
        for spec in specs:
            item = QueueItem(key=next(self._keys), spec=spec, epsilon=spec.target_epsilon)
            self.items[item.key] = item
            keys.append(item.key)
        self.queueChanged.emit()
        self.launched.emit(request, keys)
        for key in keys:
            item = self.items[key]
            self._jobs.put((key, item.spec, item.token))

    def cancel(self, key: int) -> None:
        """Cancel one run: a queued one never starts, a running one stops within a second."""
        item = self.items.get(key)
        if item is None or item.state.finished:
            return
        item.token.cancel()
        if item.state is ItemState.QUEUED:
            item.state = ItemState.CANCELLED
            item.phase = Phase.CANCELLED
            item.reason = "Cancelled before it started."
        else:
            item.message = "cancelling…"
        self.itemChanged.emit(key)

    def cancel_current(self) -> None:
        for item in self.items.values():
            if item.state is ItemState.RUNNING:
                self.cancel(item.key)

    def cancel_all(self) -> None:
        for key in list(self.items):
            self.cancel(key)

    def clear_finished(self) -> None:
        for key in [k for k, it in self.items.items() if it.state.finished]:
            del self.items[key]
        self.queueChanged.emit()

    @property
    def busy(self) -> bool:
        return any(not it.state.finished for it in self.items.values())

    def pending_count(self) -> int:
        return sum(1 for it in self.items.values() if not it.state.finished)

    # ------------------------------------------------------------------ the run thread
    def _run_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            key, spec, token = job
            if token.cancelled:
                continue  # cancelled while queued: already marked on the GUI thread
            try:
                self._execute(key, spec, token)
            except Exception as exc:  # never let the run thread die
                log.exception("run %s: unexpected error", key)
                self._post(self._on_run_crashed, (key, user_message(exc)))
            if self._jobs.empty():
                self._post(lambda _: self._maybe_idle())

    def _execute(self, key: int, spec: RunSpec, token: CancelToken) -> None:
        start_ns = time.perf_counter_ns()
        self.live.reset(key, spec.label(), spec.batch_size, start_ns)
        self._runs_started += 1
        run_index = self._runs_started - 1
        run_count = run_index + 1 + self._jobs.qsize()
        self._post(self._on_run_started, key)

        pending = RunResult(spec=spec, status=RunStatus.RUNNING)
        store_error: str | None = None
        try:
            self._db_blocking(lambda s: s.begin_run(pending))
        except Exception as exc:
            store_error = user_message(exc)
            log.warning("run %s: could not record its start: %s", key, store_error)

        last_emit_ns = [0]
        last_phase = [""]

        def progress(event: ProgressEvent) -> None:
            now = time.perf_counter_ns()
            self.live.add(
                phase=event.phase,
                message=event.message,
                n=event.n,
                rho=event.rho,
                epsilon=event.epsilon,
                fraction=event.fraction,
                elapsed_s=event.elapsed_s,
                latencies_ns=event.recent_latencies_ns,
                starts_ns=event.recent_starts_ns,
                power_w=event.power_w,
                now_ns=now,
            )
            if event.phase != last_phase[0] or now - last_emit_ns[0] >= PROGRESS_MIN_INTERVAL_NS:
                last_emit_ns[0], last_phase[0] = now, event.phase
                self._post(self._on_progress, (key, event))

        result = services.run_one(
            spec,
            pending=pending,
            progress=progress,
            cancel=token,
            run_index=run_index,
            run_count=run_count,
        )
        if store_error is None:
            try:
                self._db_blocking(lambda s: s.finish_run(result))
            except Exception as exc:
                store_error = user_message(exc)
                log.error("run %s: could not store its result: %s", key, store_error)
        self._post(self._on_run_done, (key, result, store_error))

    # GUI-thread halves of the run thread's events
    def _on_run_started(self, key: int) -> None:
        item = self.items.get(key)
        if item is None:
            return
        item.state = ItemState.RUNNING
        item.phase = Phase.STARTING
        self.itemChanged.emit(key)
        self.runStarted.emit(key)

    def _on_progress(self, value: tuple[int, ProgressEvent]) -> None:
        key, event = value
        item = self.items.get(key)
        if item is None or item.state is not ItemState.RUNNING:
            return
        item.phase = event.phase
        if not item.token.cancelled:
            item.message = event.message
        item.n = event.n
        item.rho = event.rho
        if event.epsilon is not None:
            item.epsilon = event.epsilon
        item.fraction = event.fraction
        item.elapsed_s = event.elapsed_s
        self.itemChanged.emit(key)

    def _on_run_done(self, value: tuple[int, RunResult, str | None]) -> None:
        key, result, store_error = value
        item = self.items.get(key)
        self._remember(result)
        if item is not None:
            item.result_id = result.id
            item.stored = store_error is None
            item.converged = result.converged
            item.state = {
                RunStatus.DONE: ItemState.DONE,
                RunStatus.CANCELLED: ItemState.CANCELLED,
            }.get(result.status, ItemState.FAILED)
            item.phase = {
                ItemState.DONE: Phase.DONE,
                ItemState.CANCELLED: Phase.CANCELLED,
            }.get(item.state, Phase.FAILED)
            reasons = [
                r for r in (result.reason, store_error and f"Not stored: {store_error}") if r
            ]
            item.reason = " ".join(reasons) or None
            if result.latency is not None:
                item.n = result.latency.n
                item.rho = result.latency.rho
            item.message = ""
            self.itemChanged.emit(key)
        self.runFinished.emit(key, result)
        if store_error is None:
            self.runsChanged.emit()
        else:
            self.failed.emit("store a run", store_error)

    def _on_run_crashed(self, value: tuple[int, str]) -> None:
        key, message = value
        item = self.items.get(key)
        if item is not None:
            item.state = ItemState.FAILED
            item.phase = Phase.FAILED
            item.reason = message
            self.itemChanged.emit(key)
        self.failed.emit("run", message)

    def _maybe_idle(self) -> None:
        if not self.busy:
            self._runs_started = 0
            self.queueIdle.emit()

    # ------------------------------------------------------------------ navigation
    def request_compare(self, run_ids: Sequence[str]) -> None:
        """Send runs to the compare page (it reads compare_selection when it is first built)."""
        self.compare_selection = list(dict.fromkeys(run_ids))
        self.compareRequested.emit(list(self.compare_selection))

    def request_page(self, name: str) -> None:
        """Ask the main window to show a page ("new-run", "queue", "live", "runs", ...)."""
        self.pageRequested.emit(name)

    # ------------------------------------------------------------------ comparison and reports
    def compare(
        self,
        run_ids: Sequence[str],
        *,
        baseline_id: str | None,
        energy_view: str = "device",
        noise: float = 0.01,
    ) -> None:
        """Load the runs (database thread), then compare them (pool): comparisonReady."""
        ids = list(dict.fromkeys(run_ids))
        missing = [rid for rid in ids if rid not in self._run_cache]

        def compute(loaded: list[RunResult]) -> None:
            for r in loaded:
                self._remember(r)
            runs = [self._run_cache[rid] for rid in ids if rid in self._run_cache]
            self._submit(
                self._pool,
                "compare runs",
                lambda: services.build_comparison(
                    runs, baseline_id=baseline_id, energy_view=energy_view, noise=noise
                ),
                self.comparisonReady.emit,
                self.comparisonFailed.emit,
            )

        if missing:
            self._db(
                "load runs",
                lambda s: list(s.load_runs(missing, with_arrays=True)),
                compute,
                self.comparisonFailed.emit,
            )
        else:
            compute([])

    def export_report(self, run_ids: Sequence[str], path: str, *, baseline_id: str | None) -> None:
        ids = list(run_ids)

        def load(store: Any) -> list[RunResult]:
            return list(store.load_runs(ids, with_arrays=True))

        def write(runs: list[RunResult]) -> None:
            self._submit(
                self._pool,
                "export a report",
                lambda: services.write_report(runs, path, baseline_id=baseline_id),
                lambda _: self.reportWritten.emit(path),
            )

        self._db("load runs", load, write)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, *, wait_s: float = 10.0) -> None:
        """Cancel everything and stop the threads (the window is closing)."""
        if self._closed:
            return
        for item in self.items.values():
            item.token.cancel()
        self._jobs.put(None)
        self._run_thread.join(wait_s)
        if self._run_thread.is_alive():
            log.warning("the run thread did not stop within %.0f s", wait_s)
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        store = self._store

        def close() -> None:
            if store is not None:
                services.close_store(store)

        with contextlib.suppress(RuntimeError):
            self._db_pool.submit(close)
        self._db_pool.shutdown(wait=True, cancel_futures=False)
