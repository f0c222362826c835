"""What the New run page refuses before anything is queued, and why it says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QSplitter
from pytestqt.qtbot import QtBot
from wattbench.domain.spec import Scenario
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.widgets.banner import Level
from wattbench.service.request import RunPlan


def test_an_invalid_model_file_is_refused_with_a_message(
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an ONNX protobuf\x00\x01\x02")
    models_before = new_run.model_combo.count()
    # the file the user picks in the "Open file…" dialog
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(broken), ""))
    with qtbot.waitSignal(window.controller.modelRejected, timeout=60_000) as blocker:
        new_run.open_button.click()
        assert not new_run.run_button.isEnabled()  # while the file is being checked
    assert blocker.args[0] == str(broken)
    assert new_run.banner.level is Level.ERROR
    assert "nothing was queued" in new_run.banner.text
    assert str(broken) in new_run.banner.text
    assert len(new_run.banner.text.splitlines()) >= 2  # the reason follows the file name
    assert new_run.model_combo.count() == models_before
    assert window.controller.items == {}
    # the previous choice still runs
    assert new_run.run_button.isEnabled(), new_run.run_reason


def test_a_missing_file_is_refused(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "model.onnx"
    with qtbot.waitSignal(window.controller.modelRejected, timeout=60_000) as blocker:
        new_run.open_model_file(str(missing))
    assert "model.onnx" in blocker.args[1] or "not" in blocker.args[1].lower()
    assert window.controller.items == {}


def test_invalid_combinations_are_explained_in_place(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage
) -> None:
    assert new_run.run_button.isEnabled(), new_run.run_reason

    new_run.scenario_combo.setCurrentIndex(
        new_run.scenario_combo.findData(Scenario.GENERATION.value)
    )
    assert not new_run.run_button.isEnabled()
    assert "not a generative model" in new_run.run_reason
    assert new_run.banner.level is Level.ERROR and new_run.banner.isVisible()
    new_run.scenario_combo.setCurrentIndex(
        new_run.scenario_combo.findData(Scenario.SINGLE_STREAM.value)
    )
    assert new_run.run_button.isEnabled(), new_run.run_reason

    new_run.batch_edit.setText("1, zero")
    assert not new_run.run_button.isEnabled()
    assert "'zero' is not a whole number" in new_run.run_reason
    new_run.batch_edit.setText("1")

    new_run.device_list.set_checked("cpu", False)
    assert not new_run.run_button.isEnabled()
    assert new_run.run_button.toolTip() == "Choose at least one device."
    new_run.device_list.set_checked("cpu")

    for check in new_run.precision_checks.values():
        check.setChecked(False)
    new_run.precision_checks["int8"].setChecked(True)
    cpu = new_run.device_list.device("cpu")
    assert cpu is not None
    if "int8" not in cpu.precisions("torch"):
        assert not new_run.run_button.isEnabled()
        assert "cannot run int8" in new_run.banner.text
        # a valid combination beside it: the invalid one is left out, with a warning
        new_run.precision_checks["fp32"].setChecked(True)
        assert new_run.run_button.isEnabled(), new_run.run_reason
        assert new_run.banner.level is Level.WARNING
        assert "left out" in new_run.banner.text
        assert all(s.precision == "fp32" for s in new_run.plan().specs)
    window.controller.launch(RunPlan(()))  # an empty launch is refused, not queued
    assert window.controller.items == {}


def test_choices_page_and_geometry_are_remembered(qtbot: QtBot, db_path: Path) -> None:
    from wattbench.gui.app_settings import AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import MainWindow

    def open_window() -> MainWindow:
        win = MainWindow(Controller(str(db_path)), AppSettings())
        win.confirm_close = False
        qtbot.addWidget(win)
        win.show()
        return win

    first = open_window()
    page = first.show_page("new-run")
    assert isinstance(page, NewRunPage)
    qtbot.waitUntil(lambda: page.devices_loaded, timeout=60_000)  # the runtime plugins listed
    page.batch_edit.setText("2, 16")
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("rigorous"))
    page.runtime_checks["onnxruntime"].setChecked(True)
    first.resize(720, 540)  # within the offscreen screen (800 × 600)
    size = (first.size().width(), first.size().height())
    runs = first.show_page("runs")
    split = runs.findChildren(QSplitter)[0]  # the runs table above, the details below
    assert split.orientation() is Qt.Orientation.Vertical
    total = sum(split.sizes())
    split.setSizes([total - 120, 120])
    split_sizes = split.sizes()
    first.show_page("queue")
    first.close()

    second = open_window()
    assert second.current_page_name() == "queue"
    assert (second.size().width(), second.size().height()) == size
    again = second.page("new-run")
    assert isinstance(again, NewRunPage)
    qtbot.waitUntil(lambda: again.devices_loaded, timeout=60_000)
    assert again.batch_edit.text() == "2, 16"
    assert again.preset_combo.currentData() == "rigorous"
    assert again.runtime_checks["onnxruntime"].isChecked()
    second_split = second.show_page("runs").findChildren(QSplitter)[0]
    assert second_split.sizes() == split_sizes
    second.close()


def test_the_window_follows_a_dark_palette(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication
    from wattbench.gui import theme
    from wattbench.gui.pages.live import LivePage

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    old = app.palette()
    live = window.show_page("live")
    assert isinstance(live, LivePage)
    try:
        dark = QPalette()
        for role, colour in (
            (QPalette.ColorRole.Window, "#202124"),
            (QPalette.ColorRole.Base, "#17181a"),
            (QPalette.ColorRole.WindowText, "#e8eaed"),
            (QPalette.ColorRole.Text, "#e8eaed"),
        ):
            dark.setColor(role, QColor(colour))
        app.setPalette(dark)
        qtbot.waitUntil(lambda: theme.is_dark(), timeout=5_000)
        qtbot.waitUntil(
            lambda: live.latency_plot.backgroundBrush().color().name() == "#17181a",
            timeout=5_000,
        )
        axis_pen = live.latency_plot.getPlotItem().getAxis("left").pen()
        assert axis_pen.color().name() == "#e8eaed"
    finally:
        app.setPalette(old)


def test_server_and_multi_instance_runs_are_planned_from_the_form(
    qtbot: QtBot, window: MainWindow, new_run: NewRunPage
) -> None:
    assert not new_run.server_widget.isVisibleTo(new_run)
    new_run.scenario_combo.setCurrentIndex(new_run.scenario_combo.findData(Scenario.SERVER.value))
    assert new_run.server_widget.isVisibleTo(new_run)
    new_run.rate_edit.setText("50")
    new_run.streams_edit.setText("1, 2")
    new_run.slo_edit.setText("p99=100ms")
    assert new_run.run_button.isEnabled(), new_run.run_reason
    specs = new_run.plan().specs
    assert {s.streams for s in specs} == {1, 2}  # a concurrency sweep
    assert all(s.scenario is Scenario.SERVER and s.slo_ms == 100.0 for s in specs)
    assert all(s.slo_percentile == 0.99 and s.target_rate == 50.0 for s in specs)
    new_run.slo_edit.setText("p99 under 100")
    assert not new_run.run_button.isEnabled()
    assert "p99=100ms" in new_run.run_reason
    new_run.scenario_combo.setCurrentIndex(
        new_run.scenario_combo.findData(Scenario.SINGLE_STREAM.value)
    )
    assert not new_run.server_widget.isVisibleTo(new_run)
    new_run.threads_edit.setText("1")
    new_run.instances_edit.setText("2")
    assert new_run.run_button.isEnabled(), new_run.run_reason
    assert {s.instances for s in new_run.plan().specs} == {2}
    assert new_run.form_choices()["instances"] == "2"
