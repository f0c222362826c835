"""Verdicts that respect the quality of the runs: unreliable causes, single runs, the settle-it
estimate. The engine decides; the CLI (text and JSON), the GUI's words and the report show it."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.result import (
    FLAG_CONTENDED,
    FLAG_HOST_UNSTEADY,
    FLAG_NOT_CONVERGED,
    FLAG_THROTTLED,
    Interval,
    RunResult,
    RunStatus,
)
from wattbench.domain.spec import RunSpec
from wattbench.engine.compare import Comparison, compare_runs
from wattbench.engine.ratios import MAX_SETTLE_RUNS, verdict_sentence
from wattbench.engine.stats import Z_975
from wattbench.reports import write_report

from tests.store_fixtures import MODEL, make_result

# each cause, as the change that gives a sound run that cause, and the words it reads as
CAUSES: dict[str, tuple[dict[str, Any], str]] = {
    "not converged": ({"flags": (FLAG_NOT_CONVERGED,), "converged": False}, "not converged"),
    "contended": ({"flags": (FLAG_CONTENDED,)}, "contended"),
    "host unsteady": ({"flags": (FLAG_HOST_UNSTEADY,)}, "host unsteady"),
    "throttled": ({"flags": (FLAG_THROTTLED,)}, "throttled"),
    "eta too high": ({"harness_efficiency": 7.2}, "η out of its sane range"),
    "eta too low": ({"harness_efficiency": 0.40}, "η out of its sane range"),
}


def _with_cause(run: RunResult, cause: str) -> RunResult:
    change, _ = CAUSES[cause]
    if "harness_efficiency" in change:
        return run.with_(phases=dataclasses.replace(run.phases, **change))
    return run.with_(**change)


def _pairs(replicates: int = 2) -> list[RunResult]:
    """A cpu baseline and a cuda:0 configuration 25 % faster, `replicates` runs each."""
    runs = [make_result(seed=i, spec_overrides={"repeat": i}) for i in range(replicates)]
    runs += [
        make_result(
            seed=10 + i, mean_ns=200_000.0, spec_overrides={"device": "cuda:0", "repeat": i}
        )
        for i in range(replicates)
    ]
    return runs


def _spoil(runs: list[RunResult], cause: str, side: str) -> list[RunResult]:
    """The first run of one side given the cause."""
    index = 0 if side == "baseline" else len(runs) // 2
    return [_with_cause(r, cause) if i == index else r for i, r in enumerate(runs)]


def test_sound_runs_give_a_plain_verdict() -> None:
    c = compare_runs(_pairs(), metrics=["throughput", "latency-mean"])
    for r in c.rows[0].ratios.values():
        assert r.verdict == "faster" and r.kind == "faster" and r.unreliable == ()
    assert c.warnings == () and c.rows[0].unreliable == ()


@pytest.mark.parametrize("side", ["baseline", "this configuration"])
@pytest.mark.parametrize("cause", list(CAUSES))
def test_every_cause_turns_faster_into_unreliable(cause: str, side: str) -> None:
    runs = _spoil(_pairs(), cause, side)
    c = compare_runs(runs, metrics=["throughput", "latency-p50", "energy"])
    words = CAUSES[cause][1]
    for r in c.rows[0].ratios.values():
        assert r.interval_verdict in ("faster", "better")  # what the interval alone says
        assert r.kind == "unreliable" and r.verdict is not None
        assert r.verdict.startswith("unreliable: ") and f"{side} {words}" in r.verdict
        assert "(1 of 2 runs)" in r.verdict  # the other replicate is sound
        assert r.settle is None
    assert c.rows[0].unreliable and words in c.rows[0].unreliable[0]
    # the reasons open the comparison, naming the run
    spoiled = runs[0] if side == "baseline" else runs[2]
    assert spoiled.id[:8] in c.warnings[0] and words in c.warnings[0]
    assert "unreliable" in c.warnings[0]
    assert all("unreliable: " in s for s in c.sentences())


def test_the_warning_gives_the_figures_behind_the_causes() -> None:
    from wattbench.domain.interference import Interference

    shared = Interference(cpus=(0, 1), foreign_share=0.23, contended=True)
    runs = _spoil(_spoil(_pairs(), "contended", "baseline"), "eta too high", "this configuration")
    runs[0] = runs[0].with_(interference=shared)
    c = compare_runs(runs, metrics=["throughput"])
    assert "others used 23 % of CPUs 0–1 while measuring" in c.warnings[0]
    assert "η 7.2" in c.warnings[1] and "η out of its sane range 0.90–1.10" in c.warnings[1]


def test_eta_within_its_range_is_no_cause() -> None:
    runs = [_with_cause(r, "eta too high") for r in _pairs()]
    runs = [r.with_(phases=dataclasses.replace(r.phases, harness_efficiency=0.95)) for r in runs]
    assert compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"].kind == "faster"


def test_an_unknown_eta_is_no_cause() -> None:
    runs = [
        r.with_(phases=dataclasses.replace(r.phases, harness_efficiency=None)) for r in _pairs()
    ]
    assert compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"].kind == "faster"


def test_one_run_each_is_indicative() -> None:
    c = compare_runs(_pairs(replicates=1), metrics=["throughput"])
    r = c.rows[0].ratios["throughput"]
    assert r.verdict == "faster, indicative (one run each)" and r.kind == "faster"
    assert r.indicative == "one run each"
    assert any("indicative" in w for w in c.warnings)
    assert c.sentences()[0].endswith(": faster, indicative (one run each).")
    # one side pooled: still indicative, and says which side has one run
    runs = _pairs(replicates=2)[:3]
    r = compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"]
    assert r.verdict == "faster, indicative (one run of this configuration)"
    # unreliable wins over indicative
    runs = _spoil(_pairs(replicates=1), "contended", "baseline")
    r = compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"]
    assert r.verdict == "unreliable: baseline contended (other processes used its cores)"


# -- the settle-it estimate ------------------------------------------------------------------


def _run(throughput: float, rel: float, device: str, repeat: int) -> RunResult:
    spec = RunSpec(model=MODEL.ref, device=device, repeat=repeat)
    thr = Interval(throughput, throughput * (1 - rel), throughput * (1 + rel))
    return RunResult(spec=spec, status=RunStatus.DONE, model=MODEL, throughput_items_per_s=thr)


def _side(values: list[float], device: str, rel: float = 0.001) -> list[RunResult]:
    return [_run(v, rel, device, i) for i, v in enumerate(values)]


def test_settle_estimate_uses_the_spread_between_runs() -> None:
    """Tight runs (±0.1 % each) that differ by about 0.4 % between runs: the estimate follows
    the between-run spread, not the runs' own intervals."""
    a, b = [100.0, 100.4, 99.6], [100.2, 100.6, 99.8]
    runs = _side(a, "cpu") + _side(b, "cuda:0")
    r = compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"]
    assert r.kind == "inconclusive" and not r.too_noisy

    def var(v: list[float]) -> float:
        logs = [math.log(x) for x in v]
        m = sum(logs) / len(logs)
        return sum((x - m) ** 2 for x in logs) / (len(logs) - 1)

    pooled = math.sqrt((var(a) + var(b)) / 2)
    expected = math.ceil(4 * Z_975**2 * pooled**2 / 0.01**2)
    within = math.ceil(4 * Z_975**2 * (0.001 / Z_975) ** 2 / 0.01**2)
    assert r.reps_needed == expected and expected != max(2, within)
    assert r.settle == f"about {expected} runs per side would settle it"
    assert r.reps_needed is not None and r.reps_needed <= MAX_SETTLE_RUNS


