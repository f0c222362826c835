"""Portable results bundles: runs, their machines and raw arrays in one zip (docs/bundle-format.md).

Export (here) writes a temporary file and renames it into place. Import checks the whole
bundle before a single row is written: the manifest against the members and the size limits
below, before anything is decoded (``bundle_manifest``), then every run document and array, one
run at a time (``bundle_read``); then it stores the runs that are new a batch at a time, one
short transaction per batch. Nothing from the file is ever executed: JSON and raw numeric
arrays of a few plain dtypes only, no pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from wattbench import __version__
from wattbench.db.bundle_checks import (
    check_cost_profile,
    export_problem,
    fail_reason,
    profile_document,
)
from wattbench.db.values import canonical_sha256
from wattbench.domain.arrays import ALLOWED_DTYPES, pack_array
from wattbench.domain.errors import BundleError
from wattbench.domain.result import (
    RESULT_FORMAT_VERSION,
    RunResult,
    host_of,
    result_document,
)

if TYPE_CHECKING:
    from wattbench.db.repository import Repository

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "wattbench-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# Caps: a bundle past any of them is refused before it is decoded further.
MAX_BUNDLE_BYTES = 4 * 1024**3  # the zip file itself
MAX_MEMBERS = 200_000
MAX_RUNS = 20_000
MAX_MEMBER_BYTES = 1024**3  # one member, uncompressed
MAX_TOTAL_BYTES = 8 * 1024**3  # all members, uncompressed
MAX_JSON_BYTES = 32 * 1024**2  # one JSON member
MAX_ARRAY_ELEMENTS = 50_000_000  # one array
MAX_ARRAYS_PER_RUN = 64
MAX_COST_PROFILES = 1_000
MAX_MACHINE_BYTES = 64 * 1024**2  # all machine descriptions (held through the import)
# Inflated sizes, from each array's declared dtype and shape, checked before decoding:
MAX_ARRAY_BYTES = 256 * 1024**2  # one array (33.5 M values of 8 bytes)
MAX_RUN_BYTES = 1024**3  # one run: its document and all its arrays
MAX_INFLATED_BYTES = 4 * 1024**3  # the whole bundle: manifest, documents and arrays
MAX_INFLATE_RATIO = 200  # the whole bundle, times the size of the file ...
FREE_INFLATED_BYTES = 256 * 1024**2  # ... once it inflates to more than this
# Import writes the new runs in batches, one transaction each: a concurrent writer (a run
# finishing) waits for one batch at most, and memory holds one batch (or one larger run).
IMPORT_BATCH_RUNS = 200
IMPORT_BATCH_BYTES = 64 * 1024**2  # inflated
_MIB = 1024**2


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    run_ids: tuple[str, ...]
    machines: int  # distinct hosts the runs were measured on
    bytes_written: int
    cost_profiles: int = 0  # profiles of the runs' devices written with them


@dataclass(frozen=True)
class ImportSummary:
    added: tuple[str, ...]  # runs new to this store
    already_present: tuple[str, ...]  # runs the store had (left as they are)
    machines: int  # distinct hosts the bundle's runs were measured on
    bundle_version: int
    profiles_added: tuple[str, ...] = ()  # cost profiles new to this store ("device/name")
    profiles_kept: tuple[str, ...] = ()  # the store had its own: kept, never overwritten


def inflated_problem(inflated: int, file_bytes: int | None = None) -> str | None:
    """Why a bundle file of ``file_bytes`` whose members inflate to ``inflated`` bytes is
    refused (the whole bundle's limits: a fixed budget and a ratio to the file), or None.
    Without ``file_bytes``, the fixed budget only."""
    if inflated > MAX_INFLATED_BYTES:
        return (
            f"its runs would inflate to {inflated / _MIB:,.0f} MiB, more than the "
            f"{MAX_INFLATED_BYTES / _MIB:,.0f} MiB one bundle may hold; export the runs in "
            "several smaller bundles"
        )
    if file_bytes is not None and inflated > max(
        FREE_INFLATED_BYTES, MAX_INFLATE_RATIO * file_bytes
    ):
        return (
            f"its runs would inflate to {inflated / _MIB:,.0f} MiB, more than "
            f"{MAX_INFLATE_RATIO} times the size of the file ({file_bytes / _MIB:,.1f} MiB); "
            "measured data never compresses that well, so the file is likely a decompression "
            "bomb and should not be trusted"
        )
    return None


# -- export ----------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":")).encode()


def _array_entry(
    zf: zipfile.ZipFile, run_id: str, index: int, a: np.ndarray, what: str
) -> dict[str, Any]:
    a = np.asarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    if a.dtype.str not in ALLOWED_DTYPES:
        raise BundleError(f"Run {run_id}: array dtype {a.dtype.str} cannot be exported.")
    if a.ndim > 4 or a.size > MAX_ARRAY_ELEMENTS or a.nbytes > MAX_ARRAY_BYTES:
        raise BundleError(
            f"Run {run_id[:8]} cannot be exported: its {what} (shape {list(a.shape)}, "
            f"{a.nbytes / _MIB:,.0f} MiB) is larger than a bundle carries for one array (at most "
            f"{MAX_ARRAY_BYTES / _MIB:,.0f} MiB, {MAX_ARRAY_ELEMENTS:,} values, 4 dimensions). "
            "Leave the run out of the export. No bundle was written."
        )
    data = pack_array(a, level=6)
    name = f"arrays/{run_id}/{index}.zlib"
    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)  # already compressed
    return {"file": name, "dtype": a.dtype.str, "shape": list(a.shape), "sha256": sha256_hex(data)}


def _write_run(
    zf: zipfile.ZipFile, r: RunResult, machines: dict[str, bytes], hosts: set[str]
) -> tuple[dict[str, Any], int]:
    """The run's manifest entry, and its size inflated (its document and arrays)."""
    problem = export_problem(r)
    if problem is not None:
        raise BundleError(
            f"Run {r.id[:8]} cannot be exported: import refuses it because {problem}. "
            "Edit its note or tags, or leave it out. No bundle was written."
        )
    doc = result_document(r)
    system = doc.pop("system") or {}
    fp = None
    if system:
        fp = canonical_sha256(system)
        machines.setdefault(fp, _json_bytes(system))
        # a machine's description changes from run to run (load, process): count hosts
        hosts.add(host_of(system) or fp)
    doc["machine"] = fp
    data = _json_bytes(doc)
    zf.writestr(f"runs/{r.id}.json", data)
    index = 0
    arrays = []
    nbytes = len(data)
    for name, a in r.arrays.items():
        arrays.append({"name": str(name), **_array_entry(zf, r.id, index, a, f"array {name}")})
        nbytes += np.asarray(a).nbytes
        index += 1
    traces = []
    for key, tr in r.telemetry.items():
        t_ns = np.asarray(tr.t_ns, dtype="<i8")
        t = _array_entry(zf, r.id, index, t_ns, f"trace {key} times")
        v = _array_entry(zf, r.id, index + 1, tr.values, f"trace {key} values")
        nbytes += t_ns.nbytes + np.asarray(tr.values).nbytes
        index += 2
        traces.append({"key": str(key), "name": tr.name, "unit": tr.unit, "t_ns": t, "values": v})
    if nbytes > MAX_RUN_BYTES:
        raise BundleError(
            f"Run {r.id[:8]} cannot be exported: its arrays take {nbytes / _MIB:,.0f} MiB, more "
            f"than a bundle carries for one run ({MAX_RUN_BYTES / _MIB:,.0f} MiB). Leave the run "
            "out of the export. No bundle was written."
        )
    entry = {
        "id": r.id,
        "file": f"runs/{r.id}.json",
        "sha256": sha256_hex(data),
        "machine": fp,
        "arrays": arrays,
        "telemetry": traces,
    }
    return entry, nbytes


def _check_export(problem: str | None) -> None:
    if problem is not None:
        raise BundleError(
            f"These runs cannot be exported in one bundle: import would refuse it because "
            f"{problem}. No bundle was written."
        )


def export_bundle(
    repo: Repository, run_ids: Sequence[str] | None, path: str | Path
) -> ExportSummary:
    """Write the runs (ids or unique prefixes; None = every run) to a bundle at ``path``."""
    ids = (
        repo.run_ids()
        if run_ids is None
        else list(dict.fromkeys(repo.resolve_id(i) for i in run_ids))
    )
    if not ids:
        raise BundleError("There are no runs to export.")
    if len(ids) > MAX_RUNS:
        raise BundleError(f"A bundle holds at most {MAX_RUNS} runs; export fewer at a time.")
    out = Path(path).expanduser()
    if out.is_dir():
        raise BundleError(f"{out} is a folder: give the bundle's file name, e.g. runs.wbz.")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".wattbench-export-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    machines: dict[str, bytes] = {}
    hosts: set[str] = set()
    entries = []
    devices: set[str] = set()
    inflated = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for start in range(0, len(ids), 50):  # bounded memory: 50 runs at a time
                for r in repo.load_runs(ids[start : start + 50]):
                    entry, nbytes = _write_run(zf, r, machines, hosts)
                    devices.add(r.spec.device)
                    entries.append(entry)
                    inflated += nbytes
                    _check_export(inflated_problem(inflated))
            mentries = []
            for fp, data in sorted(machines.items()):
                zf.writestr(f"machines/{fp}.json", data)
                inflated += len(data)
                mentries.append(
                    {"fingerprint": fp, "file": f"machines/{fp}.json", "sha256": sha256_hex(data)}
                )
            profiles = _profiles(repo, devices)
            manifest = {
                "format": BUNDLE_FORMAT,
                "format_version": BUNDLE_FORMAT_VERSION,
                "result_format_version": RESULT_FORMAT_VERSION,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "wattbench_version": __version__,
                "runs": entries,
                "machines": mentries,
                "cost_profiles": profiles,
            }
            data = _json_bytes(manifest)
            zf.writestr(MANIFEST, data)
        _check_export(inflated_problem(inflated + len(data), tmp.stat().st_size))
        os.replace(tmp, out)
    except OSError as exc:
        raise BundleError(f"Cannot write the bundle {out}: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("exported %d runs to %s", len(ids), out)
    return ExportSummary(out, tuple(ids), len(hosts), out.stat().st_size, len(profiles))


def _profiles(repo: Repository, devices: set[str]) -> list[dict[str, Any]]:
    """The cost profiles of ``devices``, as import will check them."""
    out = []
    for p in repo.list_cost_profiles():
        if p.device not in devices:
            continue
        doc = profile_document(p)
        try:
            check_cost_profile(doc, "cost profile")
        except BundleError as exc:
            raise BundleError(
                f"The cost profile {p.device} {p.name!r} cannot be exported: import refuses it "
                f"because {fail_reason(exc)}. Save it under another name. No bundle was written."
            ) from exc
        out.append(doc)
    if len(out) > MAX_COST_PROFILES:
        raise BundleError(
            f"The runs' devices have {len(out)} cost profiles, more than a bundle carries "
            f"({MAX_COST_PROFILES}); delete the ones not needed. No bundle was written."
        )
    return out


__all__ = ["BUNDLE_FORMAT_VERSION", "ExportSummary", "ImportSummary", "export_bundle"]
