"""Screenshots of every view of the real window, with real runs made by the real engine.

    xvfb-run -a -s "-screen 0 1600x1000x24" python tests/gui/screenshots.py OUTDIR [--dark]

Opens the MainWindow (on xcb under Xvfb) on a temporary database, runs a few quick CPU runs of
builtin:mlp-tiny / builtin:mlp-small at several batch sizes and thread counts through the
controller (each in its own worker process), captures the queue and live views while one
measures, then the runs browser, the compare view (each chart tab), cost profiles, sensors and
settings, each as OUTDIR/<nn>-<view>.png. Nothing here is mocked; it takes a few minutes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("screenshots")

RUN_T_MAX_S = 3.0
WAIT_RUNS_S = 600.0


def _specs() -> list[Any]:
    from wattbench.domain.spec import RunSpec, Scenario

    base = RunSpec(
        model="builtin:mlp-tiny",
        device="cpu",
        runtime="torch",
        preset="quick",
        t_max_s=RUN_T_MAX_S,
        idle_baseline=False,
        threads=1,
        scenario=Scenario.OFFLINE,
    )
    return [
        base.with_(batch_size=1, epsilon=0.002),  # measures to t_max: the live view shot
        base.with_(batch_size=8),
        base.with_(batch_size=32),
        base.with_(batch_size=8, threads=2),
        base.with_(model="builtin:mlp-small", batch_size=8),
        base.with_(runtime="onnxruntime", batch_size=8),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--dark", action="store_true", help="use a dark palette (Fusion)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wattbench-shots-"))
    os.environ["WATTBENCH_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("WATTBENCH_CACHE_DIR", str(work / "cache"))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "conf"))
    app = QApplication([sys.argv[0]])
    if args.dark:
        _dark_palette(app)
    from wattbench.gui import theme
    from wattbench.gui.app_settings import AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import MainWindow
    from wattbench.gui.pages.compare import ComparePage
    from wattbench.gui.pages.runs import RunsPage
    from wattbench.gui.pages.sensors import SensorsPage
    from wattbench.service.queue import ItemState

    theme.configure_pyqtgraph()
    db = str(work / "runs.sqlite")
    controller = Controller(db)
    window = MainWindow(controller, AppSettings())
    window.confirm_close = False
    window.resize(1500, 940)
    window.show()
    controller.open_store(db)
    shots: list[str] = []

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait(cond: Callable[[], bool], timeout_s: float, what: str) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.02)
        log.warning("gave up waiting for %s after %.0f s", what, timeout_s)
        return False

    def shot(name: str, settle_s: float = 0.6) -> None:
        spin(settle_s)
        path = out / f"{len(shots) + 1:02d}-{name}.png"
        window.grab().save(str(path))
        shots.append(str(path))
        log.info("saved %s", path)

    wait(lambda: bool(controller.store_description), 60, "the database")
    page = window.show_page("new-run")
    wait(
        lambda: bool(
            getattr(page, "catalog_loaded", True) and getattr(page, "devices_loaded", True)
        ),
        120,
        "catalog and devices",
    )
    select = getattr(page, "select_model", None)
    if callable(select):
        select("builtin:mlp-small")
    shot("new-run")

    keys: list[int] = []
    controller.launched.connect(lambda _req, k: keys.extend(k))
    controller.launchRejected.connect(lambda _req, msg: log.error("rejected: %s", msg))
    from wattbench.service.request import RunPlan

    controller.launch(RunPlan(tuple(_specs())))
    if not wait(lambda: bool(keys), 180, "the runs to be queued"):
        return 1
    measuring = wait(
        lambda: any(controller.items[k].phase == "measuring" for k in keys), 240, "a run to measure"
    )
    if measuring:
        spin(0.8)
        window.show_page("live")
        shot("live", 1.0)
        window.show_page("queue")
        shot("queue", 0.3)
    wait(lambda: all(controller.items[k].state.finished for k in keys), WAIT_RUNS_S, "the runs")
    failed = [controller.items[k] for k in keys if controller.items[k].state is not ItemState.DONE]
    for item in failed:
        log.warning("run %s ended %s: %s", item.label, item.state.value, item.reason)
    window.show_page("queue")
    shot("queue-finished")

    from wattbench.domain.cost import CostProfile

    controller.save_cost_profile(
        CostProfile(
            device="cpu",
            purchase_price_usd=1800.0,
            amortization_years=4.0,
            electricity_usd_per_kwh=0.28,
            pue=1.0,
            carbon_g_per_kwh=350.0,
        )
    )
    runs_page = window.show_page("runs")
    assert isinstance(runs_page, RunsPage)
    wait(lambda: runs_page.model.rowCount() >= len(keys), 60, "the runs listing")
    ids = [
        controller.items[k].result_id for k in keys if controller.items[k].state is ItemState.DONE
    ]
    done_ids = [i for i in ids if i]
    if done_ids:
        runs_page.select_ids({done_ids[0]})
        wait(lambda: runs_page.histogram.counts.size > 0, 60, "the details")
    shot("runs")

    compare = window.show_page("compare")
    assert isinstance(compare, ComparePage)
    if len(done_ids) >= 2:
        controller.request_compare(done_ids)
        wait(lambda: compare.view is not None, 120, "the comparison")
        wait(
            lambda: compare.view is not None and bool(compare.view.cost_profiles),
            20,
            "cost figures",
        )
        for index in range(compare.tabs.count()):
            compare.tabs.setCurrentIndex(index)
            name = compare.tabs.tabText(index).lower().replace(" ", "-")
            shot(f"compare-{name}")
    else:
        shot("compare-empty")

    window.show_page("costs")
    shot("costs", 1.5)
    sensors = window.show_page("sensors")
    assert isinstance(sensors, SensorsPage)
    wait(lambda: sensors.diagnose_button.isEnabled(), 60, "the sensor diagnosis")
    shot("sensors")
    window.show_page("settings")
    shot("settings")

    window.close()
    print("\n".join(shots))
    return 0 if not failed and measuring else 1


def _dark_palette(app: object) -> None:
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#26272a",
        QPalette.ColorRole.Text: "#e8eaed", QPalette.ColorRole.Button: "#2d2e31",
        QPalette.ColorRole.ButtonText: "#e8eaed", QPalette.ColorRole.Highlight: "#3d6fb4",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2d2e31",
        QPalette.ColorRole.ToolTipText: "#e8eaed", QPalette.ColorRole.PlaceholderText: "#9aa0a6",
    }  # fmt: skip
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled  # as a real dark theme does: greyed, not as enabled
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        pal.setColor(disabled, role, QColor("#6f7378"))
    app.setPalette(pal)


if __name__ == "__main__":
    raise SystemExit(main())
