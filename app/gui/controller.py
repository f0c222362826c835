"""The one place where the GUI crosses threads: a thin adapter between Qt and the service.

(About 450 lines on purpose: every signal a page can hear and every service call it can make,
each a few lines, in one class, so that no page looks anywhere else; the thread plumbing is in
``threads``, the live chart buffer in ``live_buffer``.)

The controller owns three kinds of thread: the run thread (the service's ``RunQueue.serve``:
one run at a time, each in its own worker process), a single database thread (every call on
the service's ``Workbench``, serialized; the queue records runs through it too) and a small
pool for other long work (catalog, devices, run checks, comparisons, reports). It re-emits
typed Qt signals on the GUI thread; widgets call its methods and connect to its signals, and
never touch threads, the store or the engine themselves. Every call here is a service call:
the same ones the CLI makes.

Service modules are imported inside the functions that run off the GUI thread, so the window
appears before torch (or SQLAlchemy) is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from PySide6.QtCore import QObject, Signal
from wattbench.domain.errors import WattbenchError
from wattbench.domain.events import CancelToken
from wattbench.domain.result import RunResult
from wattbench.domain.spec import RunSpec
from wattbench.gui.live_buffer import LiveBuffer
from wattbench.gui.threads import ThreadHost
from wattbench.service.queue import EventKind, ItemState, QueueEvent, QueueItem, RunQueue

if TYPE_CHECKING:
    from wattbench.domain.claim import Claim
    from wattbench.domain.cost import CostProfile
    from wattbench.service.capacity import Facility, ServerInput
    from wattbench.service.request import RunPlan
    from wattbench.service.workbench import Workbench

log = logging.getLogger(__name__)

T = TypeVar("T")

PROGRESS_MIN_INTERVAL_NS = 100_000_000  # at most ~10 progress signals per second per run
RUN_CACHE_SIZE = 64  # loaded runs (with arrays) kept for the compare view


def flag_words(flags: Sequence[str]) -> tuple[str, ...]:
    """Quality flags as words, those that make a verdict unreliable first, in the compare
    view's words ("not converged", "contended (other processes used its cores)"), then the
    others ("high cv", "outliers")."""
    from wattbench.engine.compare import UNRELIABLE_FLAGS

    first = [UNRELIABLE_FLAGS[f] for f in flags if f in UNRELIABLE_FLAGS]
    return (*first, *(f.replace("_", " ") for f in flags if f not in UNRELIABLE_FLAGS))


def unreliable_flags(flags: Sequence[str]) -> bool:
    """Whether any of these flags makes the run's verdicts unreliable."""
    from wattbench.engine.compare import UNRELIABLE_FLAGS

    return any(f in UNRELIABLE_FLAGS for f in flags)


def run_caveats(item: QueueItem) -> tuple[str, ...]:
    """Why a finished run's figures carry a caveat, in the compare view's words: it did not
    converge, or the engine would call its verdicts unreliable (empty: none)."""
    causes: tuple[str, ...] = ()
    if item.result is not None:
        from wattbench.engine.compare import run_causes

        causes = run_causes(item.result)
    if item.converged is False and not any(c.startswith("not converged") for c in causes):
        causes = ("not converged", *causes)
    return causes


