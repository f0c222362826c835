"""Compare view: bars with intervals and verdicts, the mismatch warning, charts, cost, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog
from wattbench.domain.cost import CostProfile
from wattbench.gui.pages.compare import ComparePage
from wattbench.gui.widgets.banner import Level
from wattbench.gui.widgets.comparison_text import with_report_suffix

from tests.gui.pages_helpers import TIMEOUT_MS, fill_store, make_controller_fixture  # noqa: F401
from tests.store_fixtures import make_result, make_results


@pytest.fixture
def runs() -> list[Any]:
    # 4 configurations (cpu/cuda:0 × torch/onnxruntime); the first two have 2 replicates each
    return make_results(6)


def _page(qtbot: Any, controller: Any) -> ComparePage:
    page = ComparePage(controller)
    qtbot.addWidget(page)
    page.resize(1200, 800)
    return page


def _compare(qtbot: Any, page: ComparePage, ids: list[str], baseline: str) -> None:
    with qtbot.waitSignal(page.controller.comparisonReady, timeout=TIMEOUT_MS):
        page.set_runs(ids, baseline)
    qtbot.waitUntil(lambda: page.view is not None, timeout=TIMEOUT_MS)


def test_bars_have_error_bars_and_verdicts(
    qtbot: Any, tmp_path: Path, runs: list[Any], make_controller: Any
) -> None:
    controller = make_controller(fill_store(tmp_path / "c.sqlite", runs))
    page = _page(qtbot, controller)
    _compare(qtbot, page, [r.id for r in runs], runs[0].id)
    view = page.view
    assert view is not None
    assert view.comparison.baseline.run_ids == (runs[0].id, runs[4].id)  # replicates pooled
    groups = len(view.comparison.groups)
    assert groups == 4

    thr = page.bars.charts["throughput"]
    assert [b.label for b in thr.bars] == [g.label for g in view.comparison.groups]
    assert thr.bars[0].baseline and not any(b.baseline for b in thr.bars[1:])
    assert all(b.value is not None and b.lo is not None and b.hi is not None for b in thr.bars)
    assert thr.error_bars is not None
    texts = [t.textItem.toPlainText() for t in thr.verdict_items]
    assert "(baseline)" in texts[0]
    # the synthetic configurations are 10, 20 and 30 % slower than the baseline
    assert all(("slower" in t or "inconclusive" in t) for t in texts[1:])
    assert any("slower" in t for t in texts[1:])
    for metric in ("latency-p50", "latency-p99", "energy", "perf-per-watt"):
        chart = page.bars.charts[metric]
        assert len(chart.bars) == groups and all(b.value for b in chart.bars), metric
    cost = page.bars.charts["cost"]  # no cost profile stored: n/a with the reason
    assert all(b.value is None for b in cost.bars)
    assert any("no cost profile" in t.textItem.toPlainText() for t in cost.verdict_items)

    verdicts = page.verdicts.toPlainText()
    assert "95 % CI" in verdicts and "throughput" in verdicts
    # like-for-like: no mismatch warning; two configurations have a single run: indicative
    assert "not like-for-like" not in page.banner.text and "indicative" in page.banner.text
    assert page.cdf.curves == []  # the other tabs draw when they are shown
    page.show_tab(page.cdf)
    assert len(page.cdf.curves) == groups
    page.show_tab(page.power)
    assert len(page.power.curves) == groups
    page.show_tab(page.pareto)
    assert len(page.pareto.points) == groups and page.pareto.colour_bar is not None
    assert page.last_draw_s is not None


def test_workload_mismatch_is_warned(qtbot: Any, tmp_path: Path, make_controller: Any) -> None:
    a = make_result(seed=1)
    b = make_result(seed=2, spec_overrides={"batch_size": 8}, mean_ns=900_000.0)
    c = make_result(seed=3, spec_overrides={"batch_size": 32}, mean_ns=3_000_000.0)
    controller = make_controller(fill_store(tmp_path / "m.sqlite", [a, b, c]))
    page = _page(qtbot, controller)
    _compare(qtbot, page, [a.id, b.id, c.id], a.id)
    assert page.banner.isVisibleTo(page)
    assert page.banner.level is Level.WARNING
    assert "batch size" in page.banner.text and "not like-for-like" in page.banner.text
    assert "The workloads differ" in page.verdicts.toPlainText()
    # one line for cpu · torch with three batch sizes
    page.show_tab(page.batch)
    assert len(page.batch.curves) == 1
    xs, _ys = page.batch.curves[0].getOriginalDataset()
    assert sorted(xs) == [1, 8, 32]


def test_energy_switch_and_cost_profiles(
    qtbot: Any, tmp_path: Path, runs: list[Any], make_controller: Any
) -> None:
    profiles = [
        CostProfile(
            device="cpu",
            purchase_price_usd=2000.0,
            amortization_years=4.0,
            electricity_usd_per_kwh=0.3,
        ),
        CostProfile(device="cuda:0", cloud_usd_per_hour=2.5),
    ]
    controller = make_controller(fill_store(tmp_path / "e.sqlite", runs[:4], profiles))
    page = _page(qtbot, controller)
    with qtbot.waitSignal(controller.costProfilesReady, timeout=TIMEOUT_MS):
        page.show()  # reads the cost profiles
    _compare(qtbot, page, [r.id for r in runs[:4]], runs[0].id)
    qtbot.waitUntil(
        lambda: page.view is not None and bool(page.view.cost_profiles), timeout=TIMEOUT_MS
    )
    cost = page.bars.charts["cost"]
    assert all(b.value is not None and b.value > 0 for b in cost.bars)

    with qtbot.waitSignal(controller.comparisonReady, timeout=TIMEOUT_MS):
        page.energy_combo.setCurrentIndex(page.energy_combo.findData("system"))
    qtbot.waitUntil(
        lambda: page.view is not None and page.view.energy_view == "system", timeout=TIMEOUT_MS
    )
    assert page.view.comparison.energy_view == "system"
    assert "Energy view: system" in page.verdicts.toPlainText()


def test_export_report(
    qtbot: Any,
    tmp_path: Path,
    runs: list[Any],
    make_controller: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert with_report_suffix("/x/report", "PDF report (*.pdf)") == "/x/report.pdf"
    assert with_report_suffix("/x/report.CSV", "HTML report (*.html)") == "/x/report.CSV"
    controller = make_controller(fill_store(tmp_path / "r.sqlite", runs[:2]))
    page = _page(qtbot, controller)
    _compare(qtbot, page, [r.id for r in runs[:2]], runs[1].id)
    target = tmp_path / "out" / "report"
    target.parent.mkdir()
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "JSON data (*.json)")
    )
    assert page.export_button.isEnabled()
    with qtbot.waitSignal(controller.reportWritten, timeout=TIMEOUT_MS) as blocker:
        page.export_button.click()
    assert blocker.args[0] == str(target) + ".json"
    assert (tmp_path / "out" / "report.json").stat().st_size > 0
    assert "report.json" in page.banner.text
