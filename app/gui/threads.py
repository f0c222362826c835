"""The threads of the GUI's controller and the one way back to the GUI thread.

``ThreadHost`` owns a single database thread (every store call, serialized) and a small pool
for other long work; ``_submit`` runs a plain function on one of them and delivers its result
(or its error, in words) to a callback on the GUI thread through one queued signal. Nothing
else in the GUI crosses threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal, Slot
from wattbench.domain.errors import WattbenchError

log = logging.getLogger(__name__)

T = TypeVar("T")


def user_message(exc: BaseException) -> str:
    """The text to show for an exception: ours carry a message for the user."""
    if isinstance(exc, WattbenchError):
        return str(exc)
    return f"Internal error ({type(exc).__name__}: {exc}). See the log for details."


class ThreadHost(QObject):
    """The controller's threads (see the module docstring)."""

    _deliver = Signal(object, object)  # (callback, value) from any thread, run on the GUI thread
    failed = Signal(str, str)  # (what, message) for work that has no error callback of its own

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._deliver.connect(self._on_deliver, Qt.ConnectionType.QueuedConnection)
        self._closed = False
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="wattbench-db")
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="wattbench-work")

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
