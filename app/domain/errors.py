"""The project's own exception types.

Every message is for the user: it says what went wrong and what to do about it, in words that
suit every front end (no command-line flag names). ``field`` names the input the message is
about (a RunSpec field such as ``"t_max_s"``, or ``"run_id"``, ``"db"``...), so that each front
end can point at it its own way: the CLI prefixes its flag, the GUI its form field.
Vendor and library exceptions are translated into these at the plugin boundary.
"""

from __future__ import annotations


class WattbenchError(Exception):
    """Base of every error Wattbench reports to its user."""

    exit_code = 1
    default_field: str | None = None  # the input most errors of this kind are about

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field if field is not None else self.default_field


class BadInputError(WattbenchError):
    """The user asked for something that cannot work (bad model, shape, device, option...)."""

    exit_code = 2


class ModelError(BadInputError):
    """A model cannot be found, read or understood."""

    default_field = "model"


class ShapeError(BadInputError):
    """Input shapes or dynamic dimensions do not fit the model."""

    default_field = "dims"


class DeviceError(BadInputError):
    """A device is unknown, gone, or cannot be used."""

    default_field = "device"


class UnsupportedOptionError(BadInputError):
    """An option (precision, threads, provider...) that the runtime/device cannot do."""


class RunFailedError(WattbenchError):
    """A run started but did not produce a result (crash, hang, out of memory, time limit)."""

    exit_code = 3


class RunCancelledError(WattbenchError):
    """A run was cancelled by the user."""

    exit_code = 4


class SensorError(WattbenchError):
    """A power/energy sensor could not be read."""


class SensorPermissionError(SensorError):
    """A sensor exists but this user may not read it; the message carries the fix."""


class FleetError(WattbenchError):
    """The fleet's scheduler cannot be reached, or it answered with something unusable."""


class StoreError(WattbenchError):
    """The run store cannot be opened, read or written."""


class StoreLocationError(StoreError):
    """The run store the user named cannot be where they said (its folder does not exist)."""

    exit_code = 2


class UnknownRunError(BadInputError):
    """No stored run has this id (or the prefix given matches several)."""


class NewerSchemaError(StoreError):
    """The database or bundle was written by a newer Wattbench."""

    exit_code = 2


class BundleError(BadInputError):
    """A results bundle is truncated, tampered, from a newer version, or malformed."""


# how out-of-memory failures read when a library raises its own type for them (torch's
# OutOfMemoryError, onnxruntime's allocation failures, C++ std::bad_alloc, an OS refusal)
OUT_OF_MEMORY_WORDS = (
    "outofmemory",
    "out of memory",
    "failed to allocate",
    "can't allocate memory",
    "cannot allocate memory",
    "bad_alloc",
)


def is_out_of_memory(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is running out of memory."""
    seen = 0
    while exc is not None and seen < 8:
        text = f"{type(exc).__name__}: {exc}".lower()
        if isinstance(exc, MemoryError) or any(w in text for w in OUT_OF_MEMORY_WORDS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
