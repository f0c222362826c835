"""The project's own exception types.

Every message is for the user: it says what went wrong and what to do about it.
Vendor and library exceptions are translated into these at the plugin boundary.
"""

from __future__ import annotations


class WattbenchError(Exception):
    """Base of every error Wattbench reports to its user."""

    exit_code = 1


class BadInputError(WattbenchError):
    """The user asked for something that cannot work (bad model, shape, device, option...)."""

    exit_code = 2


class ModelError(BadInputError):
    """A model cannot be found, read or understood."""


class ShapeError(BadInputError):
    """Input shapes or dynamic dimensions do not fit the model."""


class DeviceError(BadInputError):
    """A device is unknown, gone, or cannot be used."""


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


class StoreError(WattbenchError):
    """The run store cannot be opened, read or written."""


class NewerSchemaError(StoreError):
    """The database or bundle was written by a newer Wattbench."""

    exit_code = 2


class BundleError(BadInputError):
    """A results bundle is truncated, tampered, from a newer version, or malformed."""
