"""Runs browser: listing, filters, sorting, tags, notes, deletion, details, compare hand-off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox
from wattbench.domain.result import RunStatus
from wattbench.gui.pages.runs import RunsPage
from wattbench.gui.widgets.runs_table import COLUMNS, ID_ROLE

from tests.gui.pages_helpers import TIMEOUT_MS, fill_store, make_controller_fixture  # noqa: F401
from tests.store_fixtures import make_result, make_results


@pytest.fixture
def runs() -> list[Any]:
    out = make_results(6)  # cpu/cuda:0 × torch/onnxruntime
    out.append(
        make_result(
            seed=50,
            status=RunStatus.FAILED,
            reason="worker crashed (test)",
            latency=None,
            throughput_items_per_s=None,
            energy=(),
            arrays={},
            telemetry={},
        )
    )
    return out


@pytest.fixture
def page(qtbot: Any, tmp_path: Path, runs: list[Any], make_controller: Any) -> RunsPage:
    controller = make_controller(fill_store(tmp_path / "runs.sqlite", runs))
    page = RunsPage(controller)
    qtbot.addWidget(page)
    with qtbot.waitSignal(controller.runsListed, timeout=TIMEOUT_MS):
        page.show()
    return page


def _column(name: str) -> int:
    return [c[0] for c in COLUMNS].index(name)


def _shown_ids(page: RunsPage) -> list[str]:
    return [
        str(page.proxy.data(page.proxy.index(r, 0), ID_ROLE)) for r in range(page.proxy.rowCount())
    ]


def _refreshed(qtbot: Any, page: RunsPage, action: Any) -> None:
    """Do something that changes the store and wait for the new listing."""
    with qtbot.waitSignal(page.controller.runsListed, timeout=TIMEOUT_MS):
        action()


def test_lists_filters_and_sorts_stored_runs(page: RunsPage, runs: list[Any]) -> None:
    assert sorted(_shown_ids(page)) == sorted(r.id for r in runs)
    assert page.count_label.text() == f"{len(runs)} runs"

    page.device_combo.setCurrentIndex(page.device_combo.findData("cuda:0"))
    cuda = {r.id for r in runs if r.spec.device == "cuda:0"}
    assert set(_shown_ids(page)) == cuda
    page.status_combo.setCurrentIndex(page.status_combo.findData("failed"))
    assert _shown_ids(page) == []  # the failed run is on the CPU
    page.device_combo.setCurrentIndex(0)
    assert _shown_ids(page) == [runs[-1].id]
    assert "0 of" not in page.count_label.text() and "1 of 7" in page.count_label.text()
    page.status_combo.setCurrentIndex(0)

    page.search.setText("onnxruntime cuda")
    assert set(_shown_ids(page)) == {
        r.id for r in runs if r.spec.runtime == "onnxruntime" and r.spec.device == "cuda:0"
    }
    page.search.clear()
    page.date_combo.setCurrentIndex(1)  # last 24 h: the synthetic runs are from 2025
    assert _shown_ids(page) == []
    page.date_combo.setCurrentIndex(0)

    page.table.sortByColumn(_column("Throughput"), Qt.SortOrder.DescendingOrder)
    done = [r for r in runs if r.throughput_items_per_s is not None]
    expected = [r.id for r in sorted(done, key=lambda r: -r.throughput_items_per_s.value)]
    assert _shown_ids(page)[: len(done)] == expected
    assert _shown_ids(page)[-1] == runs[-1].id  # no throughput sorts last
    page.table.sortByColumn(_column("Batch"), Qt.SortOrder.AscendingOrder)
    assert len(_shown_ids(page)) == len(runs)


def test_tag_note_and_tag_filter(
    qtbot: Any, page: RunsPage, runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    page.select_ids({runs[0].id, runs[1].id})
    assert sorted(page.selected_run_ids()) == sorted([runs[0].id, runs[1].id])
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("fast-path", True))
    _refreshed(qtbot, page, page.add_tag)
    tagged = {s.id for s in page.model.summaries if "fast-path" in s.tags}
    assert tagged == {runs[0].id, runs[1].id}
    page.tag_combo.setCurrentIndex(page.tag_combo.findData("fast-path"))
    assert set(_shown_ids(page)) == tagged
    page.tag_combo.setCurrentIndex(0)

    page.select_ids({runs[2].id})
    monkeypatch.setattr(
        QInputDialog, "getMultiLineText", lambda *a, **k: ("<b>hot</b> room, fan at 100 %", True)
    )
    _refreshed(qtbot, page, page.edit_note)
    note = next(s.note for s in page.model.summaries if s.id == runs[2].id)
    assert note == "<b>hot</b> room, fan at 100 %"

    page.select_ids({runs[0].id})
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("fast-path", True))
    _refreshed(qtbot, page, page.remove_tag)
    assert not any("fast-path" in s.tags for s in page.model.summaries if s.id == runs[0].id)


def test_delete_asks_first(
    qtbot: Any, page: RunsPage, runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def answer(button: QMessageBox.StandardButton) -> Any:
        def question(_parent: Any, _title: str, text: str, *_a: Any) -> Any:
            asked.append(text)
            return button

        return question

    page.select_ids({runs[3].id, runs[4].id})
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    page.delete_selected()
    assert asked and "2 run(s)" in asked[0]
    qtbot.wait(200)
    assert len(page.model.summaries) == len(runs)

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    _refreshed(qtbot, page, page.delete_selected)
    remaining = {s.id for s in page.model.summaries}
    assert remaining == {r.id for r in runs} - {runs[3].id, runs[4].id}


def test_details_show_system_spec_flags_and_histogram(
    qtbot: Any, page: RunsPage, runs: list[Any]
) -> None:
    run = runs[0]
    with qtbot.waitSignal(page.controller.runLoaded, timeout=TIMEOUT_MS):
        page.select_ids({run.id})
    qtbot.waitUntil(lambda: page.histogram.counts.sum() > 0, timeout=TIMEOUT_MS)
    n = len(run.arrays["latencies_ns"])  # all but the 0.1 % far tail are drawn
    assert n * 0.998 <= page.histogram.counts.sum() <= n
    summary = page.summary_view.toPlainText()
    assert run.id in summary and "Flags" in summary and "rapl.package-0" in summary
    assert "bench-host-1" in page.system_view.toPlainText()
    assert "builtin:mlp-small" in page.spec_view.toPlainText()

    failed = runs[-1]
    with qtbot.waitSignal(page.controller.runLoaded, timeout=TIMEOUT_MS):
        page.select_ids({failed.id})
    qtbot.waitUntil(lambda: "worker crashed" in page.summary_view.toPlainText(), timeout=TIMEOUT_MS)
    assert page.histogram.counts.size == 0


def test_compare_selected_hands_ids_to_the_compare_page(
    qtbot: Any, page: RunsPage, runs: list[Any]
) -> None:
    page.select_ids({runs[0].id})
    assert not page.compare_button.isEnabled()
    page.select_ids({runs[0].id, runs[1].id})
    assert page.compare_button.isEnabled()
    with qtbot.waitSignal(page.controller.compareRequested, timeout=TIMEOUT_MS) as blocker:
        page.compare_button.click()
    assert sorted(blocker.args[0]) == sorted([runs[0].id, runs[1].id])


def test_histogram_uses_a_log_axis_for_heavy_tails(qtbot: Any) -> None:
    import numpy as np
    from wattbench.gui.widgets.run_details import HistogramPlot

    plot = HistogramPlot()
    qtbot.addWidget(plot)
    rng = np.random.default_rng(3)
    narrow = rng.normal(250_000, 5_000, 5_000)
    plot.set_latencies(narrow, 250_000.0, 262_000.0)
    assert not plot.log_x and plot.counts.sum() >= 0.998 * len(narrow)
    tail = np.concatenate([narrow, rng.uniform(5e6, 2e7, 60)])  # 1 % of calls 20-80× slower
    plot.set_latencies(tail, 250_000.0, 1.5e7)
    assert plot.log_x and plot.counts.sum() >= 0.998 * len(tail)
    assert plot.counts.max() < len(tail)  # not everything in one bin
    plot.set_latencies(None, None, None, "the run failed")
    assert plot.counts.size == 0
