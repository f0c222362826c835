"""A screenshot of the Fleet page with its hosts and a finished plan.

    xvfb-run -a -s "-screen 0 1600x1000x24" python tests/gui/screenshots_fleet.py OUTDIR \
        [--theme light|dark]

Starts a real fleet on this machine (tests/fleet_fixtures.py: a Dask scheduler and the agents
"xeon" and "arm", each a separate process on a fake sysfs tree of its own), opens the real
window on a temporary database, connects its Fleet page, checks both hosts and runs the New
run page's plan (builtin:mlp-small on the fake runtime plugin, a two-second run) on them,
taking OUTDIR/01-fleet-hosts-<theme>.png once the hosts are listed and
OUTDIR/02-fleet-finished-<theme>.png once both are through. About half a minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tests" / "plugins"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    args = parser.parse_args(argv)
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    sys.path[:0] = [str(ROOT), str(PLUGINS)]  # the fixtures; the fake runtime as a plugin
    work = Path(tempfile.mkdtemp(prefix="wattbench-fleet-shots-"))
    os.environ["WATTBENCH_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("WATTBENCH_CACHE_DIR", str(work / "cache"))

    from tests.fleet_fixtures import start_fleet

    procs = start_fleet(work, ("xeon", "arm"))
    try:
        return _shoot(out, work, procs.address, args.theme)
    finally:
        procs.stop()


def _shoot(out: Path, work: Path, address: str, theme_name: str) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "conf"))
    app = QApplication([sys.argv[0]])
    from wattbench.gui import theme
    from wattbench.gui.app_settings import AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import MainWindow
    from wattbench.gui.pages.fleet import FleetPage
    from wattbench.gui.pages.new_run import NewRunPage

    theme.apply_theme(theme_name)
    db = str(work / "runs.sqlite")
    controller = Controller(db)
    window = MainWindow(controller, AppSettings())
    window.confirm_close = False
    window.resize(1500, 940)
    window.show()
    controller.open_store(db)

    def wait(cond: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.02)
        return False

    wait(lambda: bool(controller.store_description), 60)
    new_run = window.show_page("new-run")
    assert isinstance(new_run, NewRunPage)
    wait(lambda: new_run.catalog_loaded and new_run.devices_loaded, 120)
    new_run.select_model("builtin:mlp-small")
    for name, check in new_run.runtime_checks.items():
        check.setChecked(name == "fake")
    for device in new_run.device_list.checked():
        new_run.device_list.set_checked(device, False)
    new_run.device_list.set_checked("cpu")
    new_run.batch_edit.setText("1, 8")
    new_run.threads_edit.setText("1")
    new_run.preset_combo.setCurrentIndex(new_run.preset_combo.findData("quick"))
    new_run.t_max_spin.setValue(2.0)
    new_run.idle_check.setChecked(False)
    new_run.repeats_spin.setValue(1)

    page = window.show_page("fleet")
    assert isinstance(page, FleetPage)
    page.address_edit.setText(address)
    page.connect_fleet()
    if not wait(lambda: page.hosts_table.rowCount() == 2, 60):
        print("no hosts:", page.banner.text, page.status_label.text())
        return 1
    shots: list[Path] = []

    def shot(name: str) -> None:
        wait(lambda: False, 1.0)
        path = out / f"{len(shots) + 1:02d}-{name}-{theme.current_theme()}.png"
        window.grab().save(str(path))
        shots.append(path)

    shot("fleet-hosts")
    for name in page.hosts_table.names():
        page.hosts_table.set_checked(name)
    page.run_plan()
    fleet = controller.fleet
    if not fleet.items:
        print("not run:", page.banner.text)
        return 1
    wait(lambda: not fleet.running, 300)
    shot("fleet-finished")
    window.close()
    print("\n".join(map(str, shots)))
    return 0 if all(it.state == "done" for it in fleet.items.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
