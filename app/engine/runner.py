"""Running benchmarks: the engine's public entry points (a plain function per job).

``validate`` checks a spec before any worker starts (model readable, shapes complete, runtime
available, device and options possible) and raises BadInputError subclasses with a message
that says what to do. ``run_one`` validates, then runs the spec in its own spawned worker
process supervised by the calling thread (see ``supervisor``); it never raises for a run that
fails: a crash, hang, out-of-memory, time limit or cancel is a RunResult with status
failed/cancelled and a reason. ``run_many`` validates every spec first, then runs them one by
one, stopping at a cancel.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.domain.events import CancelToken, ProgressCallback
from wattbench.domain.result import RunResult, RunStatus
from wattbench.domain.spec import RunSpec
from wattbench.engine.supervisor import supervise

log = logging.getLogger(__name__)

ResultHook = Callable[[RunResult], None]
StartHook = Callable[[RunSpec, str], None]


def new_run_id() -> str:
    return uuid.uuid4().hex


def validate(spec: RunSpec) -> None:
    """Raise a BadInputError subclass if ``spec`` cannot run; imports the runtime, never loads.

    Checks, in order: the model resolves (file exists, is a readable model of a known format),
    its inputs are fully determined (dynamic dimensions set, explicit shapes well-formed), the
    scenario fits the model, the runtime is installed, and the runtime accepts the device and
    options (precision, threads, provider).
    """
    from wattbench.backends.runtimes import registry
    from wattbench.engine.worker import resolve_entry

    resolve_entry(spec)  # a model file's parser errors become ModelError here
    try:
        registry.check_options(spec)
    except WattbenchError:
        raise
    except Exception as exc:  # a vendor error from a check: still the user's input
        raise BadInputError(
            f"{spec.runtime} cannot run {spec.model} on {spec.device}: {exc}"
        ) from exc


def run_one(
    spec: RunSpec,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    run_index: int = 0,
    run_count: int = 1,
    *,
    run_id: str | None = None,
    validated: bool = False,
) -> RunResult:
    """Validate and run one spec in its own worker process.

    Raises BadInputError (before any worker starts) for a spec that cannot run; every other
    failure is returned as a RunResult with status failed or cancelled and a reason.
    ``run_id`` fixes the result's id (so a store row begun earlier can be finished);
    ``validated=True`` skips the validation already done by the caller.
    """
    if not validated:
        validate(spec)
    rid = run_id or new_run_id()
    if cancel is not None and cancel.cancelled:
        return RunResult(
            spec=spec,
            status=RunStatus.CANCELLED,
            id=rid,
            reason="Cancelled before it started.",
            energy_na_reason="run cancelled",
        )
    log.info("run %s: %s", rid[:8], spec.label())
    return supervise(spec, rid, progress, cancel, run_index, run_count)


def _call_hook(hook: Callable[..., None] | None, *args: object) -> None:
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:  # a failing store hook must not stop the remaining runs
        log.exception("run hook %r failed", hook)


def validate_many(specs: Sequence[RunSpec]) -> None:
    """Validate each distinct configuration; one BadInputError naming every problem."""
    problems: list[str] = []
    seen: set[tuple[object, ...]] = set()
    first: BadInputError | None = None
    for spec in specs:
        key = spec.config_key()
        if key in seen:
            continue
        seen.add(key)
        try:
            validate(spec)
        except BadInputError as exc:
            first = first or exc
            problems.append(f"{spec.label()}: {exc}" if len(specs) > 1 else str(exc))
    if first is not None:
        if len(problems) == 1:
            raise first
        raise type(first)("\n".join(problems)) from first


def run_many(
    specs: Sequence[RunSpec],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_result: ResultHook | None = None,
    on_start: StartHook | None = None,
) -> list[RunResult]:
    """Validate all specs, then run them one by one (each in its own worker).

    ``on_start(spec, run_id)`` is called right before a run starts (the store records a
    running row), ``on_result(result)`` right after it ends. A cancel stops the run in
    progress (its result is ``cancelled``) and skips the rest, which get no result.
    """
    validate_many(specs)
    token = cancel or CancelToken()
    results: list[RunResult] = []
    for i, spec in enumerate(specs):
        if token.cancelled:
            break
        rid = new_run_id()
        _call_hook(on_start, spec, rid)
        result = run_one(spec, progress, token, i, len(specs), run_id=rid, validated=True)
        results.append(result)
        _call_hook(on_result, result)
    return results


__all__ = ["new_run_id", "run_many", "run_one", "validate", "validate_many"]
