"""The plan of an untrusted bundle: its manifest checked against its members and the size
limits before a single array or run document is decoded (docs/bundle-format.md).

``scan_bundle`` reads the manifest and the machine descriptions only. Every array's inflated
size comes from its declared dtype and shape (``domain.arrays.layout``) and is checked against
the per-array, per-run and whole-bundle limits; a member whose stored size is more than its
declared values could ever compress to is refused here too, so no read later on is larger than
what the limits allow. ``BundleReader`` reads members with a bound, hashing as it reads.
"""

from __future__ import annotations

import hashlib
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from wattbench.db.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    MANIFEST,
    MAX_ARRAY_BYTES,
    MAX_ARRAY_ELEMENTS,
    MAX_ARRAYS_PER_RUN,
    MAX_COST_PROFILES,
    MAX_JSON_BYTES,
    MAX_MACHINE_BYTES,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_RUN_BYTES,
    MAX_RUNS,
    MAX_TOTAL_BYTES,
    inflated_problem,
)
from wattbench.db.bundle_checks import (
    as_list,
    as_object,
    check_cost_profile,
    check_json_tree,
    check_name,
    fail,
    load_json,
)
from wattbench.db.values import canonical_sha256
from wattbench.domain.arrays import layout
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BundleError
from wattbench.domain.result import host_of

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEMBER = re.compile(
    r"^(manifest\.json|runs/[A-Za-z0-9_-]{1,64}\.json|machines/[0-9a-f]{64}\.json"
    r"|arrays/[A-Za-z0-9_-]{1,64}/[0-9]{1,6}\.zlib)$"
)
_READ_CHUNK = 1024**2
_MIB = 1024**2


def _checksum(value: Any) -> str | None:
    """A member's checksum from the manifest: None when absent; a non-text one never matches."""
    return None if value is None else value if isinstance(value, str) else ""


def packed_bound(n: int) -> int:
    """The most bytes zlib can turn ``n`` bytes into (deflate's worst case, with room)."""
    return n + (n >> 10) + 64


@dataclass(frozen=True, slots=True)
class ArrayEntry:
    file: str
    sha256: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int  # inflated, from dtype and shape


@dataclass(frozen=True, slots=True)
class TraceEntry:
    key: str
    name: str
    unit: str
    t_ns: ArrayEntry
    values: ArrayEntry


@dataclass(frozen=True, slots=True)
class RunEntry:
    id: str
    file: str
    sha256: str | None
    machine: str | None
    arrays: tuple[tuple[str, ArrayEntry], ...]
    traces: tuple[TraceEntry, ...]
    nbytes: int  # its document and arrays, inflated: what building it holds in memory


@dataclass(frozen=True)
class BundlePlan:
    machines: dict[str, dict[str, Any]]  # fingerprint -> system description (checked)
    runs: tuple[RunEntry, ...]
    hosts: int  # distinct hosts the runs were measured on
    inflated_bytes: int
    cost_profiles: tuple[CostProfile, ...] = ()  # checked; at most one per (device, name)


