"""Bundles: round trip, idempotent import, machine merging, and refusal of truncated, tampered,
wrong-version and hostile bundles with nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from wattbench.db import bundle_manifest as bundle_mod
from wattbench.db.bundle import export_bundle
from wattbench.db.bundle_read import import_bundle, read_bundle
from wattbench.db.schema import Machine
from wattbench.db.store import Store, open_store
from wattbench.domain.codec import to_document
from wattbench.domain.errors import BadInputError, BundleError
from wattbench.domain.result import RunStatus

from tests import bundle_fixtures
from tests.bundle_fixtures import Members, read_members, sha, write_members
from tests.store_fixtures import SYSTEM, make_result, make_results, store_url  # noqa: F401

empty_db, target = bundle_fixtures.empty_db, bundle_fixtures.target  # shared fixtures


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "source.sqlite"))
    yield s
    s.close()


@pytest.fixture
def any_target(store_url: str) -> Iterator[Store]:  # noqa: F811
    """An empty store on SQLite and on PostgreSQL (for the tests that write)."""
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def bundle_and_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bundle of three runs (one tagged, one with a note), made once, and its source db."""
    folder = tmp_path_factory.mktemp("bundle")
    with open_store(str(folder / "source.sqlite")) as s:
        runs = make_results(3)
        for r in runs:
            s.save_run(r)
        s.add_tag(runs[0].id, "baseline")
        s.set_note(runs[1].id, "quiet room")
        return export_bundle(s, None, folder / "runs.wbz").path, folder / "source.sqlite"


@pytest.fixture
def bundle(bundle_and_source: tuple[Path, Path]) -> Path:
    return bundle_and_source[0]


def _machines(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Machine)).scalar_one())


def _assert_empty(store: Store) -> None:
    assert store.count_runs() == 0
    assert _machines(store) == 0


def _reseal(members: Members) -> None:
    """Recompute every checksum in the manifest, as a forger would."""
    man = json.loads(members["manifest.json"])
    for m in man["machines"]:
        if m["file"] in members:
            m["sha256"] = sha(members[m["file"]])
    for r in man["runs"]:
        if r["file"] in members:
            r["sha256"] = sha(members[r["file"]])
        entries = list(r["arrays"])
        for t in r["telemetry"]:
            entries += [t["t_ns"], t["values"]]
        for a in entries:
            if a["file"] in members:
                a["sha256"] = sha(members[a["file"]])
    members["manifest.json"] = json.dumps(man).encode()


def _forge(src: Path, dst: Path, edit: Callable[[Members], None], reseal: bool = True) -> Path:
    members = read_members(src)
    edit(members)
    if reseal:
        _reseal(members)
    write_members(dst, members)
    return dst


def _first_run_file(members: Members) -> str:
    return next(n for n in members if n.startswith("runs/"))


