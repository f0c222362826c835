"""Screenshots of every view of the real window, with real runs made by the real engine.

    xvfb-run -a -s "-screen 0 1600x1000x24" python tests/gui/screenshots.py OUTDIR \
        [--theme light|dark|both]

Opens the MainWindow (on xcb under Xvfb) on a temporary database, runs a few quick CPU runs of
builtin:mlp-tiny / builtin:mlp-small at several batch sizes and thread counts through the
controller (each in its own worker process), captures the queue and live views while one
measures, then the runs browser, the compare view (each chart tab), cost profiles, sensors and
settings, each as OUTDIR/<nn>-<view>.png; then the compare view on a store of sample runs with
known figures (tests/report_fixtures), where every question of the verdict board has an answer
(the runs made here on a shared machine may all read unreliable). With ``--theme both`` (the
default) the runs are made once and every view is taken in the light palette, then again in the
dark one (switched through View ▸ Theme, as a user does), as OUTDIR/<nn>-<view>-light.png and
-dark.png. Nothing here is mocked but the sample runs; it takes a few minutes.
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
# the pages taken with something on them (the others are taken as they open)
SHOT_APART = ("new-run", "queue", "live", "runs", "compare", "costs", "sensors", "settings")
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
    parser.add_argument(
        "--theme",
        choices=("light", "dark", "both"),
        default="both",
        help="the palette(s) to take every view in (default: both, light first)",
    )
    args = parser.parse_args(argv)
    themes = ("light", "dark") if args.theme == "both" else (args.theme,)
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
    from wattbench.gui import theme
    from wattbench.gui.app_settings import AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import PAGE_NAMES, MainWindow
    from wattbench.gui.pages.compare import ComparePage
    from wattbench.gui.pages.runs import RunsPage
    from wattbench.gui.pages.sensors import SensorsPage
    from wattbench.service.queue import ItemState

    theme.apply_theme(themes[0])
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
        path = out / f"{len(shots) + 1:02d}-{name}-{theme.current_theme()}.png"
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
    ids = [
        controller.items[k].result_id for k in keys if controller.items[k].state is ItemState.DONE
    ]
    done_ids = [i for i in ids if i]

    def stored_views() -> None:
        runs_page = window.show_page("runs")
        assert isinstance(runs_page, RunsPage)
        wait(lambda: runs_page.model.rowCount() >= len(keys), 60, "the runs listing")
        if done_ids:
            runs_page.select_ids({done_ids[0]})
            wait(lambda: runs_page.histogram.counts.size > 0, 60, "the details")
        shot("runs")

        compare = window.show_page("compare")
        assert isinstance(compare, ComparePage)
        if len(done_ids) >= 2:
            if compare.view is None:
                shot("compare-empty")
                controller.request_compare(done_ids)
                wait(lambda: compare.view is not None, 120, "the comparison")
                wait(
                    lambda: compare.view is not None and bool(compare.view.cost_profiles),
                    20,
                    "cost figures",
                )
            compare.show_details(False)
            for index in range(compare.tabs.count()):
                if not compare.tabs.isTabVisible(index):
                    continue
                compare.tabs.setCurrentIndex(index)
                tab = compare.tabs.tabText(index).lower().replace(" ", "-")
                shot(f"compare-{tab}")
            compare.tabs.setCurrentIndex(0)
            compare.show_details(True)
            shot("compare-details")
            compare.show_details(False)
        else:
            shot("compare-empty")

        for name in PAGE_NAMES:  # any other page, as it opens
            if name not in SHOT_APART:
                window.show_page(name)
                shot(name, 1.0)
        window.show_page("costs")
        shot("costs", 1.5)
        sensors = window.show_page("sensors")
        assert isinstance(sensors, SensorsPage)
        wait(lambda: sensors.diagnose_button.isEnabled(), 60, "the sensor diagnosis")
        shot("sensors")
        window.show_page("settings")
        shot("settings")

    sample_db = str(work / "sample.sqlite")
    sample_ids = _sample_store(sample_db)

    def sample_compare() -> None:
        """The compare view on the sample store (known figures, every question answered)."""
        opened: list[str] = []
        controller.storeReady.connect(opened.append)
        controller.open_store(sample_db)
        wait(lambda: bool(opened), 60, "the sample store")
        controller.storeReady.disconnect(opened.append)
        compare = window.show_page("compare")
        assert isinstance(compare, ComparePage)
        before = compare.view
        controller.request_compare(sample_ids)
        wait(lambda: compare.view is not before, 120, "the sample comparison")
        wait(
            lambda: compare.view is not None and bool(compare.view.cost_profiles),
            20,
            "cost figures",
        )
        compare.show_details(False)
        compare.show_tab(compare.bars)
        shot("compare-sample")
        compare.show_tab(compare.pareto)
        shot("compare-sample-pareto")
        compare.show_tab(compare.bars)
        opened.clear()
        controller.storeReady.connect(opened.append)
        controller.open_store(db)  # back to the runs made here
        wait(lambda: bool(opened), 60, "the store")
        controller.storeReady.disconnect(opened.append)

    for n, name in enumerate(themes):
        if n:
            window.set_theme(name)  # View ▸ Theme, as a user switches
            for page_name in ("new-run", "live", "queue"):
                window.show_page(page_name)
                shot(page_name, 0.8)
        stored_views()
        sample_compare()

    window.close()
    print("\n".join(shots))
    return 0 if not failed and measuring else 1


def _sample_store(url: str) -> list[str]:
    """A store of sample runs with known figures (tests/report_fixtures): at batch 32,
    cpu · torch 3,200 items/s and 15.6 mJ; cuda:0 · torch 8,000 items/s and 37.5 mJ;
    cpu · onnxruntime 4,000 items/s and 7.5 mJ; cuda:0 · onnxruntime 10,667 items/s with its
    energy estimated; with cost profiles for both devices."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from wattbench.db.store import open_store
    from wattbench.domain.cost import CostProfile

    from tests.report_fixtures import make_run

    runs = (
        [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2)]
        + [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (3, 4)]
        + [make_run(seed=s, runtime="onnxruntime", mean_ms=8, power_w=30) for s in (5, 6)]
        + [  # energy from a TDP model only: ranked apart, labelled an estimate
            make_run(seed=s, device="cuda:0", runtime="onnxruntime", mean_ms=3, estimate_only=True)
            for s in (7, 8)
        ]
    )
    store = open_store(url)
    try:
        store.save_runs(runs)
        for device, price in (("cpu", 4000.0), ("cuda:0", 30000.0)):
            store.save_cost_profile(
                CostProfile(
                    device=device,
                    purchase_price_usd=price,
                    amortization_years=3.0,
                    utilization=0.5,
                    electricity_usd_per_kwh=0.2,
                )
            )
    finally:
        store.close()
    return [r.id for r in runs]


if __name__ == "__main__":
    raise SystemExit(main())
