"""The GUI's side of a fleet: the connection to a scheduler and the runs given to its hosts.

``FleetController`` is created by the main ``Controller`` (as ``controller.fleet``) and works
like it: every service call (``service.fleet``: connect, list the hosts, run a plan on chosen
hosts, cancel, close) runs off the GUI thread through ``ThreadHost`` and its answer comes
back as a typed Qt signal on the GUI thread. Connecting and listing use the small pool; a
fleet run (``FleetRun.run_all``, blocking until every host is through) has a thread of its
own, so listing the hosts goes on while it runs. The runs are recorded by the main controller
(its store, its database thread), so they join the runs browser as local runs do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.domain.spec import RunSpec
from wattbench.gui.controller import PROGRESS_MIN_INTERVAL_NS
from wattbench.gui.threads import ThreadHost
from wattbench.service.queue import EventKind, QueueEvent, QueueItem

if TYPE_CHECKING:
    from wattbench.domain.fleet import FleetHost
    from wattbench.gui.controller import Controller
    from wattbench.service.fleet import FleetRun
    from wattbench.service.fleet_link import Fleet

log = logging.getLogger(__name__)


class FleetController(ThreadHost):
    """See the module docstring. Methods are called on the GUI thread."""

    connected = Signal(str)  # the scheduler's address
    connectFailed = Signal(str)  # why it could not connect (nothing changed)
    disconnected = Signal()
    hostsListed = Signal(object)  # list[FleetHost], by name
    hostsFailed = Signal(str)  # the scheduler stopped answering
    runFailed = Signal(str)  # why a plan was not given to the hosts, or why their runs broke
    fleetItemChanged = Signal(object)  # QueueItem: queued, started, progressed or finished
    fleetIdle = Signal()  # every host is through the last plan given

    def __init__(self, controller: Controller) -> None:
        super().__init__(controller)
        self._controller = controller
        self._lock = threading.Lock()  # guards _fleet against a connect finishing at shutdown
        self._fleet: Fleet | None = None
        self._address = ""
        self._connecting = False
        self._listing = False
        self._run: FleetRun | None = None
        self._run_future: Future[list[QueueItem]] | None = None
        self._run_pool = ThreadPoolExecutor(1, thread_name_prefix="wattbench-fleet")
        self._last_emit: dict[int, tuple[int, str]] = {}  # key -> (ns, phase), any host thread
        self.items: dict[int, QueueItem] = {}  # the fleet runs' latest snapshots (GUI thread)
        self.hosts: list[FleetHost] = []  # as last listed

    # ------------------------------------------------------------------ state
    @property
    def address(self) -> str:
        """The scheduler connected to ("" when none)."""
        return self._address

    @property
    def running(self) -> bool:
        """A plan is being run on the hosts."""
        return self._run is not None

    # ------------------------------------------------------------------ connection
    def connect_to(self, address: str, ca: str = "", cert: str = "", key: str = "") -> None:
        """Connect to the scheduler at ``address`` ("" : $WATTBENCH_SCHEDULER), with the TLS
        files if given; connected (then hostsListed) or connectFailed follows."""
        if self._connecting:
            return
        if self.running:
            self.connectFailed.emit(
                "A plan is running on the fleet: cancel it or wait before connecting elsewhere."
            )
            return
        self._connecting = True

        def connect() -> str:
            from wattbench.service.fleet_link import Fleet, TlsFiles

            fleet = Fleet.connect(address or None, TlsFiles.given(ca, cert, key))
            with self._lock:
                old, self._fleet = self._fleet, fleet
                closed = self._closed
            if old is not None:
                old.close()
            if closed:  # the window closed meanwhile
                fleet.close()
            return fleet.address

        def ok(where: str) -> None:
            self._connecting = False
            self._address = where
            self.connected.emit(where)
            self.refresh_hosts()

        def bad(message: str) -> None:
            self._connecting = False
            self.connectFailed.emit(message)

        self._submit(self._pool, "connect to the fleet", connect, ok, bad)

    def disconnect_fleet(self) -> None:
        """Close the connection (refused while a plan runs on the fleet)."""
        if self.running:
            self.runFailed.emit("A plan is running on the fleet: cancel it first.")
            return
        with self._lock:
            fleet, self._fleet = self._fleet, None
        self._address = ""
        self.hosts = []
        if fleet is not None:
            self._submit(self._pool, "disconnect from the fleet", fleet.close, lambda _: None)
        self.disconnected.emit()

    def refresh_hosts(self) -> None:
        """Ask the scheduler for its hosts: hostsListed or hostsFailed follows (nothing while
        not connected or while the last question is unanswered)."""
        fleet = self._fleet
        if fleet is None or self._listing:
            return
        self._listing = True

        def ok(hosts: list[FleetHost]) -> None:
            self._listing = False
            if fleet is self._fleet:
                self.hosts = list(hosts)
                self.hostsListed.emit(self.hosts)

        def bad(message: str) -> None:
            self._listing = False
            if fleet is self._fleet:
                self.hostsFailed.emit(message)

        self._submit(self._pool, "list the fleet's hosts", lambda: fleet.hosts(fresh=True), ok, bad)

    # ------------------------------------------------------------------ runs
    def run(self, specs: Sequence[RunSpec], host_names: Sequence[str]) -> list[QueueItem]:
        """Give every host named the same runs (each spec with the host's name), hosts side by
        side, round by round; their items (runFailed and none when they cannot start)."""
        from wattbench.service.fleet import FleetRun

        fleet = self._fleet
        if fleet is None:
            self.runFailed.emit("Connect to a scheduler first.")
            return []
        if self.running:
            self.runFailed.emit(
                "A plan is running on the fleet already: wait for it, or cancel it."
            )
            return []
        if not specs:
            self.runFailed.emit("Nothing to run: the plan has no runs.")
            return []
        try:
            if not host_names:
                raise BadInputError("Check at least one host to run on.", field="on")
            run = FleetRun(fleet, list(host_names), self._controller, self._on_event)
            items = run.submit(list(specs))
        except WattbenchError as exc:
            self.runFailed.emit(str(exc))
            return []
        self._run = run
        for item in items:
            self.items[item.key] = item
            self.fleetItemChanged.emit(item)
        self._run_future = self._submit(
            self._run_pool, "run on the fleet", run.run_all, self._ended, self._broke
        )
        return items

    def cancel_all(self) -> None:
        """Stop the fleet's runs: queued ones never start, running ones stop within a second."""
        if self._run is not None:
            self._run.cancel_all()

    def _broke(self, message: str) -> None:
        self._ended(None)
        self.runFailed.emit(f"The fleet's runs stopped: {message}")

    def _ended(self, _items: object) -> None:
        self._run = None
        self._run_future = None
        self.refresh_hosts()
        self.fleetIdle.emit()

    def _on_event(self, event: QueueEvent) -> None:
        """From a host's thread (or the GUI thread): at most ~10 progress signals a second a
        run, then on to the GUI thread."""
        item = event.item
        if event.kind is EventKind.QUEUED:
            return  # run() took the queued items in already
        if event.kind is EventKind.PROGRESS and event.progress is not None:
            now = time.perf_counter_ns()
            last_ns, last_phase = self._last_emit.get(item.key, (0, ""))
            if event.progress.phase == last_phase and now - last_ns < PROGRESS_MIN_INTERVAL_NS:
                return
            self._last_emit[item.key] = (now, event.progress.phase)
        self._post(self._apply, item)

    def _apply(self, item: QueueItem) -> None:
        """On the GUI thread: keep the snapshot, tell the page and the runs browser."""
        self.items[item.key] = item
        self.fleetItemChanged.emit(item)
        if item.state.finished:
            self._last_emit.pop(item.key, None)
            if item.stored:
                self._controller.runsChanged.emit()
            elif item.store_error:
                self._controller.failed.emit("store a fleet run", item.store_error)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, *, wait_s: float = 10.0) -> None:
        """Cancel the fleet's runs, wait for them to end (recorded), close the connection."""
        if self._closed:
            return
        self.cancel_all()
        future = self._run_future
        if future is not None:
            try:
                future.result(timeout=wait_s)
            except Exception as exc:  # a run that does not end in time is left to its host
                log.warning("the fleet's runs did not end within %.0f s: %r", wait_s, exc)
        with self._lock:
            self._closed = True
            fleet, self._fleet = self._fleet, None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._db_pool.shutdown(wait=False, cancel_futures=True)
        self._run_pool.shutdown(wait=False, cancel_futures=True)
        if fleet is not None:
            fleet.close()