def test_settle_estimate_is_capped_on_a_noisy_machine() -> None:
    """Runs 5 % apart between runs: ±1 % would take hundreds of runs per side; not offered."""
    runs = _side([100.0, 105.0, 95.0], "cpu") + _side([101.0, 106.0, 96.0], "cuda:0")
    c = compare_runs(runs, metrics=["throughput"])
    r = c.rows[0].ratios["throughput"]
    assert r.kind == "inconclusive" and r.too_noisy and r.reps_needed is None
    assert r.settle is not None
    assert r.settle.startswith("this machine is too noisy for a ±1 % answer")
    assert f"more than {MAX_SETTLE_RUNS} runs per side" in r.settle
    (sentence,) = c.sentences()
    assert "this machine is too noisy for a ±1 % answer" in sentence
    assert not re.search(r"about \d+ runs per side", sentence)
    # a wider answer is within reach on the same runs
    wide = compare_runs(runs, metrics=["throughput"], noise=0.06).rows[0].ratios["throughput"]
    assert not wide.too_noisy


def test_settle_estimate_from_single_runs_is_a_lower_bound_and_capped() -> None:
    runs = [_run(100.0, 0.02, "cpu", 0), _run(101.0, 0.02, "cuda:0", 0)]
    r = compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"]
    assert r.kind == "inconclusive" and r.settle is not None
    assert r.settle.startswith("at least ") and r.reps_needed is not None
    runs = [_run(100.0, 0.30, "cpu", 0), _run(101.0, 0.30, "cuda:0", 0)]
    r = compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"]
    assert r.too_noisy and r.reps_needed is None
    assert verdict_sentence(r, "B", "A").endswith(
        f"this machine is too noisy for a ±1 % answer (more than {MAX_SETTLE_RUNS} runs per "
        "side would be needed)."
    )


