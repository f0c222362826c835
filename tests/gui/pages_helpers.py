"""Shared pieces of the page tests: a controller on a temporary store filled with runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from wattbench.db.store import open_store
from wattbench.domain.result import RunResult
from wattbench.gui.controller import Controller

TIMEOUT_MS = 30_000


def fill_store(path: Path, runs: Sequence[RunResult], profiles: Sequence[Any] = ()) -> str:
    """Write runs (and cost profiles) into a fresh SQLite store; return its URL."""
    url = f"sqlite:///{path}"
    store = open_store(url)
    try:
        store.save_runs(runs)
        for profile in profiles:
            store.save_cost_profile(profile)
    finally:
        store.close()
    return url


@pytest.fixture(name="make_controller")
def make_controller_fixture(qtbot: Any) -> Iterator[Any]:
    """make_controller(url) -> a Controller whose store is open; all are shut down after."""
    made: list[Controller] = []

    def make(url: str) -> Controller:
        controller = Controller(url)
        made.append(controller)
        with qtbot.waitSignal(controller.storeReady, timeout=TIMEOUT_MS):
            controller.open_store(url)
        return controller

    yield make
    for controller in made:
        controller.shutdown()
