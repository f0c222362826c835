"""The Fleet page against a real fleet: a Dask scheduler and two named agents, each a separate
``wattbench`` process on a fake sysfs tree of its own (tests/fleet_fixtures.py): "xeon" reads
two RAPL packages, "arm" has no power sensor at all. The page connects and lists them with
what they advertised; the New run page's plan (builtin:mlp-small on the fake runtime plugin)
runs on both checked hosts side by side; every run comes back done to this window's store,
labelled with its host. An address that cannot be one, and a partial set of TLS files, are
refused in one line on the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from wattbench.domain.fleet import FleetHost, HostInventory, HostPower
from wattbench.domain.result import RunResult, RunStatus
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.fleet import (
    COL_PROGRESS,
    COL_REASON,
    COL_RUN,
    COL_RUN_HOST,
    COL_STATE,
    FleetPage,
)
from wattbench.gui.pages.new_run import NewRunPage
from wattbench.gui.widgets.banner import Level
from wattbench.gui.widgets.fleet_hosts import (
    COL_CPU,
    COL_DEVICES,
    COL_HOST,
    COL_HOST_STATE,
    COL_POWER,
    NO_POWER,
    power_text,
    power_tip,
)
from wattbench.service.queue import ItemState

from tests.fleet_fixtures import FleetProcs, start_fleet
from tests.gui.conftest import LOAD_TIMEOUT_MS, RUN_TIMEOUT_MS, stored_runs

HOSTS = ("arm", "xeon")  # as the page lists them: by name


@pytest.fixture(scope="module")
def fleet_procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetProcs]:
    fleet = start_fleet(tmp_path_factory.mktemp("gui-fleet"), ("xeon", "arm"))
    try:
        yield fleet
    finally:
        fleet.stop()


def _fleet_page(window: MainWindow) -> FleetPage:
    page = window.show_page("fleet")
    assert isinstance(page, FleetPage)
    return page


def _connect(qtbot: QtBot, page: FleetPage, address: str) -> None:
    page.address_edit.setText(address)
    with qtbot.waitSignal(page.fleet.hostsListed, timeout=LOAD_TIMEOUT_MS):
        page.connect_button.click()


def _host_rows(page: FleetPage) -> dict[str, dict[int, str]]:
    table = page.hosts_table
    return {
        table.cell_text(row, COL_HOST): {
            col: table.cell_text(row, col) for col in range(table.columnCount())
        }
        for row in range(table.rowCount())
    }


def test_a_host_that_only_estimates_its_power_says_so() -> None:
    estimate = HostPower("cpu TDP model", "cpu", ok=True, estimate=True, why="no sensor")
    unread = HostPower("rapl", "cpu", ok=False, why="no /sys/class/powercap")
    inv = HostInventory("arm", cpu="Neoverse", power=(estimate, unread))
    assert power_text(inv) == NO_POWER
    assert FleetHost("arm", "tcp://10.0.0.5:1", inv).summary.endswith(NO_POWER)
    assert power_tip(inv).splitlines() == [
        "cpu TDP model (cpu): estimate — no sensor",
        "rapl (cpu): not read — no /sys/class/powercap",
    ]


def test_an_address_that_cannot_be_one_is_refused_in_one_line(
    qtbot: QtBot, window: MainWindow
) -> None:
    page = _fleet_page(window)
    fleet = page.fleet
    page.address_edit.setText("tcp://nowhere")  # no port
    with qtbot.waitSignal(fleet.connectFailed, timeout=LOAD_TIMEOUT_MS):
        page.connect_button.click()
    assert page.banner.isVisible() and page.banner.level is Level.ERROR
    assert "tcp://HOST:PORT" in page.banner.text and "\n" not in page.banner.text
    assert page.status_label.text() == "Not connected."
    assert not page.run_button.isEnabled() and page.connect_button.isEnabled()

    page.address_edit.setText("tls://127.0.0.1:8786")
    page.tls_button.click()  # the TLS files, folded away until asked for
    assert page.tls_edits["ca"].isVisible()
    page.tls_edits["ca"].setText(str(Path(__file__)))
    with qtbot.waitSignal(fleet.connectFailed, timeout=LOAD_TIMEOUT_MS):
        page.connect_button.click()
    assert "add --tls-cert, --tls-key" in page.banner.text
    assert fleet.address == "" and page.hosts_table.rowCount() == 0


def test_the_new_run_plan_runs_on_the_checked_hosts_into_this_store(
    fake_plugins: Path,
    fleet_procs: FleetProcs,
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
) -> None:
    controller = window.controller
    for name, check in new_run.runtime_checks.items():
        check.setChecked(name == "fake")
    assert new_run.select_model("builtin:mlp-small")
    new_run.t_max_spin.setValue(2.0)
    plan = new_run.update_plan()
    assert plan.runs is not None and len(plan.specs) == 1, plan.errors

    page = _fleet_page(window)
    assert not page.run_button.isEnabled()  # not connected yet

    _connect(qtbot, page, fleet_procs.address)
    assert page.status_label.text() == f"Connected to {fleet_procs.address}: 2 host(s)."
    rows = _host_rows(page)
    assert list(rows) == list(HOSTS)
    for name in HOSTS:
        assert rows[name][COL_HOST_STATE] == "idle"
        assert rows[name][COL_CPU]  # the CPU as the agent's host saw it
        assert rows[name][COL_DEVICES].startswith("cpu (") and "fake" in rows[name][COL_DEVICES]
        assert "no runtime" not in rows[name][COL_DEVICES]  # those only in its tooltip
    # every test agent has the fake plugins' wall meter; only xeon has RAPL packages
    assert rows["arm"][COL_POWER] == "fakeplug plug"
    assert rows["xeon"][COL_POWER].startswith("fakeplug plug, rapl package-0, rapl core-0")
    assert "rapl package-1" in rows["xeon"][COL_POWER]
    assert page.checked_hosts() == []

    page.run_button.click()  # no host checked: said so, nothing queued
    assert page.banner.text == "Check at least one host to run on."
    assert not page.fleet.items

    new_run.model_combo.setCurrentIndex(-1)  # a plan with a problem: said so, nothing queued
    page.run_button.click()
    assert page.banner.text == (
        "The New run plan cannot run (see the New run page): Choose a model."
    )
    assert not page.fleet.items
    assert new_run.select_model("builtin:mlp-small")

    table = page.hosts_table
    for row in range(table.rowCount()):  # as a user ticks each host's box
        cell = table.item(row, COL_HOST)
        assert cell is not None
        cell.setCheckState(Qt.CheckState.Checked)
    assert page.checked_hosts() == list(HOSTS)
    page.run_button.click()
    assert page.banner.isHidden(), page.banner.text
    fleet = page.fleet
    assert len(fleet.items) == 2 and fleet.running
    assert page.cancel_all_button.isEnabled() and not page.run_button.isEnabled()

    with qtbot.waitSignal(fleet.fleetIdle, timeout=RUN_TIMEOUT_MS):
        pass
    items = sorted(fleet.items.values(), key=lambda it: str(it.spec.host))
    assert [it.spec.host for it in items] == list(HOSTS)
    for item in items:
        assert item.state is ItemState.DONE, item.reason
        assert item.stored
        assert page.run_text(item.key, COL_RUN_HOST) == item.spec.host
        assert page.run_text(item.key, COL_RUN).startswith("builtin:mlp-small · fake · cpu")
        assert page.run_text(item.key, COL_PROGRESS) == "done"
        assert page.run_text(item.key, COL_STATE) == "done"
        assert page.run_text(item.key, COL_REASON) == "stored"
    assert page.runs_label.text() == "The fleet's runs are through: 2 of 2 done."
    assert not page.cancel_all_button.isEnabled() and page.run_button.isEnabled()

    listed = stored_runs(qtbot, controller)
    assert {r.id for r in listed} == {it.run_id for it in items}
    loaded: dict[str, RunResult] = {}
    controller.runLoaded.connect(lambda r: loaded.__setitem__(r.id, r))
    for item in items:
        controller.load_run(item.run_id)
    qtbot.waitUntil(lambda: len(loaded) == 2, timeout=LOAD_TIMEOUT_MS)
    assert {r.spec.host for r in loaded.values()} == set(HOSTS)
    assert all(r.status is RunStatus.DONE and r.spec.runtime == "fake" for r in loaded.values())
    assert not controller.items  # nothing ran on this machine's own queue


def test_cancel_all_stops_every_host_and_keeps_the_runs_as_cancelled(
    fake_plugins: Path,
    fleet_procs: FleetProcs,
    qtbot: QtBot,
    window: MainWindow,
    new_run: NewRunPage,
) -> None:
    for name, check in new_run.runtime_checks.items():
        check.setChecked(name == "fake")
    new_run.t_max_spin.setValue(120.0)  # long enough to be cancelled while it measures
    new_run.preset_combo.setCurrentIndex(new_run.preset_combo.findData("default"))
    page = _fleet_page(window)
    _connect(qtbot, page, fleet_procs.address)
    for name in HOSTS:
        page.hosts_table.set_checked(name)
    page.run_button.click()
    fleet = page.fleet
    assert len(fleet.items) == 2, page.banner.text
    qtbot.waitUntil(
        lambda: all(it.state is ItemState.RUNNING for it in fleet.items.values()),
        timeout=RUN_TIMEOUT_MS,
    )
    with qtbot.waitSignal(fleet.fleetIdle, timeout=RUN_TIMEOUT_MS):
        page.cancel_all_button.click()
    for item in fleet.items.values():
        assert item.state is ItemState.CANCELLED, item.reason
        assert item.stored  # recorded as cancelled, in this window's store
        assert page.run_text(item.key, COL_STATE) == "cancelled"
    assert page.runs_label.text() == "The fleet's runs are through: 0 of 2 done."