# -- the front ends show what the engine returns ----------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _stored(tmp_path: Path, runs: list[RunResult]) -> str:
    db = str(tmp_path / "q.sqlite")
    with open_store(db) as s:
        for r in runs:
            s.save_run(r)
    return db


@pytest.mark.parametrize("cause", list(CAUSES))
def test_cli_json_says_unreliable_and_why(
    cause: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _spoil(_pairs(), cause, "this configuration")
    db = _stored(tmp_path, runs)
    code, out, err = _cli(
        capsys, "--db", db, "compare", *(r.id for r in runs), "--metric", "throughput", "--json"
    )
    assert code == 0
    d = json.loads(out)
    words = CAUSES[cause][1]
    assert d["warnings"] and words in d["warnings"][0] and runs[2].id[:8] in d["warnings"][0]
    (row,) = d["rows"]
    assert row["unreliable"] and words in row["unreliable"][0]
    ratio = row["ratios"]["throughput"]
    assert ratio["verdict"].startswith("unreliable: this configuration " + words)
    assert ratio["interval_verdict"] == "faster" and ratio["unreliable"] == row["unreliable"]
    assert words in err  # the reasons on stderr too


def test_cli_text_lists_the_reasons_before_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _spoil(_pairs(), "not converged", "baseline")
    db = _stored(tmp_path, runs)
    code, out, err = _cli(capsys, "--db", db, "compare", *(r.id for r in runs), "--metric",
                          "throughput")  # fmt: skip
    assert code == 0 and "not converged" in err
    assert "unreliable: baseline not converged (1 of 2 runs)" in out
    assert " faster" not in out.replace("interval_verdict", "")


def _gui_and_report(c: Comparison, runs: list[RunResult], tmp_path: Path) -> tuple[str, str]:
    from wattbench.gui.widgets.comparison_text import verdict_html
    from wattbench.service.workbench import ComparisonView

    view = ComparisonView(c, tuple(runs), None, "device")
    html = write_report(runs, tmp_path / "r.html").read_text("utf-8")
    return verdict_html(view), html


def test_gui_words_and_report_show_the_engine_verdict(tmp_path: Path) -> None:
    runs = _spoil(_pairs(), "host unsteady", "this configuration")
    c = compare_runs(runs)
    panel, html = _gui_and_report(c, runs, tmp_path)
    assert "unreliable: this configuration host unsteady (1 of 2 runs)" in panel
    assert "faster" not in panel
    # the report's "Read with care" box opens with the reasons, naming the run
    box = html[html.index("Read with care") :]
    box = box[: box.index("</div>")]
    assert runs[2].id[:8] in box and "host unsteady" in box
    assert html.count("unreliable: this configuration host unsteady") >= 2  # table, sentences


def test_gui_and_report_label_single_runs_indicative(tmp_path: Path) -> None:
    runs = _pairs(replicates=1)
    panel, html = _gui_and_report(compare_runs(runs), runs, tmp_path)
    assert "faster, indicative (one run each)" in panel
    assert "faster, indicative (one run each)" in html
    box = html[html.index("Read with care") :]
    assert "indicative" in box[: box.index("</div>")]
