"""A training run from the New run page: the training scenario shows its own inputs (sequence
length, accumulation, checkpointing, the micro-batch search, data-parallel ranks) and only the
precisions a step runs in; a real step of the built-in GPT on the CPU finishes, and the compare
view and the run list show it in tokens, never items.
"""

from __future__ import annotations

from pytestqt.qtbot import QtBot
from wattbench.domain.spec import Scenario
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.compare import ComparePage
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.widgets.bar_charts import TRAINING_BAR_METRICS
from wattbench.gui.widgets.run_details import run_summary_html
from wattbench.gui.widgets.run_form import BATCH_LABEL, MICRO_BATCH_LABEL
from wattbench.gui.widgets.runs_table import throughput_text
from wattbench.gui.widgets.verdict_board import COL_FIGURE, COL_QUESTION
from wattbench.service.queue import ItemState

from tests.gui.conftest import LOAD_TIMEOUT_MS, launch, stored_runs, wait_items
from tests.training_fixtures import training_run


def _choose(page: NewRunPage, scenario: Scenario) -> None:
    page.scenario_combo.setCurrentIndex(page.scenario_combo.findData(scenario.value))


def test_the_training_inputs_come_and_go_with_the_scenario(new_run: NewRunPage) -> None:
    fields = new_run.training_widget
    assert not fields.isVisibleTo(new_run)
    new_run.precision_checks["fp16"].setChecked(True)
    _choose(new_run, Scenario.TRAINING)
    assert fields.isVisibleTo(new_run)
    assert new_run.batch_label.text() == MICRO_BATCH_LABEL
    assert not new_run.precision_checks["fp16"].isEnabled()
    assert not new_run.precision_checks["fp16"].isChecked()  # a step runs in fp32 or bf16
    assert new_run.precision_checks["bf16"].isEnabled()
    fields.ckpt_check.setChecked(True)
    fields.find_check.setChecked(True)
    fields.dp_spin.setValue(2)
    fields.seq_spin.setValue(64)
    request = new_run.request()
    assert request.scenario is Scenario.TRAINING
    assert (request.prompt_tokens, request.activation_checkpointing) == (64, True)
    assert (request.find_micro_batch, request.data_parallel) == (True, 2)
    _choose(new_run, Scenario.SINGLE_STREAM)
    assert not fields.isVisibleTo(new_run)
    assert new_run.batch_label.text() == BATCH_LABEL
    assert new_run.precision_checks["fp16"].isEnabled()
    plain = new_run.request()
    assert (plain.grad_accum, plain.activation_checkpointing, plain.data_parallel) == (1, False, 1)


def test_a_training_run_from_the_form_is_shown_in_tokens(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage
) -> None:
    controller = window.controller
    assert new_run.select_model("builtin:gpt-small")
    _choose(new_run, Scenario.TRAINING)
    fields = new_run.training_widget
    fields.seq_spin.setValue(16)
    fields.accum_spin.setValue(2)
    new_run.batch_edit.setText("2")
    new_run.t_max_spin.setValue(2.0)
    new_run.repeats_spin.setValue(2)  # two runs: the compare view compares two or more
    assert new_run.select_model("builtin:gpt-small")  # choosing it again keeps training
    plan = new_run.update_plan()
    assert plan.runs is not None, plan.errors
    assert len(plan.specs) == 2
    for spec in plan.specs:
        assert spec.scenario is Scenario.TRAINING
        assert (spec.batch_size, spec.grad_accum, spec.prompt_tokens) == (2, 2, 16)

    keys = launch(qtbot, new_run)
    items = wait_items(qtbot, controller, keys)
    assert all(it.state is ItemState.DONE and it.stored for it in items), [
        it.reason for it in items
    ]
    summaries = stored_runs(qtbot, controller)
    assert len(summaries) == 2
    assert all(throughput_text(s).endswith(" tokens/s") for s in summaries)

    compare = window.show_page("compare")
    assert isinstance(compare, ComparePage)
    controller.request_compare([str(it.result_id) for it in items])
    qtbot.waitUntil(lambda: compare.view is not None, timeout=LOAD_TIMEOUT_MS)
    assert compare.charts.training_shown
    assert compare.charts.current_chart is compare.charts.training
    bars = compare.charts.training.charts["train-tokens-per-s"].bars
    assert len(bars) == 1 and bars[0].value is not None and bars[0].value > 0  # one config
    assert {m for m, *_ in TRAINING_BAR_METRICS} == set(compare.charts.training.charts)
    listed = [compare.run_list.item(i).text() for i in range(compare.run_list.count())]
    assert len(listed) == 2 and all(" tokens/s · " in text for text in listed), listed
    rows = {r[COL_QUESTION]: r for r in compare.board.rows}
    assert {"Trained tokens/s", "Step time (mean)", "J per trained token"} <= set(rows)
    tps = rows["Trained tokens/s"][COL_FIGURE]
    # a run this machine's noise flagged (not converged, contended) is not ranked: n/a and why
    assert " tokens/s" in tps or "not ranked" in compare.board.why.text()
    assert not any("items" in cell for r in compare.board.rows for cell in r)


def test_a_training_run_s_details_show_its_step_in_tokens() -> None:
    text = run_summary_html(training_run(device="cuda:0", device_name="NVIDIA H200"))
    assert " tokens/s" in text and "items/s" not in text and "inference" not in text
    assert "/trained token" in text and "tokens/J" in text
    assert "2 × 2 × 16 = 64 tokens" in text and "6·N + 12·L·d·s" in text
    assert "step time" in text and "per call" not in text
    assert "documented peak 67 TFLOP/s fp32" in text  # the H200's MFU, with its peak
    assert "6.9 → 5.2 over 40 steps (falls)" in text