def _edit_run(change: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
    def edit(members: Members) -> None:
        name = _first_run_file(members)
        doc = json.loads(members[name])
        change(doc)
        members[name] = json.dumps(doc).encode()

    return edit


# -- the good path -----------------------------------------------------------------------------


def test_round_trip_keeps_everything(
    bundle_and_source: tuple[Path, Path], any_target: Store
) -> None:
    bundle, source_db = bundle_and_source
    source = open_store(str(source_db))
    summary = import_bundle(any_target, bundle)
    assert len(summary.added) == 3 and summary.already_present == () and summary.machines == 1
    for rid in source.run_ids():
        assert to_document(any_target.get_run(rid)) == to_document(source.get_run(rid))
    assert {s.id for s in any_target.list_runs(tag="baseline")} == {summary.added[0]}
    source.close()


def test_importing_twice_keeps_one_copy(any_target: Store, bundle: Path) -> None:
    first = import_bundle(any_target, bundle)
    second = import_bundle(any_target, bundle)
    assert second.added == () and set(second.already_present) == set(first.added)
    assert any_target.count_runs() == 3
    assert _machines(any_target) == 1


def test_runs_from_many_machines_merge(tmp_path: Path, any_target: Store) -> None:
    paths: list[Path] = []
    for host in ("lab-a", "lab-b"):
        with open_store(str(tmp_path / f"{host}.sqlite")) as s:
            system = {**SYSTEM, "hostname": host}
            for r in make_results(2, seed=len(paths) * 10, system=system):
                s.save_run(r)
            paths.append(export_bundle(s, None, tmp_path / f"{host}.wbz").path)
    for p in paths:
        import_bundle(any_target, p)
    assert any_target.count_runs() == 4
    assert _machines(any_target) == 2
    assert {s.hostname for s in any_target.list_runs()} == {"lab-a", "lab-b"}


def test_a_run_that_had_not_finished_imports_as_interrupted(
    source: Store, target: Store, tmp_path: Path
) -> None:
    r = make_result()
    source.begin_run(r.spec, r.id)
    path = export_bundle(source, [r.id[:8]], tmp_path / "one.wbz").path
    import_bundle(target, path)
    assert target.get_run(r.id).status is RunStatus.INTERRUPTED


def test_export_of_nothing_or_unknown_runs_is_refused(source: Store, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no runs"):
        export_bundle(source, None, tmp_path / "x.wbz")
    with pytest.raises(Exception, match="No run"):
        export_bundle(source, ["deadbeef"], tmp_path / "x.wbz")
    assert not (tmp_path / "x.wbz").exists()


def test_a_run_that_import_would_refuse_is_not_exported(
    source: Store, target: Store, tmp_path: Path
) -> None:
    """A note or tag with markup is kept in the store, but export says so before writing a
    bundle that could never be imported back."""
    good, bad = make_results(2)
    source.save_run(good)
    source.save_run(bad)
    source.set_note(bad.id, "<script>alert(1)</script>")
    out = tmp_path / "x.wbz"
    with pytest.raises(BundleError, match=rf"Run {bad.id[:8]} cannot be exported.*notes"):
        export_bundle(source, None, out)
    assert not out.exists() and list(tmp_path.glob(".wattbench-export-*")) == []
    source.set_note(bad.id, "")
    with pytest.raises(BadInputError, match=r"Tag '<b>x</b>' is not usable"):
        source.add_tag(bad.id, "<b>x</b>")  # a tag cannot carry markup into the store at all
    import_bundle(target, export_bundle(source, None, out).path)
    assert target.count_runs() == 2


# -- refusals: nothing is written ------------------------------------------------------------


def test_truncated_bundle(target: Store, bundle: Path, tmp_path: Path) -> None:
    data = bundle.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        bad = tmp_path / f"cut{cut}.wbz"
        bad.write_bytes(data[:cut])
        with pytest.raises(BundleError, match="cannot be imported"):
            import_bundle(target, bad)
    _assert_empty(target)


def test_member_truncated_inside_a_valid_zip(target: Store, bundle: Path, tmp_path: Path) -> None:
    def cut_array(members: Members) -> None:
        name = next(n for n in members if n.startswith("arrays/"))
        members[name] = members[name][: len(members[name]) // 2]

    bad = _forge(bundle, tmp_path / "bad.wbz", cut_array)
    with pytest.raises(BundleError, match=r"truncated|corrupt"):
        import_bundle(target, bad)
    _assert_empty(target)


def test_tampered_bundle_fails_its_checksums(target: Store, bundle: Path, tmp_path: Path) -> None:
    def flip(members: Members) -> None:
        name = next(n for n in members if n.startswith("arrays/"))
        b = bytearray(members[name])
        b[len(b) // 2] ^= 0xFF
        members[name] = bytes(b)

    bad = _forge(bundle, tmp_path / "bad.wbz", flip, reseal=False)
    with pytest.raises(BundleError, match="checksum"):
        import_bundle(target, bad)
    changed = _forge(
        bundle, tmp_path / "bad2.wbz", _edit_run(lambda d: d.update(converged=False)), reseal=False
    )
    with pytest.raises(BundleError, match="altered"):
        import_bundle(target, changed)
    _assert_empty(target)


def test_machine_that_does_not_match_its_fingerprint(
    target: Store, bundle: Path, tmp_path: Path
) -> None:
    def edit(members: Members) -> None:
        name = next(n for n in members if n.startswith("machines/"))
        doc = json.loads(members[name])
        doc["hostname"] = "someone-else"
        members[name] = json.dumps(doc).encode()

    with pytest.raises(BundleError, match="fingerprint"):
        import_bundle(target, _forge(bundle, tmp_path / "bad.wbz", edit))
    _assert_empty(target)


def test_wrong_versions(target: Store, bundle: Path, tmp_path: Path) -> None:
    def manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
        def edit(members: Members) -> None:
            man = json.loads(members["manifest.json"])
            change(man)
            members["manifest.json"] = json.dumps(man).encode()

        return edit

    newer = _forge(bundle, tmp_path / "v2.wbz", manifest(lambda m: m.update(format_version=2)))
    with pytest.raises(BundleError, match="newer Wattbench"):
        import_bundle(target, newer)
    for bad_version in (0, "1", None, 1.5):

        def set_version(m: dict[str, Any], v: Any = bad_version) -> None:
            m["format_version"] = v

        p = _forge(bundle, tmp_path / "vx.wbz", manifest(set_version))
        with pytest.raises(BundleError, match="version"):
            import_bundle(target, p)
    other = _forge(bundle, tmp_path / "other.wbz", manifest(lambda m: m.update(format="zip")))
    with pytest.raises(BundleError, match="not describe a Wattbench bundle"):
        import_bundle(target, other)
    newer_result = _forge(
        bundle, tmp_path / "r2.wbz", _edit_run(lambda d: d.update(format_version=99))
    )
    with pytest.raises(BundleError, match="newer Wattbench"):
        import_bundle(target, newer_result)
    _assert_empty(target)


def _spec(**kw: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["spec"].update(kw)


HOSTILE_RUN_EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "huge batch": _spec(batch_size=10**15),
    "huge threads": _spec(threads=2**40),
    "negative batch": _spec(batch_size=-3),
    "batch as text": _spec(batch_size="8"),
    "batch as bool": _spec(batch_size=True),
    "model as number": _spec(model=12),
    "script in model": _spec(model="<script>alert(1)</script>"),
    "html in device": _spec(device="cpu<img src=x onerror=alert(1)>"),
    "html in tag": _spec(tags=["<b>bold</b>"]),
    "control char in runtime": _spec(runtime="torch\x1b[2J"),
    "no runtime": _spec(runtime="  "),  # any plugin's name imports; an empty one is refused
    "dims wrong type": _spec(dims=[1, 2]),
    "throughput as text": lambda d: d.update(throughput_items_per_s={"value": "fast"}),
    "huge latency": lambda d: d["latency"].update(mean_ns=1e308 * 10),
    "latency list": lambda d: d.update(latency=[1, 2, 3]),
    "percentiles wrong": lambda d: d["latency"].update(percentiles=[{"p": "x"}]),
    "status unknown": lambda d: d.update(status="hacked"),
    "script in reason": lambda d: d.update(reason="<script>steal()</script>"),
    "javascript url in notes": lambda d: d.update(notes="see javascript:alert(1)"),
    "energy wrong type": lambda d: d.update(energy=[{"domain": 5}]),
    "model inputs hostile": lambda d: d["model"].update(inputs=[["<x>", [1], "float32"]]),
    "flags wrong type": lambda d: d.update(flags="drift"),
    "id mismatch": lambda d: d.update(id="other"),
}


@pytest.mark.parametrize("case", list(HOSTILE_RUN_EDITS))
def test_hostile_run_content_is_refused(
    case: str, target: Store, bundle: Path, tmp_path: Path
) -> None:
    bad = _forge(bundle, tmp_path / "bad.wbz", _edit_run(HOSTILE_RUN_EDITS[case]))
    with pytest.raises(BundleError, match="cannot be imported"):
        import_bundle(target, bad)
    _assert_empty(target)


def test_non_json_numbers_are_refused(target: Store, bundle: Path, tmp_path: Path) -> None:
    for raw in (b"NaN", b"Infinity", b"1e999", b"9" * 400):

        def edit(members: Members, raw: bytes = raw) -> None:
            name = _first_run_file(members)
            members[name] = members[name].replace(b'"converged":true', b'"converged":' + raw)

        bad = _forge(bundle, tmp_path / "bad.wbz", edit)
        with pytest.raises(BundleError, match="not valid JSON"):
            import_bundle(target, bad)
    _assert_empty(target)


def _edit_array_entry(change: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
    def edit(members: Members) -> None:
        man = json.loads(members["manifest.json"])
        change(man["runs"][0]["arrays"][0])
        members["manifest.json"] = json.dumps(man).encode()

    return edit


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.update(dtype="|O"), "dtype"),
        (lambda a: a.update(dtype="<U10"), "dtype"),
        (lambda a: a.update(shape=[-1]), "shape"),
        (lambda a: a.update(shape=[10**12]), "shape"),
        (lambda a: a.update(shape=[40_000, 40_000]), "elements"),
        (lambda a: a.update(shape=[7]), "more data than its dtype and shape declare"),
        (lambda a: a.update(shape=[4_000]), "bytes where"),
        (lambda a: a.update(name="<svg onload=alert(1)>"), "markup"),
        (lambda a: a.update(file="../../etc/passwd"), "missing"),
    ],
)
def test_hostile_array_entries_are_refused(
    change: Callable[[dict[str, Any]], None],
    match: str,
    target: Store,
    bundle: Path,
    tmp_path: Path,
) -> None:
    bad = _forge(bundle, tmp_path / "bad.wbz", _edit_array_entry(change))
    with pytest.raises(BundleError, match=match):
        import_bundle(target, bad)
    _assert_empty(target)


def test_hostile_machine_description(target: Store, bundle: Path, tmp_path: Path) -> None:
    def edit(members: Members) -> None:
        old = next(n for n in members if n.startswith("machines/"))
        system = {**json.loads(members.pop(old)), "hostname": "<script>alert(1)</script>"}
        data = json.dumps(system, sort_keys=True, separators=(",", ":")).encode()
        fp = sha(data)  # a consistent forgery: fingerprint, file name and references agree
        members[f"machines/{fp}.json"] = data
        man = json.loads(members["manifest.json"])
        man["machines"] = [{"fingerprint": fp, "file": f"machines/{fp}.json", "sha256": ""}]
        for r in man["runs"]:
            r["machine"] = fp
            doc = json.loads(members[r["file"]])
            doc["machine"] = fp
            members[r["file"]] = json.dumps(doc).encode()
        members["manifest.json"] = json.dumps(man).encode()

    with pytest.raises(BundleError, match="markup, script"):
        import_bundle(target, _forge(bundle, tmp_path / "bad.wbz", edit))
    _assert_empty(target)


def test_unexpected_files_are_refused(target: Store, bundle: Path, tmp_path: Path) -> None:
    for name in ("../evil.py", "/etc/cron.d/x", "runs/x.pkl", "arrays/abc/1.npy"):

        def add(m: Members, n: str = name) -> None:
            m[n] = b"x"

        bad = _forge(bundle, tmp_path / "bad.wbz", add)
        with pytest.raises(BundleError, match="unexpected"):
            import_bundle(target, bad)
    unlisted = _forge(
        bundle, tmp_path / "unlisted.wbz", lambda m: m.update({"arrays/abc/9.zlib": b"x"})
    )
    with pytest.raises(BundleError, match="does not list"):
        import_bundle(target, unlisted)
    no_manifest = _forge(
        bundle, tmp_path / "nm.wbz", lambda m: m.__delitem__("manifest.json"), reseal=False
    )
    with pytest.raises(BundleError, match="no manifest"):
        import_bundle(target, no_manifest)
    _assert_empty(target)


def test_size_and_count_caps(target: Store, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_mod, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(BundleError, match="larger than allowed"):
        import_bundle(target, bundle)
    monkeypatch.undo()
    monkeypatch.setattr(bundle_mod, "MAX_RUNS", 2)
    with pytest.raises(BundleError, match="at most 2"):
        import_bundle(target, bundle)
    monkeypatch.undo()
    monkeypatch.setattr(bundle_mod, "MAX_MEMBERS", 5)
    with pytest.raises(BundleError, match="files"):
        import_bundle(target, bundle)
    _assert_empty(target)


def test_zip_bomb_member_is_refused_without_inflating_it(
    target: Store, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bomb(members: Members) -> None:
        name = _first_run_file(members)
        members[name] = members[name] + b" " * 5_000_000  # compresses to a few KB

    bad = _forge(bundle, tmp_path / "bomb.wbz", bomb)
    monkeypatch.setattr(bundle_mod, "MAX_JSON_BYTES", 1_000_000)
    with pytest.raises(BundleError, match="larger than allowed"):
        import_bundle(target, bad)
    _assert_empty(target)


def test_one_bad_run_among_good_ones_writes_nothing(
    target: Store, bundle: Path, tmp_path: Path
) -> None:
    def spoil_last(members: Members) -> None:
        name = [n for n in members if n.startswith("runs/")][-1]
        doc = json.loads(members[name])
        doc["spec"]["model"] = "<script>"
        members[name] = json.dumps(doc).encode()

    with pytest.raises(BundleError):
        import_bundle(target, _forge(bundle, tmp_path / "bad.wbz", spoil_last))
    _assert_empty(target)


def test_read_bundle_gives_plain_arrays(bundle: Path) -> None:
    runs, machines = read_bundle(bundle)
    assert machines == 1 and len(runs) == 3
    lat = runs[0].arrays["latencies_ns"]
    assert isinstance(lat, np.ndarray) and lat.dtype == np.int64 and not lat.flags.writeable
