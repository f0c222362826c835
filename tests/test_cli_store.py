"""The store's CLI commands through wattbench.cli.main: runs, show, tag, note, delete, compare,
export and import."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.cost import CostProfile
from wattbench.domain.result import RunResult, RunStatus

from tests.store_fixtures import make_result, make_results


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.sqlite")


@pytest.fixture
def runs(db: str) -> list[RunResult]:
    rs = make_results(8)
    rs[7] = rs[7].with_(
        status=RunStatus.FAILED,
        reason="worker ran out of memory",
        latency=None,
        throughput_items_per_s=None,
        energy=(),
        arrays={},
        telemetry={},
    )
    with open_store(db) as s:
        for r in rs:
            s.save_run(r)
    return rs


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_lists_filters_and_prints_json(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "--db", db, "runs")
    assert code == 0 and "8 runs" in out
    assert runs[0].id[:8] in out and "failed" in out
    code, out, _ = _run(capsys, "--db", db, "runs", "--device", "cuda:0", "--json")
    listed = json.loads(out)
    assert {r["id"] for r in listed} == {r.id for r in runs if r.spec.device == "cuda:0"}
    assert all(r["device"] == "cuda:0" for r in listed)
    code, out, _ = _run(capsys, "--db", db, "runs", "--status", "failed", "--json")
    assert [r["id"] for r in json.loads(out)] == [runs[7].id]
    code, out, _ = _run(capsys, "--db", db, "runs", "--since", "2025-03-01T12:05+00:00", "--json")
    assert {r["id"] for r in json.loads(out)} == {r.id for r in runs[5:]}
    code, out, _ = _run(capsys, "--db", db, "runs", "--tag", "none-such")
    assert code == 0 and "No stored runs match" in out
    code, _, err = _run(capsys, "--db", db, "runs", "--since", "yesterday-ish")
    assert code == 2 and "not a time" in err


def test_empty_store_says_how_to_make_a_run(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--db", db, "runs")
    assert code == 0 and "wattbench run" in out


def test_show_text_and_json(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "--db", db, "show", runs[0].id[:7])
    assert code == 0 and runs[0].id in out and "throughput" in out and "p99" in out
    assert f"replicate #{runs[0].spec.repeat + 1}" in out  # 1-based, not 'repeat 0'
    code, out, _ = _run(capsys, "--db", db, "show", runs[0].id, "--json")
    d = json.loads(out)
    assert d["id"] == runs[0].id and d["spec"]["device"] == "cpu"
    assert d["arrays"]["latencies_ns"] == {"dtype": "<i8", "shape": [2000]}
    assert d["telemetry"]["rapl.package-0"]["samples"] == 200
    code, out, _ = _run(capsys, "--db", db, "show", runs[7].id[:8])
    assert "failed: worker ran out of memory" in out
    code, _, err = _run(capsys, "--db", db, "show", "ffffffff")
    assert code != 0 and "No run ffffffff" in err


def test_tag_and_note(db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--db", db, "tag", runs[0].id[:8], runs[1].id[:8], "baseline")
    assert code == 0 and "2 runs" in out
    code, out, _ = _run(capsys, "--db", db, "runs", "--tag", "baseline", "--json")
    assert {r["id"] for r in json.loads(out)} == {runs[0].id, runs[1].id}
    _run(capsys, "--db", db, "tag", runs[1].id[:8], "baseline", "--remove")
    code, out, _ = _run(capsys, "--db", db, "runs", "--tag", "baseline", "--json")
    assert [r["id"] for r in json.loads(out)] == [runs[0].id]
    code, _, err = _run(capsys, "--db", db, "tag", "baseline")
    assert code == 2 and "ID... TAG" in err
    code, out, _ = _run(capsys, "--db", db, "note", runs[2].id[:8], "laptop on battery")
    assert code == 0
    with open_store(db) as s:
        assert s.get_run(runs[2].id).notes == "laptop on battery"


def test_delete_asks_or_needs_yes(
    db: str,
    runs: list[RunResult],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    code, _, err = _run(capsys, "--db", db, "delete", runs[0].id)
    assert code == 2 and "--yes" in err

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    code, out, _ = _run(capsys, "--db", db, "delete", runs[0].id)
    assert code == 0 and "Nothing deleted" in out and "[y/N]" in out
    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    code, out, _ = _run(capsys, "--db", db, "delete", runs[0].id[:8])
    assert code == 0 and "Deleted 1 run" in out
    code, out, _ = _run(capsys, "--db", db, "delete", runs[1].id, runs[2].id, "--yes")
    assert code == 0 and "Deleted 2 runs" in out
    with open_store(db) as s:
        assert s.count_runs() == 5


def test_compare_pools_replicates_and_gives_verdicts(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [r.id for r in runs]
    code, out, err = _run(capsys, "--db", db, "compare", *ids, "--metric", "throughput", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["baseline"] == "cpu · torch"
    base = next(g for g in d["groups"] if g["baseline"])
    assert base["replicates"] == 2  # runs 0 and 4 are replicates of one configuration
    row = next(r for r in d["rows"] if r["label"] == "cpu · onnxruntime")
    ratio = row["ratios"]["throughput"]
    assert ratio["lo"] < ratio["value"] < ratio["hi"] and ratio["verdict"] == "slower"
    assert ratio["method"] == "between runs (Welch)"
    assert "failed" in err  # the failed run is named, not compared
    code, out, _ = _run(capsys, "--db", db, "compare", *ids[:4], "--baseline", ids[2][:8])
    assert code == 0 and out.startswith("Verdict board — baseline cpu · onnxruntime")
    assert "\nBaseline: cpu · onnxruntime" in out
    assert "95 % CI" in out and "faster" in out


@pytest.mark.parametrize(
    ("metric", "header"),
    [
        ("throughput", "throughput (items/s, higher is better)"),
        ("latency-p99", "p99 latency per call (lower is better)"),  # values carry µs/ms, not ns
        ("energy", "energy per inference (J/item, lower is better)"),
        ("perf-per-watt", "inferences per joule (items/J, higher is better)"),
        ("cost", "cost per million inferences (USD/1M items, lower is better)"),
    ],
)
def test_compare_each_metric_the_issue_names(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str], metric: str, header: str
) -> None:
    code, out, _ = _run(capsys, "--db", db, "compare", runs[0].id, runs[1].id, "--metric", metric)
    assert code == 0
    assert header in [line.strip() for line in out.splitlines()]
    assert "e+0" not in out  # plain numbers below a million
    # no cost profile stored: the board's $ question says where to set one
    assert "`wattbench cost set`" in out


def test_compare_warns_when_workloads_differ(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_result(seed=1)
    b = make_result(seed=2, spec_overrides={"batch_size": 8})
    with open_store(db) as s:
        s.save_run(a)
        s.save_run(b)
    code, out, err = _run(capsys, "--db", db, "compare", a.id, b.id, "--metric", "throughput")
    assert code == 0 and "batch size" in err and "not like-for-like" in err
    assert "workloads differ" in out


def test_compare_cost_uses_stored_profiles(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(db) as s:
        for dev in ("cpu", "cuda:0"):
            s.save_cost_profile(CostProfile(device=dev, cloud_usd_per_hour=1.0))
    code, out, _ = _run(
        capsys, "--db", db, "compare", runs[0].id, runs[1].id, "--metric", "cost", "--json"
    )
    assert code == 0
    row = json.loads(out)["rows"][0]
    thr0, thr1 = runs[0].throughput_items_per_s, runs[1].throughput_items_per_s
    assert thr0 is not None and thr1 is not None
    # same $/h on both: cost per item goes as 1 / throughput
    assert row["ratios"]["cost"]["value"] == pytest.approx(thr0.value / thr1.value, rel=1e-6)
    code, out, _ = _run(capsys, "--db", db, "compare", runs[0].id, runs[1].id, "--metric", "cost")
    assert code == 0 and "Cost profiles page" not in out


def test_compare_needs_two_runs(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--db", db, "compare", runs[0].id)
    assert code == 2 and "two different runs" in err


def test_export_import_round_trip(
    db: str, runs: list[RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "out" / "all.wbz"
    code, out, _ = _run(capsys, "--db", db, "export", "--all", "-o", str(bundle))
    assert code == 0 and "Exported 8 runs" in out and bundle.exists()
    code, out, _ = _run(
        capsys, "--db", db, "export", runs[0].id[:8], "-o", str(tmp_path / "one.wbz")
    )
    assert code == 0 and "Exported 1 run " in out
    other = str(tmp_path / "other.sqlite")
    code, out, _ = _run(capsys, "--db", other, "import", str(bundle))
    assert code == 0 and "Imported 8 runs" in out
    code, out, _ = _run(capsys, "--db", other, "import", str(bundle))
    assert code == 0 and "Imported 0 runs; 8 were already" in out
    with open_store(other) as s:
        assert s.count_runs() == 8
    code, _, err = _run(capsys, "--db", db, "export", "-o", str(tmp_path / "x.wbz"))
    assert code == 2 and "--all" in err
    (tmp_path / "junk.wbz").write_bytes(b"PK\x03\x04 not really")
    code, _, err = _run(capsys, "--db", other, "import", str(tmp_path / "junk.wbz"))
    assert code == 2 and "cannot be imported" in err


def test_export_counts_machines_not_system_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each run records its machine's state (load, free memory...), so three runs of one host
    have three different descriptions; they still come from one machine."""
    db = str(tmp_path / "m.sqlite")
    same_host = [
        make_result(seed=i).with_(system={"host": "lab-a", "load_average": [0.1 * i, 0.2, 0.3]})
        for i in range(3)
    ]
    other = make_result(seed=9).with_(system={"host": "lab-b", "load_average": [1.0, 1.0, 1.0]})
    with open_store(db) as s:
        for r in [*same_host, other]:
            s.save_run(r)
        listed = {r.hostname for r in s.list_runs()}
    assert listed == {"lab-a", "lab-b"}  # the store reads the host name too
    code, out, _ = _run(capsys, "--db", db, "export", "--all", "-o", str(tmp_path / "m.wbz"))
    assert code == 0 and "Exported 4 runs from 2 machines" in out, out
    code, out, _ = _run(capsys, "--db", db, "export", same_host[0].id, same_host[1].id,
                        "-o", str(tmp_path / "one.wbz"))  # fmt: skip
    assert code == 0 and "Exported 2 runs from 1 machine " in out, out


