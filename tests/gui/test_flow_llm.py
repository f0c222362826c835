"""Language models on the New run and Compare pages.

A generative model switches the form to the generation scenario (prompt and new tokens shown,
the batch box become the number of concurrent sequences); two generation runs on the fake
runtime plugin (a decoder spinning known times, measured by the fake wall meter) are compared
on their token figures; a shape-only architecture too large for the machine's memory is
refused in the form, with the numbers, before anything is launched; a checkpoint folder is
opened off the GUI thread and joins the model list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from wattbench.backends.models import llm_memory, llm_shapes
from wattbench.domain.cost import CostProfile
from wattbench.domain.spec import Scenario
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.compare import ComparePage
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.widgets.banner import Level
from wattbench.gui.widgets.bar_charts import BAR_METRICS, GENERATION_BAR_METRICS
from wattbench.gui.widgets.run_form import BATCH_LABEL, CONCURRENCY_LABEL
from wattbench.service.queue import ItemState

from tests.gui.conftest import LOAD_TIMEOUT_MS, launch, wait_items


def _scenario(page: NewRunPage) -> Scenario:
    return Scenario(page.scenario_combo.currentData())


def test_generation_runs_from_the_form_compare_on_their_token_figures(
    fake_plugins: Path,
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATTBENCH_FAKE_ITEM_US", "2000")  # 2 ms a decode step per sequence
    controller = window.controller
    for name, check in new_run.runtime_checks.items():
        check.setChecked(name == "fake")
    assert _scenario(new_run) is Scenario.SINGLE_STREAM
    assert not new_run.gen_widget.isVisibleTo(new_run)
    assert new_run.batch_label.text() == BATCH_LABEL

    assert new_run.select_model("builtin:gpt-small")  # a decoder: measured generating
    assert _scenario(new_run) is Scenario.GENERATION
    assert new_run.gen_widget.isVisibleTo(new_run)
    assert new_run.batch_label.text() == CONCURRENCY_LABEL
    new_run.prompt_spin.setValue(24)
    new_run.new_tokens_spin.setValue(6)
    new_run.batch_edit.setText("1, 2")
    new_run.sample_spin.setValue(200)
    new_run.t_max_spin.setValue(1.0)
    plan = new_run.update_plan()
    assert plan.runs is not None, plan.errors
    assert sorted(s.batch_size for s in plan.specs) == [1, 2]
    assert {(s.scenario, s.prompt_tokens, s.new_tokens) for s in plan.specs} == {
        (Scenario.GENERATION, 24, 6)
    }

    with qtbot.waitSignal(controller.costProfilesReady, timeout=LOAD_TIMEOUT_MS):
        controller.save_cost_profile(CostProfile("cpu", cloud_usd_per_hour=3.6))
    keys = launch(qtbot, new_run)
    items = wait_items(qtbot, controller, keys)
    assert all(it.state is ItemState.DONE and it.stored for it in items), [
        it.reason for it in items
    ]
    ids = [it.result_id for it in items]
    assert all(ids)

    compare = window.show_page("compare")
    assert isinstance(compare, ComparePage)
    controller.request_compare([str(i) for i in ids])
    qtbot.waitUntil(
        lambda: compare.view is not None and bool(compare.view.cost_profiles),
        timeout=LOAD_TIMEOUT_MS,
    )
    assert compare.generative
    assert compare.charts.current_chart is compare.generation
    for metric, _title, _unit, _scale in GENERATION_BAR_METRICS:
        bars = compare.generation.charts[metric].bars
        assert len(bars) == 2, metric
        assert all(b.value is not None and b.value > 0 for b in bars), (metric, bars)
    tpot = {b.label: b.value for b in compare.generation.charts["tpot"].bars}
    assert all(v is not None and v >= 2.0 for v in tpot.values())  # ms: what the fake spins
    verdicts = compare.verdicts.toPlainText()
    # the token figures lead the verdicts, the per-call ones follow
    assert verdicts.index("the time to first token of") < verdicts.index("the throughput of")
    assert "the tokens per second of" in verdicts and "output tokens per joule" in verdicts

    # the same runs without their generation figures are an ordinary comparison
    view = compare.view
    assert view is not None
    plain = [r.with_(generation=None) for r in view.runs]
    from wattbench.service.workbench import compare_loaded

    compare.show_comparison(compare_loaded(plain, baseline_id=plain[0].id))
    assert not compare.generative and compare.charts.current_chart is compare.bars
    assert set(compare.bars.charts) == {m for m, *_ in BAR_METRICS}

    assert new_run.select_model("builtin:mlp-tiny")  # not a decoder: back to single stream
    assert _scenario(new_run) is Scenario.SINGLE_STREAM
    assert not new_run.gen_widget.isVisibleTo(new_run)
    assert new_run.batch_label.text() == BATCH_LABEL


def test_a_language_model_too_large_for_memory_is_refused_in_the_form(
    new_run: NewRunPage,
) -> None:
    assert new_run.select_model("llm:llama-3-8b")
    assert "random weights" in new_run.model_combo.currentText()
    assert _scenario(new_run) is Scenario.GENERATION
    new_run.prompt_spin.setValue(4096)
    new_run.new_tokens_spin.setValue(4096)
    new_run.batch_edit.setText("256")
    plan = new_run.update_plan()
    assert plan.runs is None and not new_run.run_button.isEnabled()
    entry = llm_shapes.entry("llm:llama-3-8b")
    assert entry.decoder is not None and entry.parameters
    needed = llm_memory.footprint(entry.decoder, entry.parameters, "fp32", 256, 8192)
    text = new_run.banner.text
    assert new_run.banner.level is Level.ERROR
    assert "llm:llama-3-8b does not fit" in text and llm_memory.describe(needed) in text, text
    assert "GB free on cpu" in text
    assert new_run.start_runs() is None  # nothing is launched

    new_run.batch_edit.setText("1")
    new_run.prompt_spin.setValue(8192)  # more than the architecture's 8192 positions
    assert "holds at most 8192 positions" in "\n".join(new_run.update_plan().errors)


def test_checkpoints_of_the_hf_cache_are_listed_and_a_folder_is_opened_off_the_gui_thread(
    qtbot: QtBot, new_run: NewRunPage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.llm_fixtures import build_checkpoint

    folder = build_checkpoint("llama", tmp_path / "tiny-llama")
    controller = new_run.controller
    # a local Hugging Face cache holding one snapshot of it, as huggingface-cli leaves it
    repo = tmp_path / "hub" / "models--acme--tiny-llama"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision, "ascii")
    (repo / "snapshots").mkdir()
    (repo / "snapshots" / revision).symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with qtbot.waitSignal(controller.catalogReady, timeout=LOAD_TIMEOUT_MS):
        new_run.refresh()
    assert new_run.select_model("hf:acme/tiny-llama")
    assert new_run.model_combo.currentText() == "acme/tiny-llama  (local HF cache)"
    assert _scenario(new_run) is Scenario.GENERATION
    assert new_run.select_model("llm:tinyllama-1.1b")
    assert new_run.model_combo.currentText().startswith("tinyllama-1.1b (random weights)")

    with qtbot.waitSignal(controller.modelResolved, timeout=LOAD_TIMEOUT_MS):
        new_run.open_checkpoint_folder(str(folder))
        assert any(e.startswith("Checking") for e in new_run.plan().errors)
    assert new_run.model_combo.currentData() == str(folder)
    assert new_run.model_combo.currentText() == "tiny-llama  (checkpoint folder)"
    assert _scenario(new_run) is Scenario.GENERATION
    plan = new_run.update_plan()
    assert plan.runs is not None and len(plan.specs) == 1, plan.errors
    assert plan.specs[0].runtime == "torch"

    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "config.json").write_text((folder / "config.json").read_text("utf-8"), "utf-8")
    with qtbot.waitSignal(controller.modelRejected, timeout=LOAD_TIMEOUT_MS):
        new_run.open_checkpoint_folder(str(empty))
    assert new_run.banner.level is Level.ERROR
    assert "holds no safetensors weights" in new_run.banner.text
    assert new_run.model_combo.currentData() == str(folder)  # the choice stands
