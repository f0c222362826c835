"""The messages on a run's worker pipe: typed values, MessagePack-encoded by ``domain.codec``.

The worker sends ``Ready`` once Python is up, ``Progress`` at ≤ 10 Hz, then exactly one of
``Measured`` (a versioned ``Measurement``) or ``Failed``. A frame decodes into one of these
types or is refused (``CodecError``): nothing is pickled, arrays travel as raw little-endian
bytes of the plain numeric dtypes only.
"""

from __future__ import annotations

from typing import cast

import msgspec
from wattbench.domain import codec
from wattbench.domain.events import MeasureProgress
from wattbench.domain.result import Measurement


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    pid: int
    t_ready_ns: int  # perf_counter_ns in the worker, the clock shared with the supervisor


class Progress(msgspec.Struct, frozen=True, tag="progress"):
    event: MeasureProgress


class Measured(msgspec.Struct, frozen=True, tag="result"):
    measurement: Measurement


class Failed(msgspec.Struct, frozen=True, tag="error"):
    error_class: str
    message: str  # for the user
    error_kind: str  # bad_input | out_of_memory | error
    phase: str  # the phase last reported
    traceback: str | None = None  # an unexpected exception's, for the log
    field: str | None = None  # the input a bad_input message is about


WorkerMessage = Ready | Progress | Measured | Failed


def encode(message: WorkerMessage) -> bytes:
    return codec.encode_msgpack(message)


def decode(frame: bytes) -> WorkerMessage:
    """The message in ``frame``; CodecError when it is not one of ours."""
    return cast(WorkerMessage, codec.decode_msgpack(frame, WorkerMessage))  # type: ignore[arg-type]