def test_unknown_ids_and_missing_store_folders_are_bad_input(
    db: str, runs: list[RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "--db", db, "show", "ffffffff")
    assert code == 2 and out == ""
    assert "No run ffffffff is stored" in err and "`wattbench runs` lists the stored runs" in err
    nowhere = tmp_path / "no-such-folder" / "runs.sqlite"
    code, _, err = _run(capsys, "--db", str(nowhere), "runs")
    assert code == 2 and err.startswith("wattbench: error: --db: The folder")
    assert not nowhere.parent.exists()  # nothing was created


def test_direction_marks_and_control_codes_are_shown_not_obeyed(
    db: str, runs: list[RunResult], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A note (free text, stored as given) that would reorder the line or drive the terminal
    prints its marks written out, in the tables, in ``show`` and in the reports."""
    note = "ok\u202etxt.exe \x1b[2J cleared \u2066x\u2069"
    assert _run(capsys, "--db", db, "note", runs[0].id[:8], note)[0] == 0
    _, listed, _ = _run(capsys, "--db", db, "runs")
    _, shown, _ = _run(capsys, "--db", db, "show", runs[0].id[:8])
    html = tmp_path / "r.html"
    assert _run(capsys, "--db", db, "report", runs[0].id[:8], "-o", str(html))[0] == 0
    for text in (shown, html.read_text("utf-8")):
        assert "\\u202e" in text and "\\u001b" in text, text[:2000]
    for text in (listed, shown, html.read_text("utf-8")):
        assert not any(c in text for c in "\u202e\x1b\u2066\u2069")
    _, as_json, _ = _run(capsys, "--db", db, "show", runs[0].id[:8], "--json")
    assert note in as_json or json.loads(as_json)["notes"] == note  # data stays as stored
