"""The GUI and the CLI reach runs through the same service calls.

The service's entry points are wrapped by spies that let every call through to the real code
and note which service function made it; one run is then launched from the New run page and
one with `wattbench run`, both on the fake runtime plugin (so the run itself is quick), and
both must have made the same service calls: planned with ``plan_runs``, checked with
``check_plan``, queued on a ``RunQueue``, recorded and stored through a ``Workbench``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from wattbench.backends.models import catalog
from wattbench.cli.main import main
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.service import plan
from wattbench.service.queue import ItemState, RunQueue
from wattbench.service.workbench import Workbench

from tests.gui.conftest import launch, wait_items

Calls = set[tuple[str, str]]


def _service_caller() -> str:
    """The innermost wattbench.service function on the calling thread's stack."""
    for frame in inspect.stack()[2:]:
        module = frame.frame.f_globals.get("__name__", "")
        if module.startswith("wattbench.service."):
            return f"{module.rsplit('.', 1)[1]}.{frame.function}"
    return "-"


def _spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, calls: Calls) -> None:
    real: Callable[..., Any] = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.add((name, _service_caller()))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    seen: Calls = set()
    _spy(monkeypatch, catalog, "canonical_ref", seen)  # the first thing plan_runs does
    _spy(monkeypatch, plan, "validate_many", seen)  # what check_plan asks the engine
    for name in ("submit", "run_next"):
        _spy(monkeypatch, RunQueue, name, seen)
    for name in ("begin_run", "finish_run"):
        _spy(monkeypatch, Workbench, name, seen)
    return seen


EXPECTED = {
    ("canonical_ref", "plan.plan_runs"),
    ("validate_many", "plan.check_plan"),
    ("submit", "-"),
    ("run_next", "-"),
    ("begin_run", "-"),  # the GUI's controller hops to its database thread for these
    ("finish_run", "-"),
}
QUICK = ["--preset", "quick", "--t-max", "1", "--no-idle", "--no-memory"]


def test_the_gui_and_the_cli_make_the_same_service_calls(
    fake_plugins: Path,
    calls: Calls,
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, check in new_run.runtime_checks.items():
        check.setChecked(name == "fake")  # the fake plugin is a runtime like any other
    new_run.t_max_spin.setValue(1.0)
    [key] = launch(qtbot, new_run)
    [item] = wait_items(qtbot, window.controller, [key])
    assert item.state is ItemState.DONE and item.stored, item.reason
    assert item.spec.runtime == "fake"
    gui_calls = {(name, caller if caller.startswith("plan.") else "-") for name, caller in calls}

    calls.clear()
    db = str(tmp_path / "cli.sqlite")
    argv = ["--db", db, "run", "--model", "builtin:mlp-tiny", "--runtime", "fake", *QUICK]
    assert main(argv) == 0, capsys.readouterr().err
    cli_calls = {(name, caller if caller.startswith("plan.") else "-") for name, caller in calls}

    assert gui_calls == cli_calls == EXPECTED
