"""Importing untrusted bundles (docs/bundle-format.md).

Every check precedes the first write, and memory stays bounded by one batch of runs, not by the
bundle: ``bundle_manifest.scan_bundle`` checks the manifest against the members and the size
limits before anything is decoded; then each run document and each array is read, checked and
decoded one run at a time and dropped again. Only then are the new runs decoded once more and
written a batch at a time (``IMPORT_BATCH_RUNS`` runs, ``IMPORT_BATCH_BYTES`` inflated), one
short transaction per batch, so a run finishing meanwhile waits for one batch at most.
"""

from __future__ import annotations

import contextlib
import logging
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from wattbench.db.bundle_checks import (
    as_object,
    check_document,
    fail,
    fail_reason,
    load_json,
)
from wattbench.db.bundle_manifest import (
    ArrayEntry,
    BundlePlan,
    BundleReader,
    RunEntry,
    packed_bound,
    scan_bundle,
)
from wattbench.db.values import clean_tag
from wattbench.domain.arrays import unpack_array
from wattbench.domain.codec import CodecError, from_document
from wattbench.domain.errors import BadInputError, BundleError, StoreError, WattbenchError
from wattbench.domain.result import (
    RESULT_FORMAT_VERSION,
    RunResult,
    RunStatus,
    Trace,
)

if TYPE_CHECKING:
    from wattbench.db.repository import Repository

from wattbench.db.bundle import (
    BUNDLE_FORMAT_VERSION,
    IMPORT_BATCH_BYTES,
    IMPORT_BATCH_RUNS,
    MAX_BUNDLE_BYTES,
    MAX_JSON_BYTES,
    ImportSummary,
)

log = logging.getLogger(__name__)

OnBatch = Callable[[int, int], None]  # (new runs handled so far, new runs in all)


def _unpack(reader: BundleReader, a: ArrayEntry, where: str) -> np.ndarray:
    data = reader.read(a.file, packed_bound(a.nbytes), a.sha256)
    try:
        return unpack_array(data, a.dtype, a.shape)
    except WattbenchError as exc:
        raise fail(f"{where}: {exc}") from exc


def _build_run(
    reader: BundleReader, e: RunEntry, machines: Mapping[str, dict[str, Any]]
) -> RunResult:
    """One run of the plan, read, checked and decoded with its arrays (BundleError otherwise)."""
    where = f"run {e.id}"
    doc = as_object(load_json(reader.read(e.file, MAX_JSON_BYTES, e.sha256), where), where)
    if doc.get("id") != e.id:
        raise fail(f"{where}: its file holds another run")
    fv = doc.get("format_version")
    if not isinstance(fv, int) or isinstance(fv, bool):
        raise fail(f"{where} has no result format version")
    if fv > RESULT_FORMAT_VERSION:
        raise BundleError(
            f"Run {e.id} in this bundle was written by a newer Wattbench (result "
            f"format {fv}); upgrade Wattbench to import it. Nothing was imported."
        )
    fp = doc.pop("machine", None)
    if fp != e.machine:
        raise fail(f"{where}: its machine does not match the manifest")
    if fp is not None:
        doc["system"] = machines[fp]
    check_document(doc, where)
    try:
        r = from_document(doc, RunResult)
    except CodecError as exc:
        raise fail(f"{where} is malformed ({str(exc)[:300]})") from exc
    for tag in r.spec.tags:
        try:
            clean_tag(tag)
        except BadInputError as exc:
            raise fail(f"{where}: {str(exc).rstrip('.')}") from exc
    arrays = {name: _unpack(reader, a, f"{where} array {name!r}") for name, a in e.arrays}
    traces = {
        t.key: Trace(
            t.name,
            t.unit,
            _unpack(reader, t.t_ns, f"{where} trace {t.key!r} times"),
            _unpack(reader, t.values, f"{where} trace {t.key!r} values"),
        )
        for t in e.traces
    }
    r = r.with_(arrays=arrays, telemetry=traces)
    if r.status in (RunStatus.RUNNING, RunStatus.PENDING):
        r = r.with_(
            status=RunStatus.INTERRUPTED, reason="The run had not finished when it was exported."
        )
    return r


