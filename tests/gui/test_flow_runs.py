"""The whole run flow through the real window, controller, engine, worker process and store.

Each run is builtin:mlp-tiny on the CPU with the quick preset and a short measuring limit, so
the real engine runs end to end (spawned worker, progress, result, store) in a few seconds.
"""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from wattbench.domain.events import Phase
from wattbench.domain.result import RunStatus
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.compare import ComparePage
from wattbench.gui.pages.live import LivePage
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.pages.queue import COL_REASON, COL_STATE, QueuePage
from wattbench.gui.pages.runs import RunsPage
from wattbench.service.queue import ItemState

from tests.gui.conftest import launch, stored_runs, wait_items

FAULT_ENV = "WATTBENCH_TEST_FAULT"
# phases that only the worker process reports: once seen, the worker has been spawned
WORKER_PHASES = (Phase.PREFLIGHT, Phase.LOADING, Phase.WARMUP, Phase.CALIBRATION, Phase.MEASURING)


def test_quick_run_then_a_second_configuration(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage
) -> None:
    controller = window.controller
    order: list[tuple[str, int]] = []
    controller.runStarted.connect(lambda key: order.append(("start", key)))
    controller.runFinished.connect(lambda key, _result: order.append(("end", key)))

    [first] = launch(qtbot, new_run)
    assert window.current_page_name() in ("queue", "live")
    [item] = wait_items(qtbot, controller, [first])
    assert item.state is ItemState.DONE, item.reason
    assert item.stored and item.result_id
    live = window.page("live")
    assert isinstance(live, LivePage)
    qtbot.waitUntil(lambda: live.redraws > 0, timeout=5_000)
    assert live.latency_curve.getData()[0] is not None
    assert "mlp-tiny" in live.title.text()
    # power per domain, or the reason there is none
    assert live.power_curves or live.power_na.toPlainText()

    # a second configuration: two batch sizes, queued together, run one after the other
    window.show_page("new-run")
    new_run.batch_edit.setText("1, 4")
    assert new_run.run_button.isEnabled(), new_run.run_reason
    assert "2 run(s)" in new_run.summary_label.text()
    keys = launch(qtbot, new_run)
    assert len(keys) == 2
    items = wait_items(qtbot, controller, keys)
    assert [it.state for it in items] == [ItemState.DONE, ItemState.DONE], [
        it.reason for it in items
    ]
    assert sorted(it.spec.batch_size for it in items) == [1, 4]  # one round, shuffled
    ends = [k for what, k in order if what == "end"]
    starts = [k for what, k in order if what == "start"]
    assert starts == [first, *keys] and ends == [first, *keys]
    for a, b in itertools.pairwise(order):  # one at a time: start, end, start, end
        assert a[0] != b[0]

    queue = window.show_page("queue")
    assert isinstance(queue, QueuePage)
    assert queue.cell_text(keys[1], COL_STATE) == "done"
    reason = queue.cell_text(keys[1], COL_REASON)
    assert "stored" in reason
    assert items[1].converged is not None
    assert ("did not converge" in reason) == (not items[1].converged), reason

    runs = {r.id: r for r in stored_runs(qtbot, controller)}
    for it in (item, *items):
        assert it.result_id in runs
        assert runs[it.result_id].status is RunStatus.DONE
        assert runs[it.result_id].model_ref == "builtin:mlp-tiny"
    assert {runs[it.result_id].batch_size for it in items} == {1, 4}
    assert runs[items[1].result_id].throughput_items_per_s is not None

    # found in the runs browser, and sent from there to the compare view with Ctrl+K
    ids = [str(it.result_id) for it in (item, *items)]
    browser = window.show_page("runs")
    assert isinstance(browser, RunsPage)
    browser.refresh()
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=30_000)
    browser.select_ids(ids[1:])
    assert sorted(browser.selected_run_ids()) == sorted(ids[1:])
    window.activateWindow()
    browser.table.setFocus()
    with qtbot.waitSignal(controller.compareRequested, timeout=5_000):
        qtbot.keyClick(browser.table, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page_name() == "compare"
    assert sorted(controller.compare_selection) == sorted(ids[1:])

    # compared there; then the batch-4 run chosen as the baseline in the picker
    compare = window.page("compare")
    assert isinstance(compare, ComparePage)
    qtbot.waitUntil(lambda: compare.view is not None, timeout=30_000)
    compare.baseline_combo.setCurrentIndex(compare.baseline_combo.findData(ids[2]))
    qtbot.waitUntil(
        lambda: compare.view is not None and compare.view.comparison.baseline.run_ids == (ids[2],),
        timeout=30_000,
    )
    assert compare.baseline_id == ids[2] and compare.view is not None
    comp = compare.view.comparison
    assert len(comp.groups) == 2 and len(comp.rows) == 1
    thr = compare.bars.charts["throughput"]
    assert [b.baseline for b in thr.bars].count(True) == 1
    assert all(b.value is not None for b in thr.bars)
    texts = [t.textItem.toPlainText() for t in thr.verdict_items]
    assert sum("(baseline)" in t for t in texts) == 1
    verdicts = ("faster", "slower", "inconclusive", "equivalent", "unreliable")  # a busy host
    assert any(w in t for t in texts for w in verdicts), texts
    assert "Baseline:" in compare.verdicts.toPlainText()


def test_cancel_the_running_run_and_the_queued_one(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage
) -> None:
    controller = window.controller
    new_run.t_max_spin.setValue(60)
    new_run.repeats_spin.setValue(3)
    keys = launch(qtbot, new_run)
    assert len(keys) == 3
    wait_items(qtbot, controller, keys[:1], lambda it: it.phase == Phase.MEASURING)
    assert [controller.items[k].state for k in keys[1:]] == [ItemState.QUEUED] * 2

    # one queued run, from the queue page
    queue = window.show_page("queue")
    assert isinstance(queue, QueuePage)
    row = queue.row_of(keys[1])
    assert row is not None
    queue.table.selectRow(row)
    assert queue.selected_keys() == [keys[1]] and queue.cancel_button.isEnabled()
    queue.cancel_button.click()
    assert controller.items[keys[1]].state is ItemState.CANCELLED
    # Esc in a field (leaving it, clearing a filter) must not stop the benchmark
    window.show_page("new-run")
    window.activateWindow()
    new_run.batch_edit.setFocus()
    qtbot.keyClick(new_run.batch_edit, Qt.Key.Key_Escape)
    qtbot.wait(200)
    assert controller.items[keys[0]].state is ItemState.RUNNING
    # the running one, with Ctrl+. (the window's cancel action)
    assert [s.toString() for s in window.cancel_action.shortcuts()] == ["Ctrl+."]
    window.cancel_action.trigger()
    first = wait_items(qtbot, controller, keys[:1], timeout_ms=30_000)[0]
    assert first.state is ItemState.CANCELLED
    # the queue went on with the third; cancel all stops it
    wait_items(qtbot, controller, keys[2:], lambda it: it.state is not ItemState.QUEUED)
    window.cancel_all_action.trigger()
    items = wait_items(qtbot, controller, keys, timeout_ms=30_000)
    assert [it.state for it in items] == [ItemState.CANCELLED] * 3
    assert items[1].reason and "before it started" in items[1].reason
    assert queue.cell_text(keys[0], COL_STATE) == "cancelled"
    qtbot.waitUntil(lambda: not controller.busy, timeout=10_000)
    runs = {r.id: r for r in stored_runs(qtbot, controller)}
    assert runs[items[0].result_id].status is RunStatus.CANCELLED
    assert items[1].result_id is None  # never started: nothing stored


def test_a_crashing_run_fails_with_its_reason_and_the_queue_goes_on(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = window.controller
    new_run.repeats_spin.setValue(2)
    monkeypatch.setenv(FAULT_ENV, "crash")  # inherited by the next worker process only
    keys = launch(qtbot, new_run)
    # once the first worker reports progress it has its environment: the second one must not
    wait_items(
        qtbot, controller, keys[:1], lambda it: it.state.finished or it.phase in WORKER_PHASES
    )
    monkeypatch.delenv(FAULT_ENV)
    crashed, after = wait_items(qtbot, controller, keys)
    assert crashed.state is ItemState.FAILED
    assert crashed.reason and "crashed" in crashed.reason  # the supervisor's words, shown as is
    assert after.state is ItemState.DONE, after.reason
    queue = window.show_page("queue")
    assert isinstance(queue, QueuePage)
    assert queue.cell_text(keys[0], COL_STATE) == "failed"
    assert queue.cell_text(keys[0], COL_REASON) == crashed.reason
    assert window.isVisible()
    runs = {r.id: r for r in stored_runs(qtbot, controller)}
    assert runs[crashed.result_id].status is RunStatus.FAILED
    assert runs[crashed.result_id].reason == crashed.reason
    assert runs[after.result_id].status is RunStatus.DONE
