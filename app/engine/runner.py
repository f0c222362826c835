"""Running one benchmark: the engine's entry point for a single run (a plain function).

``run_one`` validates (unless told it was done), then runs the spec in its own spawned worker
process supervised by the calling thread (see ``supervisor``); it never raises for a run that
fails: a crash, hang, out-of-memory, time limit or cancel is a RunResult with status
failed/cancelled and a reason. Queues of runs, storing and sweeps are the service layer's.
"""

from __future__ import annotations

import logging

from wattbench.domain.events import CancelToken, ProgressCallback
from wattbench.domain.result import RunResult, RunStatus, new_run_id
from wattbench.domain.spec import RunSpec
from wattbench.engine.instances import run_group
from wattbench.engine.supervisor import supervise
from wattbench.engine.validate import validate

log = logging.getLogger(__name__)


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
    if spec.instances > 1:  # N pinned workers measured together, one result
        return run_group(spec, rid, progress, cancel, run_index, run_count)
    return supervise(spec, rid, progress, cancel, run_index, run_count)


__all__ = ["run_one"]
