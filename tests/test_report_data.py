"""CSV and JSON reports read back to the same figures; write_report's input checks; the CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from pathlib import Path

import pytest
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunStatus
from wattbench.engine.metrics import metric_value
from wattbench.reports import write_report
from wattbench.reports.data import METRIC_COLUMNS, REPORT_JSON_FORMAT, REPORT_JSON_VERSION
from wattbench.reports.model import build_report
from wattbench.reports.textfmt import sig

from tests.report_fixtures import HOSTILE, comparison_runs, make_run

PROFILES = {
    "cpu": CostProfile("cpu", purchase_price_usd=2000.0, amortization_years=4.0,
                       electricity_usd_per_kwh=0.3, carbon_g_per_kwh=400.0),
    "cuda:0": CostProfile("cuda:0", cloud_usd_per_hour=2.5, carbon_g_per_kwh=400.0),
}  # fmt: skip


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def test_csv_reads_back_every_run_and_figure(tmp_path: Path) -> None:
    runs = comparison_runs()
    path = write_report(runs, tmp_path / "r.csv", cost_profiles=PROFILES)
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))
    assert [r["run_id"] for r in rows] == [r.id for r in runs]
    for run, row in zip(runs, rows, strict=True):
        assert row["status"] == run.status.value
        assert row["flags"] == ";".join(run.flags)
        for metric, col in METRIC_COLUMNS.items():
            iv, reason = metric_value(run, metric, cost_profiles=PROFILES)
            if iv is None:
                assert row[col] == "", (metric, row[col])  # unknown is empty, never 0
                assert row[col + "_na_reason"] == reason
            else:
                assert _close(float(row[col]), iv.value)
                if iv.lo is not None:
                    assert _close(float(row[col + "_lo"]), iv.lo)
        if run.latency is not None:
            assert _close(float(row["latency_mean_ns"]), run.latency.mean_ns)
            assert int(row["latency_n"]) == run.latency.n
        for f in run.energy:
            assert _close(float(row[f"energy_{f.domain}_energy_j"]), f.energy_j)
            assert row[f"energy_{f.domain}_source"] == f.source
            assert row[f"energy_{f.domain}_flags"] == ";".join(f.flags)
    # A user string comes back as written (no formula prefix needed for this one).
    assert rows[0]["notes"] == "baseline " + HOSTILE
    assert rows[2]["host"] == HOSTILE


def test_csv_defuses_spreadsheet_formulas(tmp_path: Path) -> None:
    run = make_run(notes='=HYPERLINK("http://x")', tags=("+cmd",))
    rows = list(csv.DictReader(io.StringIO(write_report([run], tmp_path / "f.csv").read_text())))
    assert rows[0]["notes"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["tags"] == "'+cmd"


def test_json_schema_and_figures(tmp_path: Path) -> None:
    runs = comparison_runs()
    model = build_report(runs, cost_profiles=PROFILES)
    path = write_report(runs, tmp_path / "r.json", cost_profiles=PROFILES)
    doc = json.loads(path.read_text("utf-8"))
    assert doc["format"] == REPORT_JSON_FORMAT and doc["version"] == REPORT_JSON_VERSION
    assert doc["baseline"] == model.baseline.group.label
    assert doc["summary"] == list(model.summary)
    assert [c["label"] for c in doc["configurations"]] == [g.group.label for g in model.groups]
    for c, g in zip(doc["configurations"], model.groups, strict=True):
        for m in model.metrics:
            cell = g.cells[m]
            fig = c["figures"][m]
            if cell.value is None:
                assert fig["value"] is None and fig["na_reason"]
            else:
                assert _close(fig["value"], cell.value)
        if g.is_baseline:
            assert c["ratios_to_baseline"] is None
        else:
            r = model.ratio(g.group.label, "throughput")
            assert r is not None and r.value is not None
            assert _close(c["ratios_to_baseline"]["throughput"]["value"], r.value)
            assert c["ratios_to_baseline"]["throughput"]["verdict"] == r.verdict
    assert len(doc["runs"]) == len(runs)
    assert doc["runs"][0]["result"]["id"] == runs[0].id
    assert doc["runs"][-1]["result"]["status"] == RunStatus.FAILED.value
    assert doc["cost_profiles"]["cpu"]["purchase_price_usd"] == 2000.0
    # Cost figures exist with profiles: the CPU is owned, the GPU rented.
    base = doc["configurations"][0]["figures"]
    assert base["cost"]["value"] is not None and base["co2"]["value"] is not None


def test_summary_sentences_as_the_issue_phrases_them() -> None:
    """'On ResNet-50 at batch 32, device B delivers 0.80× the throughput of device A (95 % CI
    0.78–0.82) and 1.9× its inferences per joule', with the figures of the comparison."""
    model = build_report(comparison_runs())
    b = "cuda:0 · torch · b32"
    num = r"(\d+\.\d+)"
    m = re.fullmatch(
        rf"On ResNet-50 at batch 32, {b} delivers {num}× the throughput of cpu · torch · b32 "
        rf"\(95 % CI {num}–{num}, slower\) and {num}× its inferences per joule "
        rf"\(95 % CI {num}–{num}, better\)\.",
        model.summary[0],
    )
    assert m is not None, model.summary[0]
    shown = [float(x) for x in m.groups()]
    thr, ppw = model.ratio(b, "throughput"), model.ratio(b, "perf-per-watt")
    assert thr is not None and ppw is not None
    for got, want in zip(
        shown, [thr.value, thr.lo, thr.hi, ppw.value, ppw.lo, ppw.hi], strict=True
    ):
        assert want is not None and got == pytest.approx(want, abs=0.006)
    # a workload that differs is said so in the same sentence
    assert model.summary[1].startswith("On ResNet-50 (batch 8 vs 32), cuda:0 · torch · b8 delivers")
    assert model.summary[1].endswith("Not like-for-like: the workloads differ in batch size.")
    # a ratio that is n/a is said once, for every configuration it concerns, not per sentence
    assert model.summary[2].startswith("On ResNet-50 at batch 32, cpu · onnxruntime · b32 ")
    assert "per joule" not in model.summary[2]
    assert model.summary[3] == (
        "No inferences per joule ratio for cpu · onnxruntime · b32 — "
        "this configuration: no power sensor readable on this host."
    )
    assert sum("no power sensor" in s for s in model.summary) == 1


