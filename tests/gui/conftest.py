"""Fixtures for the GUI flow tests: an offscreen main window on a temporary run store.

QSettings point at a temporary folder, so remembered choices never leak between tests or into
the user's configuration. The window is closed (and the controller's threads stopped) at the
end of each test by pytest-qt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.controller import Controller
from wattbench.gui.launch import qt_binding_problem
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.service.queue import ItemState, QueueItem

RUN_TIMEOUT_MS = 150_000  # a run spawns a worker that imports torch: slow on a busy machine
LOAD_TIMEOUT_MS = 90_000


@pytest.fixture(autouse=True, scope="session")
def _usable_qt_binding() -> None:
    problem = qt_binding_problem()
    if problem is not None:  # the run would abort the whole test process later, without a word
        pytest.fail(problem, pytrace=False)


@pytest.fixture(autouse=True)
def _qsettings_in_tmp(tmp_path: Path) -> Iterator[None]:
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def window(qtbot: QtBot, db_path: Path) -> Iterator[MainWindow]:
    """The main window, shown, with its run store open."""
    controller = Controller(str(db_path))
    win = MainWindow(controller, AppSettings())
    win.confirm_close = False
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(controller.storeReady, timeout=LOAD_TIMEOUT_MS):
        controller.open_store(str(db_path))
    yield win
    controller.cancel_all()


@pytest.fixture
def new_run(qtbot: QtBot, window: MainWindow) -> NewRunPage:
    """The New run page with the catalog and the devices loaded, set up for a quick run."""
    page = window.show_page("new-run")
    assert isinstance(page, NewRunPage)
    qtbot.waitUntil(lambda: page.catalog_loaded and page.devices_loaded, timeout=LOAD_TIMEOUT_MS)
    assert page.select_model("builtin:mlp-tiny"), "the catalog has no builtin:mlp-tiny"
    for name, check in page.runtime_checks.items():
        check.setChecked(name == "torch")
    for name, check in page.precision_checks.items():
        check.setChecked(name == "fp32")
    for device in page.device_list.checked():
        page.device_list.set_checked(device, False)
    page.device_list.set_checked("cpu")
    page.batch_edit.setText("1")
    page.threads_edit.setText("1")
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("quick"))
    page.t_max_spin.setValue(1.5)
    page.idle_check.setChecked(False)
    page.repeats_spin.setValue(1)
    return page


def wait_items(
    qtbot: QtBot,
    controller: Controller,
    keys: list[int],
    done: Callable[[QueueItem], bool] = lambda it: it.state.finished,
    timeout_ms: int = RUN_TIMEOUT_MS,
) -> list[QueueItem]:
    """Wait until every queue item in `keys` satisfies `done`; return them."""
    qtbot.waitUntil(lambda: all(done(controller.items[k]) for k in keys), timeout=timeout_ms)
    return [controller.items[k] for k in keys]


def launch(qtbot: QtBot, page: NewRunPage) -> list[int]:
    """Press Ctrl+R (the window's Run action) and return the queued keys."""
    controller = page.controller
    assert page.run_button.isEnabled(), page.run_reason
    with qtbot.waitSignal(controller.launched, timeout=LOAD_TIMEOUT_MS) as blocker:
        window = page.window()
        assert isinstance(window, MainWindow)
        window.activateWindow()
        qtbot.keyClick(page, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    keys = blocker.args[1]
    assert isinstance(keys, list)
    return keys


def stored_runs(qtbot: QtBot, controller: Controller) -> list[Any]:
    """Every run in the store, listed through the controller (database thread)."""
    with qtbot.waitSignal(controller.runsListed, timeout=LOAD_TIMEOUT_MS) as blocker:
        controller.refresh_runs()
    return list(blocker.args[0])


__all__ = ["ItemState", "launch", "stored_runs", "wait_items"]
