"""The New run page plans replicates in rounds, and the queue shows them in the order they run.

On the fake runtime plugin (fp32 and fp16 are two configurations of it); the runs launched are
cancelled once queued: what matters here is their order, not their figures.
"""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.pages.queue import COL_RUN, QueuePage
from wattbench.gui.widgets.run_form import AUTO_REPLICATES

from tests.gui.conftest import launch, wait_items


def test_a_comparison_defaults_to_two_replicates_queued_in_rounds(
    fake_plugins: Path, qtbot: QtBot, window: MainWindow, new_run: NewRunPage
) -> None:
    for name, check in new_run.runtime_checks.items():
        check.setChecked(name == "fake")
    new_run.repeats_spin.setValue(AUTO_REPLICATES)
    assert new_run.repeats_spin.text().startswith("auto")
    assert len(new_run.update_plan().specs) == 1  # a single configuration: one run

    new_run.precision_checks["fp16"].setChecked(True)  # two configurations: a comparison
    plan = new_run.update_plan()
    assert plan.runs is not None and len(plan.specs) == 4 and plan.runs.replicates == 2
    summary = new_run.summary_label.text()
    assert "4 run(s) will be queued" in summary
    assert "2 configurations × 2 replicates (the default for a comparison)" in summary
    assert "in 2 rounds" in summary and f"order seed {new_run.order_seed}" in summary
    tip = new_run.summary_label.toolTip()
    for i, runs in enumerate(plan.runs.rounds, start=1):
        assert f"round {i}: {', '.join(s.precision for s in runs)}" in tip
    new_run.repeats_spin.setValue(1)  # settable, 1 allowed
    assert len(new_run.update_plan().specs) == 2
    new_run.repeats_spin.setValue(AUTO_REPLICATES)

    shown = [(s.precision, s.repeat, s.position) for s in new_run.update_plan().specs]
    seed = new_run.order_seed
    keys = launch(qtbot, new_run)
    controller = window.controller
    queued = [controller.items[k].spec for k in keys]
    assert [(s.precision, s.repeat, s.position) for s in queued] == shown  # as announced
    assert {s.order_seed for s in queued} == {seed} and new_run.order_seed != seed
    queue = window.show_page("queue")
    assert isinstance(queue, QueuePage)
    assert [queue.row_of(k) for k in keys] == [0, 1, 2, 3]  # top to bottom, as they run
    for key, spec in zip(keys, queued, strict=True):
        assert queue.cell_text(key, COL_RUN).endswith(
            f"{spec.precision} · b1 · t1 · round {spec.repeat + 1}"
        )
    controller.cancel_all()
    wait_items(qtbot, controller, keys, timeout_ms=60_000)


def test_the_replicates_chosen_are_remembered(new_run: NewRunPage) -> None:
    new_run.repeats_spin.setValue(3)
    assert new_run.form_choices()["replicates"] == 3
    new_run.restore_form({"replicates": 1})
    assert new_run.repeats_spin.value() == 1
    new_run.restore_form({"repeats": 1})  # an older version's default, not a choice
    assert new_run.repeats_spin.value() == AUTO_REPLICATES
    new_run.restore_form({"repeats": 4})
    assert new_run.repeats_spin.value() == 4
