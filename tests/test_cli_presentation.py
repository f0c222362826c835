"""How the CLI presents stored and fresh runs: reasons printed once below the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wattbench.cli import run_output
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.result import RunResult

from tests.store_fixtures import make_results

NO_SENSOR = "no power sensor can be read here (no powercap or hwmon power file)"


def _without_energy(rs: list[RunResult]) -> list[RunResult]:
    return [r.with_(energy=(), energy_na_reason=NO_SENSOR) for r in rs]


def test_run_prints_the_energy_reason_once_and_keeps_it_per_run_in_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rs = _without_energy(make_results(3))
    run_output.print_results(rs)
    out = capsys.readouterr().out
    assert out.count(NO_SENSOR) == 1
    for i in (1, 2, 3):
        assert f"{i}. energy: n/a (‡1)" in out
    footnote = next(line for line in out.splitlines() if line.startswith("‡1 "))
    assert footnote == f"‡1 measured energy n/a: {NO_SENSOR}"
    assert out.rstrip().endswith(footnote)  # after the table and the run notes
    doc = run_output.json_document(rs, 0)
    for run in doc["runs"]:
        assert run["energy_summary"]["na_reason"] == NO_SENSOR
        assert NO_SENSOR in run["energy_summary"]["text"]


def test_distinct_reasons_get_distinct_marks(capsys: pytest.CaptureFixture[str]) -> None:
    rs = _without_energy(make_results(3))
    rs[2] = rs[2].with_(energy_na_reason="the sensor stopped mid-run")
    run_output.print_results(rs)
    out = capsys.readouterr().out
    assert out.count(NO_SENSOR) == 1 and out.count("the sensor stopped mid-run") == 1
    assert "3. energy: n/a (‡2)" in out and "‡2 measured energy n/a: the sensor" in out


def test_compare_prints_each_na_reason_once_after_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.sqlite")
    rs = _without_energy(make_results(4))
    with open_store(db) as s:
        for r in rs:
            s.save_run(r)
    code = main(["--db", db, "compare", *(r.id for r in rs)])
    out, err = capsys.readouterr()
    assert code == 0, err
    marks = [line for line in out.splitlines() if line.startswith("‡")]
    assert marks, out
    reasons = [m.split(" ", 1)[1] for m in marks]
    assert len(reasons) == len(set(reasons))  # each reason once
    for reason in reasons:
        assert out.count(reason) == 1
    # a footnote comes below the first table that shows its mark (the board's, here)
    lines = out.splitlines()
    for m in marks:
        first_use = min(i for i, line in enumerate(lines) if m.split(" ")[0] + " " in line + " "
                        and not line.startswith("‡"))  # fmt: skip
        assert first_use < lines.index(m)
    code = main(["--db", db, "compare", *(r.id for r in rs), "--json"])
    doc = json.loads(capsys.readouterr().out)
    energy = [g["estimates"]["energy"]["na_reason"] for g in doc["groups"]]
    assert all(energy)  # the JSON keeps the reason for every group


def test_counts_read_as_words_not_run_s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.sqlite")
    rs = make_results(4)
    with open_store(db) as s:
        for r in rs:
            s.save_run(r)
    code = main(["--db", db, "delete", rs[0].id])  # no terminal to confirm on
    _, err = capsys.readouterr()
    assert code == 2 and "Not deleting 1 run without confirmation" in err
    code = main(["--db", db, "delete", rs[0].id, rs[1].id])
    _, err = capsys.readouterr()
    assert code == 2 and "Not deleting 2 runs without confirmation" in err
    code = main(["--db", db, "compare", *(r.id for r in rs)])
    out, _ = capsys.readouterr()
    assert code == 0 and "Baseline: cpu · torch (1 run)" in out
    assert "(s)" not in out


def _no_empty_field(label: str) -> bool:
    fields = label.split(" · ")
    return all(f.strip() for f in fields) and "·  ·" not in label


def test_labels_never_show_an_empty_field() -> None:
    from wattbench.domain.spec import RunSpec, join_label
    from wattbench.engine.metrics import config_labels
    from wattbench.service.queue import ItemState, QueueItem

    assert join_label(["a", "", " ", "b"]) == "a · b"
    assert join_label(["a", ""]) == "a" and join_label([]) == ""
    spec = RunSpec(model="builtin:mlp-small", device="")
    assert spec.label() == "builtin:mlp-small · torch · fp32 · b1"
    # a generation run beside a single-stream one: only one of them has a "gen" field
    single = make_results(1)[0]
    gen = make_results(
        1,
        spec_overrides={
            "scenario": "generation",
            "model": "llm:tiny",
            "prompt_tokens": 8,
            "new_tokens": 4,
        },
    )[0]
    labels = config_labels([single, gen])
    assert all(_no_empty_field(lab) for lab in labels), labels
    swept = RunSpec(model="builtin:mlp-small", device="", sweep_id="s1", repeat=1)
    item = QueueItem(key=1, spec=swept, run_id="r", state=ItemState.QUEUED)
    assert item.label == "builtin:mlp-small · torch · fp32 · b1 · round 2"


def test_runs_shows_threads_and_scenario_and_fits_100_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    db = str(tmp_path / "cli.sqlite")
    rs = make_results(4, spec_overrides={"tags": ("baseline", "cli-test")})
    with open_store(db) as s:
        for r in rs:
            s.save_run(r)
    code = main(["--db", db, "runs"])  # a pipe: every column, wide
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if "THREADS" in line)
    for name in ("CREATED (UTC)", "P50", "TAGS", "PREC", "THREADS", "SCENARIO"):
        assert name in header
    assert "single-stream" in out and "left out" not in out
    # a terminal of 100 columns (rich reads COLUMNS; TTY_COMPATIBLE makes it a terminal)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    code = main(["--db", db, "runs"])
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100, out
    header = next(line for line in out.splitlines() if "THREADS" in line)
    assert "SCENARIO" in header and "CREATED" not in header and "P50" not in header
    assert "left out to fit 100 columns: CREATED (UTC), P50" in out
    for r in rs:
        assert r.id[:8] in out  # every run is still listed, its id whole


def test_run_table_fits_100_columns_by_leaving_out_p90_and_mean(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    run_output.print_results(make_results(3))  # a pipe: every column
    out = capsys.readouterr().out
    assert "p90 per call" in out and "mean per call" in out and "left out" not in out
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    run_output.print_results(make_results(3))
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert max(len(line) for line in out.splitlines()) <= 100, out
    header = next(line for line in out.splitlines() if line.startswith("run "))
    assert "p50 per call" in header and "p99 per call" in header and "flags" in header
    assert "p90 per call" not in header
    assert "left out to fit 100 columns: p90 per call" in out


def test_compare_fits_100_columns_without_leaving_anything_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    db = str(tmp_path / "cli.sqlite")
    rs = make_results(4)
    with open_store(db) as s:
        for r in rs:
            s.save_run(r)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    code = main(["--db", db, "compare", *(r.id for r in rs)])
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100, out
    header = next(line for line in out.splitlines() if line.startswith("CONFIGURATION"))
    assert header.split() == ["CONFIGURATION", "RUNS", "VALUE", "[95", "%", "CI]", "RATIO",
                              "[95", "%", "CI]", "VERDICT"]  # fmt: skip
    assert "left out" not in out
