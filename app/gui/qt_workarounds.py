"""Work-arounds for bugs in the Qt binding that would otherwise crash the app.

PySide6 6.12.0 on CPython < 3.12 drops references to singletons it did not take:

- every ``SignalInstance.emit()`` called from Python returns a bool without a reference to it,
  so each emit loses one reference to ``True`` (or ``False``);
- every call of a Python override of a C++ virtual that returns ``None`` (``showEvent``,
  ``paint``, ``QAbstractItemModel.data`` for an unused role…) loses one reference to ``None``.

After a few hundred emits, or a few seconds of pyqtgraph painting, the interpreter aborts with
"Fatal Python error: bool_dealloc / none_dealloc". CPython 3.12 made these objects immortal;
here the same is done by hand: their reference counts are raised far beyond anything a session
can spend (measured with ``sys.getrefcount`` in tests/gui/test_pages_misc.py).

``apply()`` is idempotent and cheap; it runs when this module is imported.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_HEADROOM = 1 << 40  # ~10^12 lost references before a count could come back to its real value
_applied = False


def _affected() -> bool:
    if sys.version_info >= (3, 12):  # immortal objects: a lost reference is harmless
        return False
    try:
        import PySide6
    except ImportError:
        return False
    version = tuple(int(p) for p in PySide6.__version__.split(".")[:2] if p.isdigit())
    return version >= (6, 12)


def apply() -> bool:
    """Make None, True and False effectively immortal where the binding leaks them."""
    global _applied
    if _applied or not _affected():
        return _applied
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM
    _applied = True
    log.debug("raised the reference counts of None, True and False (PySide6 leaks)")
    return True


apply()