class Controller(ThreadHost):
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
    devicesReady = Signal(object)  # service.inventory.DeviceInventory
    sensorsReady = Signal(object)  # energy.doctor.SensorReport
    # launching and the queue
    launchChecking = Signal(int)  # request id: validation started
    launchRejected = Signal(int, str)  # request id, message (nothing was queued)
    launched = Signal(int, object)  # request id, list[int] of queue keys
    queueChanged = Signal()  # items added or cleared
    itemChanged = Signal(int)  # one item's state or progress changed
    runStarted = Signal(int)
    runFinished = Signal(int, object)  # key, RunResult
    queueIdle = Signal()
    # comparison and reports
    comparisonReady = Signal(object)  # service.workbench.ComparisonView
    comparisonFailed = Signal(str)
    reportWritten = Signal(str)
    # navigation between pages: the runs browser asks for a comparison of its selection
    compareRequested = Signal(object)  # list[str] of run ids (also kept in compare_selection)
    pageRequested = Signal(str)  # a page name, see MainWindow.show_page
    # failed(what, message), from ThreadHost: anything else that failed off the GUI thread

    def __init__(self, db_url: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db_url = db_url
        self._wb: Workbench | None = None
        self._store_description = ""
        self._requests = 0
        self.items: dict[int, QueueItem] = {}  # the queue's latest snapshots (GUI thread)
        self.live = LiveBuffer()
        self._last_emit: dict[int, tuple[int, str]] = {}  # key -> (ns, phase) of last signal
        self._run_cache: OrderedDict[str, RunResult] = OrderedDict()
        self.compare_selection: list[str] = []  # the last ids sent to the compare page
        # model files are read in probe processes: these tokens stop the outstanding ones
        self._describing: CancelToken | None = None  # the last model file opened
        self._checking: set[CancelToken] = set()  # plans being checked
        self.queue = RunQueue(recorder=self, listener=self._on_queue_event)
        self._run_thread = threading.Thread(
            target=self.queue.serve, name="wattbench-runs", daemon=True
        )
        self._run_thread.start()
        from wattbench.gui.fleet_controller import FleetController  # it imports this module

        self.fleet = FleetController(self)  # runs on a fleet's hosts (Fleet page)

    def _workbench(self) -> Workbench:
        if self._wb is None:
            raise WattbenchError("The run database is not open: choose a database in Settings.")
        return self._wb

    def _db(
        self,
        what: str,
        fn: Callable[[Workbench], T],
        on_ok: Callable[[T], None],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Run fn(workbench) on the database thread."""
        self._submit(self._db_pool, what, lambda: fn(self._workbench()), on_ok, on_error)

    def _db_blocking(self, fn: Callable[[Workbench], T]) -> T:
        """Call fn(workbench) on the database thread and wait (for the run thread only)."""
        return self._db_pool.submit(lambda: fn(self._workbench())).result()

    # ------------------------------------------------------------------ the queue's recorder
    def begin_run(self, spec: RunSpec, run_id: str) -> None:
        self._db_blocking(lambda wb: wb.begin_run(spec, run_id))

    def finish_run(self, result: RunResult) -> None:
        self._db_blocking(lambda wb: wb.finish_run(result))

    # ------------------------------------------------------------------ store
    @property
    def store_description(self) -> str:
        return self._store_description

    def open_store(self, url: str | None = None) -> None:
        """(Re)open the run store; storeReady or storeFailed follows."""
        self._db_url = url

        def open_() -> str:
            # imported here, on the database thread: SQLAlchemy and the store take most of a
            # second to import, which the window would otherwise wait for
            from wattbench.service.workbench import Workbench

            old, self._wb = self._wb, None
            if old is not None:
                old.close()
            self._wb = Workbench.open(url)
            return self._wb.describe()

        def ok(description: str) -> None:
            self._store_description = description
            self.storeReady.emit(description)
            self.runsChanged.emit()

        def bad(message: str) -> None:
            self._store_description = ""
            self.storeFailed.emit(message)

        self._run_cache.clear()
        self._submit(self._db_pool, "open the run database", open_, ok, bad)

    def refresh_store_description(self) -> None:
        """Describe the open store again (database thread): storeDescribed follows."""

        def ok(text: str) -> None:
            self._store_description = text
            self.storeDescribed.emit(text)

        self._db("describe the run database", lambda wb: wb.describe(), ok, lambda _m: None)

    def refresh_runs(self, limit: int = 10_000) -> None:
        self._db("list runs", lambda wb: wb.list_runs(limit=limit), self.runsListed.emit)

    def load_run(self, run_id: str) -> None:
        cached = self._run_cache.get(run_id)
        if cached is not None:
            self.runLoaded.emit(cached)
            return

        def ok(result: RunResult) -> None:
            self._remember(result)
            self.runLoaded.emit(result)

        self._db("load a run", lambda wb: wb.get_run(run_id), ok)

    def add_tag(self, run_ids: Sequence[str], tag: str) -> None:
        ids = list(run_ids)
        self._db("tag runs", lambda wb: wb.add_tag(ids, tag), lambda _: self._changed(ids))

    def remove_tag(self, run_ids: Sequence[str], tag: str) -> None:
        ids = list(run_ids)
        self._db("untag runs", lambda wb: wb.remove_tag(ids, tag), lambda _: self._changed(ids))

    def set_note(self, run_id: str, note: str) -> None:
        self._db(
            "save a note", lambda wb: wb.set_note(run_id, note), lambda _: self._changed([run_id])
        )

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        ids = list(run_ids)
        self._db("delete runs", lambda wb: wb.delete_runs(ids), lambda _: self._changed(ids))

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
        self._db("read cost profiles", lambda wb: wb.cost_profiles(), self.costProfilesReady.emit)

    def save_cost_profile(self, profile: CostProfile) -> None:
        self._db(
            "save a cost profile",
            lambda wb: wb.save_cost_profile(profile),
            lambda _: self.refresh_cost_profiles(),
        )

    def delete_cost_profile(self, device: str, name: str) -> None:
        self._db(
            "delete a cost profile",
            lambda wb: wb.delete_cost_profile(device, name),
            lambda _: self.refresh_cost_profiles(),
        )

    # ------------------------------------------------------------------ catalog, devices, sensors
    def refresh_catalog(self) -> None:
        from wattbench.service import inventory

        self._submit(self._pool, "list models", inventory.list_models, self.catalogReady.emit)

    def resolve_model_file(
        self,
        path: str,
        dims: dict[str, int] | None = None,
        input_shapes: dict[str, str] | None = None,
    ) -> None:
        """Check a model file off-thread: modelResolved or modelRejected follows. The file is
        read in a probe process; opening another file stops the previous one's, whose answer
        is never heard."""
        from wattbench.service import inventory

        if self._describing is not None:
            self._describing.cancel()
        token = self._describing = CancelToken()

        def ok(entry: object) -> None:
            if not token.cancelled:
                self.modelResolved.emit(entry)

        def bad(message: str) -> None:
            if not token.cancelled:
                self.modelRejected.emit(path, message)

        self._submit(
            self._pool,
            "open a model file",
            lambda: inventory.describe_model(
                path, dims=dims, input_shapes=input_shapes, cancel=token
            ),
            ok,
            bad,
        )

    def refresh_devices(self) -> None:
        from wattbench.service import inventory

        self._submit(self._pool, "list devices", inventory.device_inventory, self.devicesReady.emit)

    def diagnose_sensors(self) -> None:
        from wattbench.service import inventory

        self._submit(
            self._pool, "diagnose sensors", inventory.sensor_report, self.sensorsReady.emit
        )

    # ------------------------------------------------------------------ launching runs
    def launch(self, plan: RunPlan) -> int:
        """Check a plan off-thread, then queue all its runs, or none (launchRejected)."""
        from wattbench.service.plan import check_plan

        self._requests += 1
        request = self._requests
        if not plan.specs:
            self.launchRejected.emit(request, "Nothing to run: choose a model and a device.")
            return request
        self.launchChecking.emit(request)
        token = CancelToken()  # closing the window stops the check's model probe
        self._checking.add(token)

        def queue_them(_: None) -> None:
            self._checking.discard(token)
            items = self.queue.submit(plan.specs)
            self.items.update({item.key: item for item in items})  # before launched is heard
            self.queueChanged.emit()
            self.launched.emit(request, [item.key for item in items])

        def refused(message: str) -> None:
            self._checking.discard(token)
            self.launchRejected.emit(request, message)

        self._submit(
            self._pool,
            "check the runs",
            lambda: check_plan(plan, cancel=token),
            queue_them,
            refused,
        )
        return request

    def cancel(self, key: int) -> None:
        """Cancel one run: a queued one never starts, a running one stops within a second."""
        self.queue.cancel(key)
        item = self.queue.item(key)
        if item is not None and key in self.items:  # shown at once; the event confirms it
            self.items[key] = item
            self.itemChanged.emit(key)

    def cancel_current(self) -> None:
        for item in self.queue.items():
            if item.state is ItemState.RUNNING:
                self.cancel(item.key)

    def cancel_all(self) -> None:
        for item in self.queue.items():
            self.cancel(item.key)

    def clear_finished(self) -> None:
        self.queue.clear_finished()
        self.items = {k: it for k, it in self.items.items() if not it.state.finished}
        self.queueChanged.emit()

    @property
    def busy(self) -> bool:
        return any(not it.state.finished for it in self.items.values())

    def pending_count(self) -> int:
        return sum(1 for it in self.items.values() if not it.state.finished)

    # ------------------------------------------------------------------ the queue's events
    def _on_queue_event(self, event: QueueEvent) -> None:
        """From the queue's thread (or the caller's): feed the live buffer, then hop."""
        item = event.item
        if event.kind is EventKind.STARTED:
            self.live.reset(item.key, item.label, item.spec.batch_size, time.perf_counter_ns())
        if event.kind is EventKind.PROGRESS and event.progress is not None:
            p = event.progress
            now = time.perf_counter_ns()
            self.live.add(
                phase=p.phase,
                message=p.message,
                n=p.n,
                rho=p.rho,
                epsilon=p.epsilon,
                fraction=p.fraction,
                elapsed_s=p.elapsed_s,
                latencies_ns=p.recent_latencies_ns,
                starts_ns=p.recent_starts_ns,
                power_w=p.power_w,
                now_ns=now,
            )
            last_ns, last_phase = self._last_emit.get(item.key, (0, ""))
            if p.phase == last_phase and now - last_ns < PROGRESS_MIN_INTERVAL_NS:
                return
            self._last_emit[item.key] = (now, p.phase)
        self._post(self._apply_event, event)

    def _apply_event(self, event: QueueEvent) -> None:
        """On the GUI thread: keep the latest snapshot and tell the pages."""
        item = event.item
        if event.kind is EventKind.QUEUED:
            return  # launch() took the queued items in already
        if item.key not in self.items:
            return  # cleared meanwhile
        self.items[item.key] = item
        self.itemChanged.emit(item.key)
        if event.kind is EventKind.STARTED:
            self.runStarted.emit(item.key)
        elif event.kind is EventKind.FINISHED:
            self._last_emit.pop(item.key, None)
            if item.result is not None:
                self._remember(item.result)
                self.runFinished.emit(item.key, item.result)
            if item.stored:
                self.runsChanged.emit()
            elif item.store_error:
                self.failed.emit("store a run", item.store_error)
            if not self.busy:
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
        cost_profiles: Sequence[CostProfile] = (),
    ) -> None:
        """Load the runs (database thread), then compare them (pool): comparisonReady."""
        from wattbench.service.workbench import compare_loaded

        ids = list(dict.fromkeys(run_ids))
        missing = [rid for rid in ids if rid not in self._run_cache]

        def compute(loaded: list[RunResult]) -> None:
            for r in loaded:
                self._remember(r)
            runs = [self._run_cache[rid] for rid in ids if rid in self._run_cache]
            self._submit(
                self._pool,
                "compare runs",
                lambda: compare_loaded(
                    runs,
                    baseline_id=baseline_id,
                    energy_view=energy_view,
                    noise=noise,
                    cost_profiles=cost_profiles,
                ),
                self.comparisonReady.emit,
                self.comparisonFailed.emit,
            )

        if missing:
            self._db(
                "load runs", lambda wb: wb.load_runs(missing), compute, self.comparisonFailed.emit
            )
        else:
            compute([])

    def export_report(self, run_ids: Sequence[str], path: str, *, baseline_id: str | None) -> None:
        """Load the runs (database thread), then render the report (pool): reportWritten."""
        from wattbench.service.workbench import ReportMaterial, render_report

        ids = list(run_ids)

        def write(material: ReportMaterial) -> None:
            self._submit(
                self._pool,
                "export a report",
                lambda: render_report(material, path),
                lambda _: self.reportWritten.emit(path),
            )

        self._db("load runs", lambda wb: wb.report_material(ids, baseline_id), write)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, *, wait_s: float = 10.0) -> None:
        """Cancel everything and stop the threads (the window is closing)."""
        if self._closed:
            return
        self.fleet.shutdown(wait_s=wait_s)  # its runs are recorded through the database thread
        for token in [self._describing, *self._checking]:
            if token is not None:
                token.cancel()  # model probes still running are killed
        self.queue.close()
        self._run_thread.join(wait_s)
        if self._run_thread.is_alive():
            log.warning("the run thread did not stop within %.0f s", wait_s)
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        wb = self._wb

        def close() -> None:
            if wb is not None:
                wb.close()

        with contextlib.suppress(RuntimeError):
            self._db_pool.submit(close)
        self._db_pool.shutdown(wait=True, cancel_futures=False)

    # ------------------------------------------------------------------ sizing and claims
    capacityPlanned = Signal(object, object)  # Facility, list[CapacityRow] (one a configuration)
    capacityFailed = Signal(str)
    claimsChecked = Signal(object)  # list[ClaimResult], in the order of the claims
    claimsFailed = Signal(str)

    def plan_capacity(
        self, run_ids: Sequence[str], facility: Facility, servers: Sequence[ServerInput] = ()
    ) -> None:
        """The capacity planner on stored runs (database thread): capacityPlanned or
        capacityFailed follows."""
        ids, given = list(run_ids), list(servers)
        self._db(
            "plan capacity",
            lambda wb: wb.plan_capacity(ids, facility, given),
            lambda rows: self.capacityPlanned.emit(facility, rows),
            self.capacityFailed.emit,
        )

    def check_claims(self, claims: Sequence[Claim], *, energy_view: str = "device") -> None:
        """Each claim evaluated on stored runs (database thread): claimsChecked or
        claimsFailed follows."""
        given = list(claims)
        self._db(
            "check claims",
            lambda wb: wb.check_claims(given, energy_view=energy_view),
            self.claimsChecked.emit,
            self.claimsFailed.emit,
        )
