"""Cost profiles, sensors and settings pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QGuiApplication
from wattbench.energy.doctor import Diagnosis, SensorReport
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.pages.costs import CostsPage
from wattbench.gui.pages.sensors import SensorsPage
from wattbench.gui.pages.settings import SettingsPage, check_db_text
from wattbench.gui.widgets.banner import Level

from tests.gui.pages_helpers import TIMEOUT_MS, fill_store, make_controller_fixture  # noqa: F401
from tests.store_fixtures import make_results


def _costs_page(qtbot: Any, controller: Any) -> CostsPage:
    page = CostsPage(controller)
    qtbot.addWidget(page)
    with qtbot.waitSignal(controller.costProfilesReady, timeout=TIMEOUT_MS):
        page.show()
    return page


def test_cost_profile_saved_and_reloaded(qtbot: Any, tmp_path: Path, make_controller: Any) -> None:
    url = fill_store(tmp_path / "cost.sqlite", make_results(2))
    page = _costs_page(qtbot, make_controller(url))
    assert page.profiles == []
    page.device_combo.setCurrentText("cuda:0")
    page.edits["purchase_price_usd"].setText("1500")
    page.edits["amortization_years"].setText("3")
    page.edits["electricity_usd_per_kwh"].setText("0.25")
    page.edits["pue"].setText("1.2")
    page.edits["carbon_g_per_kwh"].setText("300")
    with qtbot.waitSignal(page.controller.costProfilesReady, timeout=TIMEOUT_MS):
        page.save_button.click()
    assert page.table.rowCount() == 1
    assert page.banner.level is Level.INFO

    # a new controller on the same database finds it, and shows it for its device at once
    page.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(page.controller.costProfilesReady, timeout=TIMEOUT_MS):
        page.save_button.click()  # a second profile, for the device the page opens on
    again = _costs_page(qtbot, make_controller(url))
    assert again.device_combo.currentText() == "cpu"
    assert again.edits["purchase_price_usd"].text() == "1500"  # not empty fields to overwrite
    with qtbot.waitSignal(again.controller.costProfilesReady, timeout=TIMEOUT_MS):
        again.delete_button.click()
    [profile] = again.profiles
    assert (
        profile.device,
        profile.purchase_price_usd,
        profile.amortization_years,
        profile.electricity_usd_per_kwh,
        profile.pue,
        profile.carbon_g_per_kwh,
        profile.cloud_usd_per_hour,
    ) == ("cuda:0", 1500.0, 3.0, 0.25, 1.2, 300.0, None)
    again.table.selectRow(0)
    assert again.edits["purchase_price_usd"].text() == "1500"
    assert again.edits["cloud_usd_per_hour"].text() == ""  # not set stays empty, not 0

    # an implausible profile is explained in place and not saved
    again.edits["amortization_years"].setText("")
    again.save_button.click()
    assert again.banner.level is Level.ERROR and "amortization" in again.banner.text
    again.edits["amortization_years"].setText("3")
    again.edits["pue"].setText("0.5")
    again.save_button.click()
    assert again.banner.level is Level.ERROR and "pue" in again.banner.text
    qtbot.wait(200)
    assert again.profiles[0].pue == 1.2

    with qtbot.waitSignal(again.controller.costProfilesReady, timeout=TIMEOUT_MS):
        again.delete_button.click()
    assert again.profiles == [] and again.table.rowCount() == 0


def test_sensors_page_shows_reasons_and_copies_fixes(
    qtbot: Any, tmp_path: Path, make_controller: Any
) -> None:
    controller = make_controller(fill_store(tmp_path / "s.sqlite", []))
    page = SensorsPage(controller)
    qtbot.addWidget(page)
    fix = 'SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chmod 0444 /sys%p/energy_uj"'
    report = SensorReport(
        sys_root="/sys",
        discovery_s=0.01,
        diagnoses=[
            Diagnosis(
                "cpu",
                "rapl",
                "rapl:package-0",
                "package-0",
                "unreadable",
                why="energy_uj is readable by root only (permission denied)",
                fix=fix,
            ),
            Diagnosis(
                "cuda:0", "nvml", "nvml", "nvml", "absent", why="the NVIDIA driver is not installed"
            ),
            Diagnosis("node", "hwmon", "hwmon:power1", "power1", "ok", note="10 ms updates"),
        ],
    )
    controller.sensorsReady.emit(report)  # the diagnosis as the controller delivers it
    assert page.table.rowCount() == 3
    cells = [[page.table.item(r, c).text() for c in range(4)] for r in range(3)]
    assert cells[0] == [
        "cpu",
        "rapl package-0",
        "unreadable",
        "energy_uj is readable by root only (permission denied)",
    ]
    assert "driver is not installed" in cells[1][3]
    assert "1 of 3 power sources can be read" in page.summary.text()
    assert page.fix_text.toPlainText() == fix  # the first fixable row is selected
    page.copy_button.click()
    assert QGuiApplication.clipboard().text() == fix
    page.table.selectRow(2)
    assert page.fix_text.toPlainText() == "" and not page.copy_button.isEnabled()

    controller.failed.emit("diagnose sensors", "Sensor discovery failed: test")
    assert page.banner.level is Level.ERROR and "discovery failed" in page.banner.text


def test_settings_change_the_database(qtbot: Any, tmp_path: Path, make_controller: Any) -> None:
    first = tmp_path / "first.sqlite"
    controller = make_controller(fill_store(first, make_results(1)))
    page = SettingsPage(controller)
    qtbot.addWidget(page)
    page.show()
    assert check_db_text("") is not None
    assert check_db_text(str(tmp_path)) is not None  # a folder
    assert check_db_text("://nothing") is not None
    assert check_db_text("postgresql+psycopg://u@h/db") is None
    page.db_edit.setText(str(tmp_path))
    assert not page.apply_button.isEnabled() and "folder" in page.check_label.text()

    nowhere = tmp_path / "sub" / "second.sqlite"  # a folder that does not exist is not made
    page.db_edit.setText(str(nowhere))
    with qtbot.waitSignal(controller.storeFailed, timeout=TIMEOUT_MS) as failed:
        page.apply_button.click()
    assert "does not exist" in failed.args[0] and not nowhere.parent.exists()
    second = tmp_path / "second.sqlite"
    page.db_edit.setText(str(second))
    assert page.apply_button.isEnabled()
    with qtbot.waitSignal(controller.storeReady, timeout=TIMEOUT_MS):
        page.apply_button.click()
    assert second.exists()
    assert "second.sqlite" in controller.store_description
    assert AppSettings().db_url() == str(second)
    assert page.banner.level is Level.INFO and "second.sqlite" in page.banner.text
    with qtbot.waitSignal(controller.runsListed, timeout=TIMEOUT_MS) as blocker:
        controller.refresh_runs()
    assert blocker.args[0] == []  # the new, empty database is in use

    page.db_edit.setText("nosuchdriver://user@host/db")
    with qtbot.waitSignal(controller.storeFailed, timeout=TIMEOUT_MS):
        page.apply_button.click()
    assert page.banner.level is Level.ERROR and "not saved" in page.banner.text
    assert AppSettings().db_url() == str(second)  # the failed choice was not remembered


def test_the_qt_binding_does_not_leak_references(qtbot: Any) -> None:
    """PySide6 6.12.0 on Python < 3.12 loses a reference to True/None per emit or override call
    and the app aborts after a while (pyproject excludes it); the installed binding must not."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QWidget

    class Emitter(QObject):
        ping = Signal(object)

    class Widget(QWidget):
        def showEvent(self, event: Any) -> None:
            super().showEvent(event)

    emitter, widget = Emitter(), Widget()
    qtbot.addWidget(widget)
    singletons = (("None", None), ("True", True), ("False", False))
    before = {name: sys.getrefcount(obj) for name, obj in singletons}
    for _ in range(2000):
        emitter.ping.emit(None)
        widget.hide()
        widget.show()
    after = {name: sys.getrefcount(obj) for name, obj in singletons}
    if sys.version_info >= (3, 12):  # immortal objects: counts are meaningless there
        return
    assert all(after[k] >= before[k] - 50 for k in before), (before, after)


