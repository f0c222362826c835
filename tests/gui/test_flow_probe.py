"""Open file… of a model file whose load never returns: the window stays responsive, the error
comes at the probe's time limit, and a new Open file… or closing the window kills the probe.

The hanging file is a real TorchScript archive whose ``__setstate__`` loops forever
(tests/hostile_models.py); read in the GUI's own process it would hold the GIL and freeze it.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot
from wattbench.backends.models import catalog, probe
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.widgets.banner import Level

from tests import hostile_models

LIMIT_S = 8  # the probe's limit here: longer than its torch import
WAIT_MS = 120_000


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_a_hanging_model_file_leaves_the_window_responsive(
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hang = hostile_models.hanging_torchscript(tmp_path)
    monkeypatch.setenv(probe.TIME_ENV, str(LIMIT_S))
    ticks: list[int] = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(len(hostile_models.probe_processes())))
    timer.start(100)  # counts GUI-thread turns, noting whether the probe was alive
    with qtbot.waitSignal(window.controller.modelRejected, timeout=WAIT_MS) as blocker:
        new_run.open_model_file(str(hang))
    timer.stop()
    assert blocker.args[0] == str(hang)
    assert f"did not finish within {LIMIT_S} s" in blocker.args[1]
    assert new_run.banner.level is Level.ERROR and str(hang) in new_run.banner.text
    # the GUI thread kept turning while the probe was stuck in the file's loop
    assert sum(1 for alive in ticks if alive) >= 5, ticks
    assert hostile_models.probe_processes() == []
    assert new_run.run_button.isEnabled(), new_run.run_reason  # the previous model still runs


def test_a_new_open_file_or_closing_the_window_kills_the_probe(
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hang = hostile_models.hanging_torchscript(tmp_path)
    root = catalog.zoo_dir()
    assert root is not None
    good = tmp_path / "squeezenet.onnx"
    good.write_bytes((root / "light_squeezenet.onnx").read_bytes())
    monkeypatch.setenv(probe.TIME_ENV, "600")
    rejected: list[str] = []
    window.controller.modelRejected.connect(lambda path, _message: rejected.append(path))

    new_run.open_model_file(str(hang))
    qtbot.waitUntil(lambda: len(hostile_models.probe_processes()) == 1, timeout=WAIT_MS)
    stuck = hostile_models.probe_processes()
    with qtbot.waitSignal(window.controller.modelResolved, timeout=WAIT_MS) as blocker:
        new_run.open_model_file(str(good))
    assert blocker.args[0].path == str(good)
    qtbot.waitUntil(lambda: all(_gone(p) for p in stuck), timeout=WAIT_MS)
    assert new_run.current_model().path == str(good)
    qtbot.wait(200)
    assert rejected == []  # the file given up is not reported

    new_run.open_model_file(str(hang))
    qtbot.waitUntil(lambda: len(hostile_models.probe_processes()) == 1, timeout=WAIT_MS)
    stuck = hostile_models.probe_processes()
    window.close()
    qtbot.waitUntil(lambda: all(_gone(p) for p in stuck), timeout=WAIT_MS)
