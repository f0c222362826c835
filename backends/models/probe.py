"""The probe: a disposable process that reads one model file for a front end.

A model file from someone else is never parsed in the process of the CLI or the GUI: a parser
fed a hostile file can hang holding the GIL (a TorchScript ``__setstate__`` that never returns),
inflate a small archive to gigabytes, or crash. ``read_facts`` spawns
``python -m wattbench.backends.models.probe``, sends it the request on its stdin (MessagePack
through ``domain.codec``: nothing is pickled either way), and waits for its typed answer on its
stdout, with a wall-clock limit, a memory limit (RLIMIT_DATA, set in the child on Linux), the
caller's cancel token and Ctrl-C: on any of them the child is killed and the caller gets a
ModelError that says what happened (or KeyboardInterrupt / RunCancelledError). Results are
cached per file (path, device, inode, size, mtime), so describing a file and then checking a
run of it spawns one probe.

A process that is itself disposable (a run's worker, which loads the model anyway) calls
``mark_disposable`` and reads files directly. Limits: ``time_limit_s`` and ``memory_limit``;
the environment variables ``WATTBENCH_PROBE_TIME_LIMIT_S`` and ``WATTBENCH_PROBE_MEMORY_MB``
replace them (a genuine model too large for the defaults; short limits in tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from wattbench.backends import lifetime
from wattbench.backends.models import files
from wattbench.backends.models.files import FileFacts
from wattbench.domain import codec
from wattbench.domain.errors import (
    BadInputError,
    ModelError,
    RunCancelledError,
    ShapeError,
    is_out_of_memory,
)
from wattbench.domain.events import CancelToken

log = logging.getLogger(__name__)

MODULE = "wattbench.backends.models.probe"
TIME_ENV = "WATTBENCH_PROBE_TIME_LIMIT_S"
MEMORY_ENV = "WATTBENCH_PROBE_MEMORY_MB"
GIB = 1 << 30
BASE_TIME_S = 60.0  # importing torch and loading a small archive takes a few seconds
TIME_PER_GIB_S = 30.0
BASE_MEMORY = 2 * GIB  # the interpreter with torch and onnx imported holds about 0.25 GiB
MEMORY_PER_BYTE = 4  # a file is held about 3 times over while parsed and checked
POLL_S = 0.05  # how often the waiting caller looks at its cancel token
MAX_REQUEST_BYTES = 1 << 20
MAX_REPLY_BYTES = 16 << 20
STDERR_TAIL_BYTES = 4096
CACHE_SIZE = 64

_disposable = False
_cache: OrderedDict[tuple[object, ...], FileFacts] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ProbeRequest:
    path: str
    format: str  # onnx | torchscript
    time_limit_s: float
    memory_bytes: int
    parent_pid: int


@dataclass(frozen=True)
class ProbeFailure:
    """A refusal from the probe: kind "model" or "shape" (the error class), or "memory"."""

    kind: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class ProbeReply:
    facts: FileFacts | None = None
    failure: ProbeFailure | None = None


def mark_disposable() -> None:
    """This process is disposable (it may hang or die without harm): read files directly."""
    global _disposable
    _disposable = True


def time_limit_s(size: int) -> float:
    """Seconds a probe of a file of ``size`` bytes may take."""
    given = os.environ.get(TIME_ENV, "").strip()
    if given:
        return _positive(given, TIME_ENV)
    return BASE_TIME_S + TIME_PER_GIB_S * size / GIB


def memory_limit(size: int) -> int:
    """Bytes of data a probe of a file of ``size`` bytes may hold (Linux enforces it)."""
    given = os.environ.get(MEMORY_ENV, "").strip()
    if given:
        return int(_positive(given, MEMORY_ENV) * (1 << 20))
    return BASE_MEMORY + MEMORY_PER_BYTE * size


def _positive(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ModelError(f"{name}={text!r} is not a positive number; set it right or unset it.")
    return value


def forget() -> None:
    """Forget every cached probe result."""
    with _cache_lock:
        _cache.clear()


def read_facts(
    path: Path, fmt: str, st: os.stat_result, cancel: CancelToken | None = None
) -> FileFacts:
    """What ``files.read_facts`` finds in ``path``, read in a probe process (or here, in a
    disposable process). ``st`` is the file's stat from ``files.inspect_file``."""
    if _disposable:
        return files.read_facts(path, fmt)
    key = (str(path), fmt, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    request = ProbeRequest(
        path=str(path),
        format=fmt,
        time_limit_s=time_limit_s(st.st_size),
        memory_bytes=memory_limit(st.st_size),
        parent_pid=os.getpid(),
    )
    facts = _run(request, cancel)
    with _cache_lock:
        _cache[key] = facts
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return facts


# -- the caller's side -------------------------------------------------------------------------


def _drain(stream: IO[bytes], into: bytearray, cap: int, keep_tail: bool) -> None:
    """Read ``stream`` to its end, keeping its first (or last) ``cap`` bytes."""
    while chunk := stream.read(65536):
        into += chunk
        if len(into) > cap:
            if keep_tail:
                del into[:-cap]
            else:
                del into[cap + 1 :]  # one byte over: the reply is known to be too long


def _run(request: ProbeRequest, cancel: CancelToken | None) -> FileFacts:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    try:  # -P: the current folder is not searched for modules
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
    except OSError as exc:
        raise ModelError(f"Cannot start the process that reads model files ({exc}).") from exc
    reply, errors = bytearray(), bytearray()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, reply, MAX_REPLY_BYTES, False)),
        threading.Thread(target=_drain, args=(proc.stderr, errors, STDERR_TAIL_BYTES, True)),
    ]
    deadline = time.monotonic() + request.time_limit_s
    try:  # from here on, whatever happens (Ctrl-C included), the probe does not outlive us
        for reader in readers:
            reader.daemon = True
            reader.start()
        with contextlib.suppress(OSError):  # a child that died at once is reported below
            proc.stdin.write(codec.encode_msgpack(request))
            proc.stdin.close()
        while True:
            try:
                code = proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.cancelled:
                raise RunCancelledError(f"Reading the model file {request.path} was cancelled.")
            if time.monotonic() >= deadline:
                raise ModelError(
                    f"Reading the model file {request.path} did not finish within "
                    f"{round(request.time_limit_s, 1):g} s: it may be hostile or too large, and "
                    "it was stopped. Check where the file comes from; for a genuine large "
                    f"model, allow more time with {TIME_ENV}."
                )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for reader in readers:
            if reader.is_alive():
                reader.join(timeout=5.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    return _answer(request, code, bytes(reply), bytes(errors))


def _answer(request: ProbeRequest, code: int, data: bytes, errors: bytes) -> FileFacts:
    """The facts in a probe's reply, or the error it reports or that its end tells."""
    last = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    if code != 0:
        log.debug("probe of %s exited with %s: %s", request.path, code, last[0])
        raise ModelError(
            f"Reading the model file {request.path} crashed ({_exit_words(code)}): it may be "
            f"hostile, damaged or need more than {_gib(request.memory_bytes)} of memory. "
            "Check where it comes from, or export the model again."
        )
    garbage = ModelError(
        f"Reading the model file {request.path} gave an answer Wattbench cannot read: the file "
        "may be hostile. Check where it comes from, or export the model again."
    )
    if len(data) > MAX_REPLY_BYTES:
        raise garbage
    try:
        reply = codec.decode_msgpack(data, ProbeReply)
    except codec.CodecError as exc:
        raise garbage from exc
    if reply.failure is not None:
        failure = reply.failure
        if failure.kind == "memory":
            raise ModelError(
                f"Reading the model file {request.path} needed more than "
                f"{_gib(request.memory_bytes)} of memory and was stopped: it may be hostile (an "
                "archive that inflates far beyond its size) or too large. Check where it comes "
                f"from; for a genuine large model, allow more memory with {MEMORY_ENV}."
            )
        error = ShapeError if failure.kind == "shape" else ModelError
        raise error(failure.message, field=failure.field)
    facts = reply.facts
    if facts is None or facts.entry.path != request.path or facts.entry.format != request.format:
        raise garbage
    return facts


def _exit_words(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


# -- the probe's side --------------------------------------------------------------------------


def _confine(request: ProbeRequest) -> None:
    """Limits the probe sets on itself: memory, and its own end should its caller die."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it kills us
    if hasattr(signal, "alarm"):  # a backstop behind the caller's limit, even with the GIL held
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(int(request.time_limit_s) + 5)
    lifetime.die_with_parent(request.parent_pid)
    if sys.platform.startswith("linux"):  # elsewhere RLIMIT_DATA does not bound mmap
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = request.memory_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _probe(request: ProbeRequest) -> ProbeReply:
    path = Path(request.path)
    try:
        return ProbeReply(facts=files.read_facts(path, request.format))
    except Exception as exc:  # every failure is an answer; only the kind of error travels
        if is_out_of_memory(exc):
            return ProbeReply(failure=ProbeFailure("memory", str(exc)))
        if isinstance(exc, BadInputError):
            kind = "shape" if isinstance(exc, ShapeError) else "model"
            return ProbeReply(failure=ProbeFailure(kind, str(exc), exc.field))
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return ProbeReply(
            failure=ProbeFailure(
                "model", f"Cannot read the model {path}: {type(exc).__name__}: {text}", "model"
            )
        )


def main() -> int:
    """The probe process: one request on stdin, one reply on the original stdout."""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # what the model's code prints goes to stderr, never into the reply
    request = codec.decode_msgpack(sys.stdin.buffer.read(MAX_REQUEST_BYTES), ProbeRequest)
    _confine(request)
    reply = _probe(request)
    with os.fdopen(reply_fd, "wb") as out:
        out.write(codec.encode_msgpack(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