class BundleReader:
    """Bounded, checked reads of the members of an open bundle."""

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
        self.claimed: set[str] = set()

    def claim(self, name: Any, limit: int) -> str:
        """A member the manifest names (once), no larger than ``limit``: its name."""
        if not isinstance(name, str) or name not in self.infos:
            raise fail(f"the manifest names a file that is missing: {str(name)[:100]!r}")
        if name in self.claimed:
            raise fail(f"the manifest names {name} twice")
        self.claimed.add(name)
        if self.infos[name].file_size > limit:
            raise fail(f"{name} is larger than allowed")
        return name

    def size(self, name: str) -> int:
        return self.infos[name].file_size

    def read(self, name: str, limit: int, sha256: str | None = None) -> bytes:
        """The member's bytes (at most ``limit``), checked against ``sha256`` as they come."""
        if self.infos[name].file_size > limit:
            raise fail(f"{name} is larger than allowed")
        digest = hashlib.sha256()
        parts: list[bytes] = []
        got = 0
        try:
            with self.zf.open(self.infos[name]) as f:
                while chunk := f.read(min(_READ_CHUNK, limit + 1 - got)):
                    got += len(chunk)
                    if got > limit:
                        raise fail(f"{name} is larger than allowed")
                    digest.update(chunk)
                    parts.append(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise fail(f"{name} is damaged or truncated ({exc})") from exc
        if sha256 is not None and digest.hexdigest() != sha256:
            raise fail(f"{name} does not match its checksum: the bundle was altered")
        return b"".join(parts)


# -- the manifest ----------------------------------------------------------------------------


def _array(reader: BundleReader, entry: Any, where: str) -> ArrayEntry:
    e = as_object(entry, where)
    dtype, shape = e.get("dtype"), e.get("shape")
    if not isinstance(shape, list) or len(shape) > 4:
        raise fail(f"{where} has an invalid shape (a list of at most 4 sizes)")
    try:
        _, dims, nbytes = layout(dtype, shape)
    except BundleError as exc:
        raise fail(f"{where} has a dtype or shape that is not allowed: {exc}") from exc
    if math.prod(dims) > MAX_ARRAY_ELEMENTS:
        raise fail(f"{where} has more than {MAX_ARRAY_ELEMENTS} elements")
    if nbytes > MAX_ARRAY_BYTES:
        raise fail(
            f"{where} would inflate to {nbytes / _MIB:,.0f} MiB, more than the "
            f"{MAX_ARRAY_BYTES / _MIB:,.0f} MiB allowed for one array "
            "(Wattbench exports none larger: the bundle was altered or not made by Wattbench)"
        )
    sha = e.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise fail(f"{where} has no valid checksum")
    name = reader.claim(e.get("file"), MAX_MEMBER_BYTES)
    if reader.size(name) > packed_bound(nbytes):
        raise fail(
            f"{where}: {name} holds more data than its dtype and shape declare "
            f"({reader.size(name):,} compressed bytes for {nbytes:,} bytes of values)"
        )
    return ArrayEntry(name, sha, str(dtype), dims, nbytes)


def _run(
    reader: BundleReader, entry: Any, machines: dict[str, dict[str, Any]], index: int
) -> RunEntry:
    e = as_object(entry, f"run entry {index}")
    rid = e.get("id")
    if not isinstance(rid, str) or not _RUN_ID.match(rid):
        raise fail(f"run entry {index} has an invalid id")
    where = f"run {rid}"
    if e.get("file") != f"runs/{rid}.json":
        raise fail(f"{where} points at the wrong file")
    file = reader.claim(e["file"], MAX_JSON_BYTES)
    fp = e.get("machine")
    if fp is not None and (not isinstance(fp, str) or fp not in machines):
        raise fail(f"{where} refers to a machine that is not in the bundle")
    nbytes = reader.size(file)
    arrays: dict[str, ArrayEntry] = {}
    for i, a in enumerate(as_list(e.get("arrays", []), f"{where} arrays", MAX_ARRAYS_PER_RUN)):
        name = check_name(as_object(a, f"{where} array {i}").get("name"), f"{where} array {i} name")
        if name in arrays:
            raise fail(f"{where} has two arrays named {name!r}")
        arrays[name] = _array(reader, a, f"{where} array {name!r}")
        nbytes += arrays[name].nbytes
    traces: dict[str, TraceEntry] = {}
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
        if t_ns.shape != values.shape or len(t_ns.shape) != 1 or t_ns.dtype != "<i8":
            raise fail(f"{tw}: times and values do not match")
        name = check_name(t.get("name"), f"{tw} name")
        traces[key] = TraceEntry(key, name, check_name(t.get("unit"), f"{tw} unit"), t_ns, values)
        nbytes += t_ns.nbytes + values.nbytes
    if nbytes > MAX_RUN_BYTES:
        raise fail(
            f"{where} would inflate to {nbytes / _MIB:,.0f} MiB, more than the "
            f"{MAX_RUN_BYTES / _MIB:,.0f} MiB allowed for one run "
            "(Wattbench exports none larger: the bundle was altered or not made by Wattbench)"
        )
    return RunEntry(
        rid,
        file,
        _checksum(e.get("sha256")),
        fp,
        tuple(arrays.items()),
        tuple(traces.values()),
        nbytes,
    )


def _machines(reader: BundleReader, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    machines: dict[str, dict[str, Any]] = {}
    total = 0
    for i, m in enumerate(as_list(manifest.get("machines", []), "machines", MAX_RUNS)):
        m = as_object(m, f"machine {i}")
        fp = m.get("fingerprint")
        if not isinstance(fp, str) or not _SHA256.match(fp) or fp in machines:
            raise fail(f"machine {i} has an invalid fingerprint")
        if m.get("file") != f"machines/{fp}.json":
            raise fail(f"machine {i} points at the wrong file")
        file = reader.claim(m["file"], MAX_JSON_BYTES)
        total += reader.size(file)
        if total > MAX_MACHINE_BYTES:
            raise fail(
                f"its machine descriptions together are larger than "
                f"{MAX_MACHINE_BYTES // 1024**2} MiB"
            )
        where = f"machine {fp[:12]}"
        data = reader.read(file, MAX_JSON_BYTES, _checksum(m.get("sha256")))
        system = as_object(load_json(data, where), where)
        check_json_tree(system, where)
        if canonical_sha256(system) != fp:
            raise fail(f"{where} does not match its fingerprint")
        machines[fp] = system
    return machines


def scan_bundle(reader: BundleReader, file_bytes: int) -> BundlePlan:
    """Check the manifest against the members and every size limit; decode nothing else."""
    manifest = as_object(load_json(reader.read(MANIFEST, MAX_JSON_BYTES), MANIFEST), MANIFEST)
    reader.claimed.add(MANIFEST)
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
    machines = _machines(reader, manifest)
    entries = as_list(manifest.get("runs"), "runs", MAX_RUNS)
    runs = tuple(_run(reader, e, machines, i) for i, e in enumerate(entries))
    if len({r.id for r in runs}) != len(runs):
        raise fail("it lists a run twice")
    unused = set(reader.infos) - reader.claimed
    if unused:
        raise fail(f"it contains files the manifest does not list ({sorted(unused)[0]})")
    inflated = reader.size(MANIFEST) + sum(r.nbytes for r in runs)
    inflated += sum(reader.size(f"machines/{fp}.json") for fp in machines)
    problem = inflated_problem(inflated, file_bytes)
    if problem is not None:
        raise fail(problem)
    hosts = len({host_of(system) or fp for fp, system in machines.items()})
    return BundlePlan(machines, runs, hosts, inflated, _cost_profiles(manifest))


def _cost_profiles(manifest: dict[str, Any]) -> tuple[CostProfile, ...]:
    """The manifest's optional ``cost_profiles`` (absent from bundles of older versions)."""
    entries = as_list(manifest.get("cost_profiles", []), "cost_profiles", MAX_COST_PROFILES)
    profiles = tuple(check_cost_profile(e, f"cost profile {i}") for i, e in enumerate(entries))
    if len({(p.device, p.name) for p in profiles}) != len(profiles):
        raise fail("it lists a cost profile twice")
    return profiles


__all__ = ["BundlePlan", "BundleReader", "RunEntry", "packed_bound", "scan_bundle"]