def test_queue_says_when_a_finished_run_did_not_converge(qtbot: Any) -> None:
    from wattbench.domain.spec import RunSpec
    from wattbench.gui.controller import Controller
    from wattbench.gui.pages.queue import COL_REASON, QueuePage
    from wattbench.service.queue import ItemState, QueueItem

    controller = Controller(None)
    try:
        spec = RunSpec(model="builtin:mlp-tiny", device="cpu", runtime="torch")
        common: dict[str, Any] = {"spec": spec, "state": ItemState.DONE, "stored": True}
        controller.items = {
            1: QueueItem(key=1, run_id="r1", rho=0.067, epsilon=0.05, converged=False, **common),
            2: QueueItem(key=2, run_id="r2", rho=0.004, epsilon=0.005, converged=True, **common),
            3: QueueItem(key=3, run_id="r3", rho=0.004, epsilon=0.005, converged=False, **common),
        }
        page = QueuePage(controller)
        qtbot.addWidget(page)
        assert (
            page.cell_text(1, COL_REASON) == "done (stored) · did not converge (ρ 6.7 % > ε 5.0 %)"
        )
        assert page.cell_text(2, COL_REASON) == "done (stored) · ρ 0.40 %"
        # stopped short for another reason (e.g. too few tail samples): no false "ρ > ε"
        assert page.cell_text(3, COL_REASON) == "done (stored) · did not converge (ρ 0.40 %)"
    finally:
        controller.shutdown()
