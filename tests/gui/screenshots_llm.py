"""Screenshots of the language model views of the real window: the New run page in the
generation scenario (a shape-only architecture that fits, one refused for its memory) and the
compare view of two generation runs.

    xvfb-run -a -s "-screen 0 1600x1000x24" python tests/gui/screenshots_llm.py OUTDIR

The runs are made on the fake runtime plugin of tests/plugins (a decoder spinning known times,
measured by its fake wall meter), so this takes well under a minute; everything else is the
real window, controller, engine and store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(PLUGINS))  # the fake runtime and meter, as installed plugins
    os.environ.setdefault("WATTBENCH_FAKE_ITEM_US", "2000")
    work = Path(tempfile.mkdtemp(prefix="wattbench-llm-shots-"))
    os.environ["WATTBENCH_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("WATTBENCH_CACHE_DIR", str(work / "cache"))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "conf"))
    app = QApplication([sys.argv[0]])
    from wattbench.domain.cost import CostProfile
    from wattbench.gui import theme
    from wattbench.gui.app_settings import AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import MainWindow
    from wattbench.gui.pages.compare import ComparePage
    from wattbench.gui.pages.new_run import NewRunPage

    theme.configure_pyqtgraph()
    db = str(work / "runs.sqlite")
    controller = Controller(db)
    window = MainWindow(controller, AppSettings())
    window.confirm_close = False
    window.resize(1500, 940)
    window.show()
    controller.open_store(db)
    shots: list[str] = []

    def wait(cond: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.02)
        return False

    def shot(name: str) -> None:
        wait(lambda: False, 0.6)
        path = out / f"{len(shots) + 1:02d}-{name}.png"
        window.grab().save(str(path))
        shots.append(str(path))

    wait(lambda: bool(controller.store_description), 60)
    page = window.show_page("new-run")
    assert isinstance(page, NewRunPage)
    wait(lambda: page.catalog_loaded and page.devices_loaded, 120)
    page.select_model("llm:tinyllama-1.1b")
    page.batch_edit.setText("1, 8")
    shot("new-run-generation")
    page.select_model("llm:llama-3-8b")
    page.prompt_spin.setValue(4096)
    page.new_tokens_spin.setValue(4096)
    page.batch_edit.setText("64")
    shot("new-run-refused")

    page.select_model("builtin:gpt-small")
    for name, check in page.runtime_checks.items():
        check.setChecked(name == "fake")
    page.prompt_spin.setValue(24)
    page.new_tokens_spin.setValue(6)
    page.batch_edit.setText("1, 4")
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("quick"))
    page.t_max_spin.setValue(1.5)
    page.sample_spin.setValue(200)
    page.idle_check.setChecked(False)
    page.repeats_spin.setValue(1)
    controller.save_cost_profile(CostProfile("cpu", cloud_usd_per_hour=3.6))
    keys: list[int] = []
    controller.launched.connect(lambda _req, k: keys.extend(k))
    page.start_runs()
    if not wait(lambda: bool(keys), 120):
        print("not launched:", page.banner.text)
        return 1
    wait(lambda: all(controller.items[k].state.finished for k in keys), 300)
    ids = [str(controller.items[k].result_id) for k in keys]
    compare = window.show_page("compare")
    assert isinstance(compare, ComparePage)
    controller.request_compare(ids)
    wait(lambda: compare.view is not None and bool(compare.view.cost_profiles), 120)
    shot("compare-generation")
    compare.show_tab(compare.bars)
    shot("compare-figures")
    window.close()
    print("\n".join(shots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
