"""One precision per run, shown the same way everywhere: ρ from one function in `run`'s table,
`show`, the GUI's runs table and run details, and the report; intervals as [lo–hi], never a ±
that crosses zero; footnotes that say what the cell shows; latency per call (and per item);
η with its meaning, flagged when out of range."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from wattbench.cli import run_output
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain import units
from wattbench.domain.result import Interval, PercentileEstimate, RunResult
from wattbench.reports import write_report

from tests.store_fixtures import make_result

RHO = 0.1322  # the run's precision: one string for it everywhere
SHOWN_RHO = "ρ 13 %"


def _noisy_run(**spec: Any) -> RunResult:
    """A run with ρ = 13.22 % and a throughput interval far from symmetric: 16.8–71.7 around
    27.3 (a ± of its half-width would be ±100.5 %, below zero at the low end)."""
    run = make_result(seed=3, spec_overrides=spec)
    assert run.latency is not None
    lat = dataclasses.replace(run.latency, rho=RHO)
    return run.with_(latency=lat, throughput_items_per_s=Interval(27.3, 16.8, 71.7))


def _plus_minus_over_100(text: str) -> list[str]:
    """Every '±x %' in the text with x ≥ 100: a ± that crosses zero."""
    return [m for m in re.findall(r"±\s*([\d.,]+)\s*%", text) if float(m.replace(",", "")) >= 100]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture
def stored(tmp_path: Path) -> tuple[str, RunResult]:
    run = _noisy_run()
    db = str(tmp_path / "p.sqlite")
    with open_store(db) as s:
        s.save_run(run)
    return db, run


def test_rho_is_one_string_from_one_function() -> None:
    assert units.rho(RHO) == SHOWN_RHO
    assert units.rho(0.0083) == "ρ 0.83 %" and units.rho(None) == "ρ n/a"


def test_one_rho_everywhere(
    stored: tuple[str, RunResult], capsys: pytest.CaptureFixture[str], qapp: Any, tmp_path: Path
) -> None:
    from wattbench.gui.widgets.run_details import run_summary_html
    from wattbench.gui.widgets.runs_table import COLUMNS, RunsModel

    db, run = stored
    shown = _cli(capsys, "--db", db, "show", run.id[:8])
    run_output.print_results([run])
    table = capsys.readouterr().out
    with open_store(db) as s:
        summaries = s.list_runs()
    model = RunsModel()
    model.set_summaries(summaries)
    column = [c[0] for c in COLUMNS].index("ρ")
    cell = model.data(model.index(0, column))
    html = write_report([run], tmp_path / "r.html").read_text("utf-8")
    details = run_summary_html(run)
    assert cell == SHOWN_RHO
    for text in (shown, table, html, details):
        assert SHOWN_RHO in text
        # no other rendering of the same precision: 13.2 %, 13.22 %, rho = ...
        assert not re.search(r"13\.2\d? ?%|rho ?=", text), text
    # the throughput's relative half-width (ρ / (1 − ρ²) = 13.5 %) is not shown as a second ρ
    assert "13.5" not in shown + table + details


def test_no_interval_is_a_plus_minus_across_zero(
    stored: tuple[str, RunResult], capsys: pytest.CaptureFixture[str], qapp: Any, tmp_path: Path
) -> None:
    from wattbench.gui.widgets.run_details import run_summary_html

    db, run = stored
    shown = _cli(capsys, "--db", db, "show", run.id[:8])
    listed = _cli(capsys, "--db", db, "runs")
    run_output.print_results([run])
    table = capsys.readouterr().out
    energy = dataclasses.replace(run.energy[0], rel_uncertainty=1.5)  # ±150 % would cross 0
    html = write_report([run.with_(energy=(energy,))], tmp_path / "r.html").read_text("utf-8")
    details = run_summary_html(run)
    for text in (shown, listed, table, details):
        assert "[16.8–71.7]" in text, text
    for text in (shown, listed, table, html, details):
        assert _plus_minus_over_100(text) == [], text
    assert "uncertainty at least the figure itself" in html
    assert units.plus_minus(1.007) == "uncertainty at least the figure itself"
    assert units.plus_minus(0.02) == "±2.0 %"
    assert units.estimate(27.3, 16.8, 71.7) == "27.3 [16.8–71.7]"


def _with_tails(run: RunResult, *, interval: bool) -> RunResult:
    """p99 not a headline figure, with or without its interval."""
    assert run.latency is not None
    pcts = tuple(
        PercentileEstimate(
            pe.p,
            pe.value_ns,
            pe.nearest_rank_ns,
            pe.lo_ns if interval else None,
            pe.hi_ns if interval else None,
            pe.p < 0.99,
        )
        for pe in run.latency.percentiles
    )
    return run.with_(latency=dataclasses.replace(run.latency, percentiles=pcts))


def test_footnote_says_what_the_marked_cell_shows(capsys: pytest.CaptureFixture[str]) -> None:
    run_output.print_results([_with_tails(make_result(seed=1), interval=True)])
    out = capsys.readouterr().out
    foot = next(line for line in out.splitlines() if line.startswith("†"))
    assert "interval in brackets" in foot and "alone" not in foot
    assert re.search(r"\[[^\]]+–[^\]]+\] †", out)  # the cell does show its interval

    run_output.print_results([_with_tails(make_result(seed=2), interval=False)])
    out = capsys.readouterr().out
    foot = next(line for line in out.splitlines() if line.startswith("†"))
    assert "alone" in foot and "brackets" not in foot
    assert "(no interval) †" in out


def test_latency_is_labelled_per_call_and_per_item(
    capsys: pytest.CaptureFixture[str], qapp: Any, tmp_path: Path
) -> None:
    from wattbench.gui.widgets.run_details import run_summary_html
    from wattbench.gui.widgets.runs_table import COLUMNS

    one, eight = make_result(seed=1), make_result(seed=2, spec_overrides={"batch_size": 8})
    run_output.print_results([one])
    out = capsys.readouterr().out
    assert "p99 per call" in out and "per item" not in out
    run_output.print_results([eight])
    out = capsys.readouterr().out
    assert eight.latency is not None
    assert f"that is {units.duration_ns(eight.latency.mean_ns / 8)} per item" in out
    assert "per call (batch of 8)" in out
    assert "Latency mean per item" in run_summary_html(eight)
    assert "Latency mean per call" in run_summary_html(one)
    assert "p50 per call" in [c[0] for c in COLUMNS]
    html = write_report([eight], tmp_path / "r.html").read_text("utf-8")
    assert "median latency per call" in html and "per item (batch of 8)" in html


@pytest.mark.parametrize(("eta", "flagged"), [(0.983, False), (7.2, True), (0.40, True)])
def test_eta_comes_with_its_meaning_and_is_flagged_out_of_range(
    eta: float, flagged: bool, capsys: pytest.CaptureFixture[str], qapp: Any, tmp_path: Path
) -> None:
    from wattbench.gui.widgets.run_details import run_summary_html

    run = make_result(seed=4)
    run = run.with_(phases=dataclasses.replace(run.phases, harness_efficiency=eta))
    run_output.print_results([run])
    out = capsys.readouterr().out
    details = run_summary_html(run)
    for text in (out, details):
        assert f"η {units.number(eta)} (harness efficiency" in text
        assert ("outside its sane range 0.90–1.10" in text) == flagged
    if eta > 1:  # the report (one is enough: they are slow to draw)
        html = write_report([run], tmp_path / "r.html").read_text("utf-8")
        assert f"η {units.number(eta)} — outside its sane range" in html
        assert "η is the harness efficiency" in html  # its meaning, in the table's caption


def test_the_note_of_a_run_that_did_not_converge_quotes_its_rho() -> None:
    """The stopping note is said over every sample, so its ρ is the run's ρ, written the same
    way (a spin loop stands in for the model; ε is out of reach, so T_max stops it)."""
    from wattbench.domain.spec import RunSpec
    from wattbench.engine import measure

    from tests.test_engine_measure import SpinModel

    spec = RunSpec(
        model="builtin:mlp-tiny", preset="quick", t_max_s=1.2, epsilon=1e-6, memory_pass=False
    )
    out = measure.measure(SpinModel(100_000), spec, lambda e: None)
    assert not out.converged and "T_max" in out.notes
    assert f"{units.rho(out.latency.rho)} > target" in out.notes, out.notes
    assert "rho" not in out.notes.replace("ρ", "")
