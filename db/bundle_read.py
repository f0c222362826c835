"""Reading untrusted bundles: every member's size and checksum, strict JSON, names and text,
and each run decoded against its types, all before a single row is written; then the new runs
are stored in one transaction (docs/bundle-format.md)."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from wattbench.db.bundle_checks import (
    as_list,
    as_object,
    check_document,
    check_json_tree,
    check_name,
    fail,
    load_json,
)
from wattbench.db.values import canonical_sha256
from wattbench.domain.arrays import ALLOWED_DTYPES, unpack_array
from wattbench.domain.codec import CodecError, from_document
from wattbench.domain.errors import BundleError, WattbenchError
from wattbench.domain.result import (
    RESULT_FORMAT_VERSION,
    RunResult,
    RunStatus,
    Trace,
    host_of,
)

if TYPE_CHECKING:
    from wattbench.db.repository import Repository

from wattbench.db.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    MAX_ARRAY_ELEMENTS,
    MAX_ARRAYS_PER_RUN,
    MAX_BUNDLE_BYTES,
    MAX_JSON_BYTES,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_RUNS,
    MAX_TOTAL_BYTES,
    ImportSummary,
    sha256_hex,
)

log = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEMBER = re.compile(
    r"^(manifest\.json|runs/[A-Za-z0-9_-]{1,64}\.json|machines/[0-9a-f]{64}\.json"
    r"|arrays/[A-Za-z0-9_-]{1,64}/[0-9]{1,6}\.zlib)$"
)


# -- reading ---------------------------------------------------------------------------------


class _Reader:
    """Bounded, checked access to the members of an open bundle."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise fail(f"it has {len(infos)} files (at most {MAX_MEMBERS} are allowed)")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            if not _MEMBER.match(name) or name in self.infos:
                raise fail(f"it contains an unexpected or duplicate file {name[:100]!r}")
            if info.file_size > MAX_MEMBER_BYTES:
                raise fail(f"{name} is larger than allowed")
            total += info.file_size
            self.infos[name] = info
        if total > MAX_TOTAL_BYTES:
            raise fail("its contents are larger than allowed")
        if MANIFEST not in self.infos:
            raise fail("it has no manifest.json (is it a Wattbench bundle?)")
        self.used: set[str] = set()

    def read(self, name: Any, limit: int, sha256: Any = None) -> bytes:
        if not isinstance(name, str) or name not in self.infos:
            raise fail(f"the manifest names a file that is missing: {str(name)[:100]!r}")
        if name in self.used:
            raise fail(f"the manifest names {name} twice")
        self.used.add(name)
        info = self.infos[name]
        if info.file_size > limit:
            raise fail(f"{name} is larger than allowed")
        try:
            with self.zf.open(info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise fail(f"{name} is damaged or truncated ({exc})") from exc
        if len(data) > limit:
            raise fail(f"{name} is larger than allowed")
        if sha256 is not None and sha256_hex(data) != sha256:
            raise fail(f"{name} does not match its checksum: the bundle was altered")
        return data


# -- import ----------------------------------------------------------------------------------


def _array(reader: _Reader, entry: Any, where: str) -> np.ndarray:
    e = as_object(entry, where)
    dtype, shape = e.get("dtype"), e.get("shape")
    if dtype not in ALLOWED_DTYPES:
        raise fail(f"{where} has a dtype that is not allowed ({str(dtype)[:20]!r})")
    if (
        not isinstance(shape, list)
        or len(shape) > 4
        or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_ARRAY_ELEMENTS
            for s in shape
        )
    ):
        raise fail(f"{where} has an invalid shape")
    if math.prod(shape) > MAX_ARRAY_ELEMENTS:
        raise fail(f"{where} has more than {MAX_ARRAY_ELEMENTS} elements")
    if not isinstance(e.get("sha256"), str) or not _SHA256.match(e["sha256"]):
        raise fail(f"{where} has no valid checksum")
    data = reader.read(e.get("file"), MAX_MEMBER_BYTES, e["sha256"])
    try:
        return unpack_array(data, str(dtype), tuple(shape))
    except WattbenchError as exc:
        raise fail(f"{where}: {exc}") from exc