def test_estimates_are_marked_not_ranked(tmp_path: Path) -> None:
    runs = [make_run(seed=1), make_run(device="cuda:0", seed=2, estimate_only=True)]
    model = build_report(runs)
    est = model.groups[1].cells["energy"]
    assert est.value is None  # never compared with a measurement
    assert est.note.startswith("ESTIMATE, not a measurement")
    # Shown in a unit that suits it (mJ/µJ like the column), not as '0.00579 J per inference'.
    m = re.search(r"measurement: ([0-9.]+) (µJ|mJ|J) per inference", est.note)
    assert m is not None and 1 <= float(m.group(1)) < 1000, est.note
    ratio = model.ratio(model.groups[1].group.label, "energy")
    assert ratio is not None and ratio.value is None
    run_cell = model.runs[1].cells["energy"]
    assert run_cell.note.startswith("ESTIMATE")
    html = write_report(runs, tmp_path / "e.html").read_text("utf-8")
    assert "ESTIMATE, not a measurement" in html
    assert "(estimate)" in html  # the hatched bar's label in the chart


@pytest.mark.parametrize("name", ["r.txt", "r", "r.htm", "r.xlsx"])
def test_unknown_suffix_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInputError, match=r"\.html, \.pdf, \.csv, \.json"):
        write_report(comparison_runs()[:1], tmp_path / name)
    assert not (tmp_path / name).exists()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        write_report(comparison_runs()[:1], tmp_path / "missing" / "r.html")
    with pytest.raises(BadInputError, match="at least one run"):
        write_report([], tmp_path / "r.csv")
    with pytest.raises(BadInputError, match="energy view"):
        write_report(comparison_runs()[:1], tmp_path / "r.csv", energy_view="wall")
    failed = make_run(status=RunStatus.FAILED)
    with pytest.raises(BadInputError, match="nothing to compare"):
        write_report([failed], tmp_path / "r.json")


def test_single_run_report(tmp_path: Path) -> None:
    """One configuration: no ratios, but every figure is there."""
    run = make_run(power_w=None)
    html = write_report([run], tmp_path / "one.html").read_text("utf-8")
    assert "nothing to compare it with" in html
    doc = json.loads(write_report([run], tmp_path / "one.json").read_text("utf-8"))
    assert doc["configurations"][0]["figures"]["energy"]["na_reason"] == (
        "no power sensor readable on this host"
    )


def test_cli_report_from_store(tmp_path: Path) -> None:
    store_mod = pytest.importorskip("wattbench.db.store")
    from wattbench.cli.main import main

    # the store refuses markup in tags (reports still escape it, as older stores may hold it)
    runs = [r.with_(spec=dataclasses.replace(r.spec, tags=())) for r in comparison_runs()]
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    with store_mod.open_store(db) as store:
        store.save_runs(runs)
        store.save_cost_profile(PROFILES["cpu"])
    out = tmp_path / "cli.json"
    ids = [r.id[:10] for r in runs[:3]]
    code = main(["--db", db, "report", *ids, "--baseline", runs[2].id[:10], "-o", str(out)])
    assert code == 0
    doc = json.loads(out.read_text("utf-8"))
    assert [r["result"]["id"] for r in doc["runs"]] == [r.id for r in runs[:3]]
    assert doc["baseline"].startswith("cuda:0")
    assert "cpu" in doc["cost_profiles"]
    assert main(["--db", db, "report", ids[0], "-o", str(tmp_path / "r.doc")]) == 2


def test_charts_say_why_they_are_missing() -> None:
    from wattbench.reports.figures import build_charts

    run = make_run(power_w=None)
    bare = run.with_(arrays={}, telemetry={})
    charts = build_charts(build_report([bare]), png_dpi=0)
    drawn = {c.key for c in charts.charts}
    assert drawn == {"bar_throughput", "bar_latency-p99"}
    skipped = dict(charts.skipped)
    assert skipped["Energy per inference"].startswith("no configuration has this figure (no power")
    assert skipped["Latency distribution"] == "no run has its raw latencies stored"
    assert skipped["Power timeline"] == "no run has a sampled power trace"
    assert "two or more batch sizes" in skipped["Throughput vs batch size"]
    assert "fewer than two" in skipped["Pareto view"]


def test_generation_and_memory_tables(tmp_path: Path) -> None:
    runs = [make_run(generation=True, batch=1, seed=1),
            make_run(generation=True, batch=1, device="cuda:0", seed=2)]  # fmt: skip
    html = write_report(runs, tmp_path / "g.html").read_text("utf-8")
    assert "Token generation per run" in html
    gen = runs[0].generation
    assert gen is not None
    assert f"{sig(gen.ttft_ns.value * 1e-6)} ms [" in html  # the interval in brackets
    assert "700 MiB" in html and "2,048 MiB" in html
    assert "n/a — not measurable here" in html  # torch allocator peak unknown: not 0
    rows = list(csv.DictReader(io.StringIO(write_report(runs, tmp_path / "g.csv").read_text())))
    assert float(rows[0]["gen_ttft_ns"]) == gen.ttft_ns.value
    assert rows[0]["gen_e2e_tokens_per_s_lo"] == ""
