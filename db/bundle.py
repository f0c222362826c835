"""Portable results bundles: runs, their machines and raw arrays in one zip (docs/bundle-format.md).

Export (here) writes a temporary file and renames it into place. Import (``bundle_read``) reads
and checks the whole bundle (zip structure, sizes, every member's SHA-256, JSON types and
ranges, names) and builds every ``RunResult`` in memory before a single row is written; then it
stores the runs that are new in one transaction. Nothing from the file is ever executed: JSON
and raw numeric arrays of a few plain dtypes only, no pickle.
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
    export_problem,
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


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    run_ids: tuple[str, ...]
    machines: int  # distinct hosts the runs were measured on
    bytes_written: int


@dataclass(frozen=True)
class ImportSummary:
    added: tuple[str, ...]  # runs new to this store
    already_present: tuple[str, ...]  # runs the store had (left as they are)
    machines: int  # distinct hosts the bundle's runs were measured on
    bundle_version: int


# -- export ----------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":")).encode()


def _array_entry(zf: zipfile.ZipFile, run_id: str, index: int, a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    if a.dtype.str not in ALLOWED_DTYPES:
        raise BundleError(f"Run {run_id}: array dtype {a.dtype.str} cannot be exported.")
    data = pack_array(a, level=6)
    name = f"arrays/{run_id}/{index}.zlib"
    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)  # already compressed
    return {"file": name, "dtype": a.dtype.str, "shape": list(a.shape), "sha256": sha256_hex(data)}


def _write_run(
    zf: zipfile.ZipFile, r: RunResult, machines: dict[str, bytes], hosts: set[str]
) -> dict[str, Any]:
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
    for name, a in r.arrays.items():
        arrays.append({"name": str(name), **_array_entry(zf, r.id, index, a)})
        index += 1
    traces = []
    for key, tr in r.telemetry.items():
        t = _array_entry(zf, r.id, index, np.asarray(tr.t_ns, dtype="<i8"))
        v = _array_entry(zf, r.id, index + 1, tr.values)
        index += 2
        traces.append({"key": str(key), "name": tr.name, "unit": tr.unit, "t_ns": t, "values": v})
    return {
        "id": r.id,
        "file": f"runs/{r.id}.json",
        "sha256": sha256_hex(data),
        "machine": fp,
        "arrays": arrays,
        "telemetry": traces,
    }


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
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for start in range(0, len(ids), 50):  # bounded memory: 50 runs at a time
                for r in repo.load_runs(ids[start : start + 50]):
                    entries.append(_write_run(zf, r, machines, hosts))
            mentries = []
            for fp, data in sorted(machines.items()):
                zf.writestr(f"machines/{fp}.json", data)
                mentries.append(
                    {"fingerprint": fp, "file": f"machines/{fp}.json", "sha256": sha256_hex(data)}
                )
            manifest = {
                "format": BUNDLE_FORMAT,
                "format_version": BUNDLE_FORMAT_VERSION,
                "result_format_version": RESULT_FORMAT_VERSION,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "wattbench_version": __version__,
                "runs": entries,
                "machines": mentries,
            }
            zf.writestr(MANIFEST, _json_bytes(manifest))
        os.replace(tmp, out)
    except OSError as exc:
        raise BundleError(f"Cannot write the bundle {out}: {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("exported %d runs to %s", len(ids), out)
    return ExportSummary(out, tuple(ids), len(hosts), out.stat().st_size)


__all__ = ["BUNDLE_FORMAT_VERSION", "ExportSummary", "ImportSummary", "export_bundle"]