def _build_run(
    reader: _Reader, entry: Any, machines: Mapping[str, dict[str, Any]], index: int
) -> RunResult:
    e = as_object(entry, f"run entry {index}")
    rid = e.get("id")
    if not isinstance(rid, str) or not _RUN_ID.match(rid):
        raise fail(f"run entry {index} has an invalid id")
    where = f"run {rid}"
    if e.get("file") != f"runs/{rid}.json":
        raise fail(f"{where} points at the wrong file")
    doc = as_object(
        load_json(reader.read(e["file"], MAX_JSON_BYTES, e.get("sha256")), where), where
    )
    if doc.get("id") != rid:
        raise fail(f"{where}: its file holds another run")
    fv = doc.get("format_version")
    if not isinstance(fv, int) or isinstance(fv, bool):
        raise fail(f"{where} has no result format version")
    if fv > RESULT_FORMAT_VERSION:
        raise BundleError(
            f"Run {rid} in this bundle was written by a newer Wattbench (result "
            f"format {fv}); upgrade Wattbench to import it. Nothing was imported."
        )
    fp = doc.pop("machine", None)
    if fp != e.get("machine"):
        raise fail(f"{where}: its machine does not match the manifest")
    if fp is not None:
        if fp not in machines:
            raise fail(f"{where} refers to a machine that is not in the bundle")
        doc["system"] = machines[fp]
    arrays: dict[str, np.ndarray] = {}
    for i, a in enumerate(as_list(e.get("arrays", []), f"{where} arrays", MAX_ARRAYS_PER_RUN)):
        name = check_name(as_object(a, f"{where} array {i}").get("name"), f"{where} array {i} name")
        if name in arrays:
            raise fail(f"{where} has two arrays named {name!r}")
        arrays[name] = _array(reader, a, f"{where} array {name!r}")
    traces: dict[str, Trace] = {}
    for i, t in enumerate(
        as_list(e.get("telemetry", []), f"{where} telemetry", MAX_ARRAYS_PER_RUN)
    ):
        t = as_object(t, f"{where} trace {i}")
        key = check_name(t.get("key"), f"{where} trace {i} key")
        if key in traces:
            raise fail(f"{where} has two traces named {key!r}")
        tw = f"{where} trace {key!r}"
        t_ns = _array(reader, t.get("t_ns"), f"{tw} times")
        values = _array(reader, t.get("values"), f"{tw} values")
        if t_ns.shape != values.shape or t_ns.ndim != 1 or t_ns.dtype.str != "<i8":
            raise fail(f"{tw}: times and values do not match")
        traces[key] = Trace(
            check_name(t.get("name"), f"{tw} name"),
            check_name(t.get("unit"), f"{tw} unit"),
            t_ns,
            values,
        )
    check_document(doc, where)
    try:
        r = from_document(doc, RunResult)
    except CodecError as exc:
        raise fail(f"{where} is malformed ({str(exc)[:300]})") from exc
    r = r.with_(arrays=arrays, telemetry=traces)
    for tag in r.spec.tags:
        if not tag.strip() or len(tag) > 128:
            raise fail(f"{where} has a tag that is empty or longer than 128 characters")
    if r.status in (RunStatus.RUNNING, RunStatus.PENDING):
        r = r.with_(
            status=RunStatus.INTERRUPTED, reason="The run had not finished when it was exported."
        )
    return r


@contextlib.contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
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
        yield zf
    finally:
        zf.close()


def read_bundle(path: str | Path) -> tuple[list[RunResult], int]:
    """Every run in the bundle, fully checked (BundleError otherwise); and the machine count."""
    with _open_zip(Path(path).expanduser()) as zf:
        reader = _Reader(zf)
        manifest = as_object(load_json(reader.read(MANIFEST, MAX_JSON_BYTES), MANIFEST), MANIFEST)
        if manifest.get("format") != BUNDLE_FORMAT:
            raise fail("manifest.json does not describe a Wattbench bundle")
        version = manifest.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise fail("its format version is missing or invalid")
        if version > BUNDLE_FORMAT_VERSION:
            raise BundleError(
                f"This bundle was written by a newer Wattbench (bundle format {version}; this "
                f"version reads format {BUNDLE_FORMAT_VERSION}). Upgrade Wattbench to import "
                "it. Nothing was imported."
            )
        machines: dict[str, dict[str, Any]] = {}
        for i, m in enumerate(as_list(manifest.get("machines", []), "machines", MAX_RUNS)):
            m = as_object(m, f"machine {i}")
            fp = m.get("fingerprint")
            if not isinstance(fp, str) or not _SHA256.match(fp) or fp in machines:
                raise fail(f"machine {i} has an invalid fingerprint")
            if m.get("file") != f"machines/{fp}.json":
                raise fail(f"machine {i} points at the wrong file")
            system = as_object(
                load_json(
                    reader.read(m["file"], MAX_JSON_BYTES, m.get("sha256")), f"machine {fp[:12]}"
                ),
                f"machine {fp[:12]}",
            )
            check_json_tree(system, f"machine {fp[:12]}")
            if canonical_sha256(system) != fp:
                raise fail(f"machine {fp[:12]} does not match its fingerprint")
            machines[fp] = system
        entries = as_list(manifest.get("runs"), "runs", MAX_RUNS)
        runs = [_build_run(reader, e, machines, i) for i, e in enumerate(entries)]
        ids = [r.id for r in runs]
        if len(set(ids)) != len(ids):
            raise fail("it lists a run twice")
        unused = set(reader.infos) - reader.used
        if unused:
            raise fail(f"it contains files the manifest does not list ({sorted(unused)[0]})")
    return runs, len({host_of(system) or fp for fp, system in machines.items()})


def import_bundle(repo: Repository, path: str | Path) -> ImportSummary:
    """Check the whole bundle, then store its new runs in one transaction (idempotent)."""
    p = Path(path).expanduser()
    runs, n_machines = read_bundle(p)
    present = [r.id for r in runs if repo.has_run(r.id)]
    new = [r for r in runs if r.id not in set(present)]
    if new:
        repo.save_runs(new)
    log.info("imported %d runs from %s (%d already present)", len(new), p, len(present))
    version = BUNDLE_FORMAT_VERSION
    return ImportSummary(tuple(r.id for r in new), tuple(present), n_machines, version)


__all__ = ["import_bundle", "read_bundle"]