@contextlib.contextmanager
def _open_bundle(path: Path) -> Iterator[tuple[BundleReader, BundlePlan]]:
    """The bundle's reader and its plan: every size limit checked, nothing decoded yet."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BundleError(f"Cannot read the bundle {path}: {exc.strerror or exc}.") from exc
    if size > MAX_BUNDLE_BYTES:
        raise fail(f"the file is larger than {MAX_BUNDLE_BYTES // 1024**3} GiB")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise fail(
            f"{path.name} is not a complete zip file (truncated or not a bundle: {exc})"
        ) from exc
    try:
        reader = BundleReader(zf)
        yield reader, scan_bundle(reader, size)
    finally:
        zf.close()


def read_bundle(path: str | Path) -> tuple[list[RunResult], int]:
    """Every run in the bundle, fully checked (BundleError otherwise), and the machine count.

    All runs and their arrays are held in memory at once: for a bundle of any size, use
    ``import_bundle``, which holds one batch."""
    with _open_bundle(Path(path).expanduser()) as (reader, plan):
        runs = [_build_run(reader, e, plan.machines) for e in plan.runs]
    return runs, plan.hosts


def _batches(entries: Sequence[RunEntry]) -> Iterator[list[RunEntry]]:
    batch: list[RunEntry] = []
    size = 0
    for e in entries:
        if batch and (len(batch) >= IMPORT_BATCH_RUNS or size + e.nbytes > IMPORT_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(e)
        size += e.nbytes
    if batch:
        yield batch


def _check_runs(reader: BundleReader, plan: BundlePlan) -> dict[str, RunResult]:
    """Read, check and decode every run, one at a time; keep them only when they make one
    batch (a small bundle is then decoded once)."""
    keep = (
        len(plan.runs) <= IMPORT_BATCH_RUNS
        and sum(e.nbytes for e in plan.runs) <= IMPORT_BATCH_BYTES
    )
    built: dict[str, RunResult] = {}
    for e in plan.runs:
        r = _build_run(reader, e, plan.machines)
        if keep:
            built[e.id] = r
    return built


def _so_far(added: int, new: int) -> str:
    if not added:
        return "Nothing was imported."
    return (
        f"{added} of its {new} new runs were imported before this; import the bundle again "
        "to add the rest."
    )


def import_bundle(
    repo: Repository, path: str | Path, *, on_batch: OnBatch | None = None
) -> ImportSummary:
    """Check the whole bundle, then store its new runs a batch at a time (idempotent).

    ``on_batch(handled, new)`` is called after each batch's transaction has committed."""
    p = Path(path).expanduser()
    added: list[str] = []
    with _open_bundle(p) as (reader, plan):
        built = _check_runs(reader, plan)
        present = repo.stored_ids([e.id for e in plan.runs])
        todo = [e for e in plan.runs if e.id not in present]
        handled = 0
        for batch in _batches(todo):
            try:
                runs = [
                    built.pop(e.id) if e.id in built else _build_run(reader, e, plan.machines)
                    for e in batch
                ]
            except BundleError as exc:
                raise BundleError(
                    f"The bundle {p.name} changed while it was being imported "
                    f"({fail_reason(exc)}). " + _so_far(len(added), len(todo))
                ) from exc
            try:
                added += repo.insert_missing(runs)
            except StoreError as exc:
                raise StoreError(
                    f"{exc} {_so_far(len(added), len(todo))}", field=exc.field
                ) from exc
            del runs
            handled += len(batch)
            if on_batch is not None:
                on_batch(handled, len(todo))
        profiles_added, profiles_kept = _add_cost_profiles(repo, plan, len(added), len(todo))
    new = set(added)
    already = tuple(e.id for e in plan.runs if e.id not in new)
    log.info("imported %d runs from %s (%d already present)", len(added), p, len(already))
    return ImportSummary(
        tuple(added), already, plan.hosts, BUNDLE_FORMAT_VERSION, profiles_added, profiles_kept
    )


def _add_cost_profiles(
    repo: Repository, plan: BundlePlan, added: int, new: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Store the bundle's cost profiles the store has no profile of the same device and name
    for; a profile the store has is never overwritten. The labels added and kept."""
    have = {(p.device, p.name) for p in repo.list_cost_profiles()}
    added_labels: list[str] = []
    kept: list[str] = []
    for prof in plan.cost_profiles:
        label = prof.device + (f"/{prof.name}" if prof.name else "")
        if (prof.device, prof.name) in have:
            kept.append(label)
            continue
        try:
            repo.save_cost_profile(prof)
        except StoreError as exc:
            raise StoreError(
                f"{exc} The runs were imported ({added} of {new} new); the cost profile "
                f"{label} was not: import the bundle again to add it.",
                field=exc.field,
            ) from exc
        added_labels.append(label)
    return tuple(added_labels), tuple(kept)


__all__ = ["import_bundle", "read_bundle"]
