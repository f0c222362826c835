"""GUI speed figures (prints them; no assertion: the machine is shared and noisy).

    xvfb-run -a python tests/benchmarks/bench_gui.py [--skip-run] [--against REV --launches N]
        [--compare-only]

1. Window shown: wall time from spawning a fresh `python` to the main window being shown and
   painted, and whether torch was imported by then (target ≤ 1.5 s, torch not imported).
   With --against REV, launches of that revision alternate with this tree's, for a ratio.
2. Event-loop latency on the GUI thread during a real quick run with the live charts on
   screen: a 5 ms probe timer records how late each tick fires (target p99 ≤ 50 ms).
3. Compare view: time to draw a comparison of 20 runs (target ≤ 0.5 s), from the computed
   comparison to painted charts; and from the request (the page's Compare) to the verdict board
   shown, through the controller (store load the first time, compare off-thread, draw).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import sys, time
t_import = time.perf_counter()
from PySide6.QtCore import QTimer, QSettings
from PySide6.QtWidgets import QApplication
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[2])
app = QApplication([sys.argv[0]])
from wattbench.gui import theme
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.controller import Controller
from wattbench.gui.main_window import MainWindow
theme.configure_pyqtgraph()
controller = Controller(sys.argv[1])
window = MainWindow(controller, AppSettings())
window.confirm_close = False
window.show()
controller.open_store(sys.argv[1])
def shown():
    window.repaint()
    print("SHOWN", "torch" in sys.modules, "sqlalchemy" in sys.modules, flush=True)
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
controller.shutdown()
"""


def _revision_tree(rev: str, where: Path) -> Path:
    """A checkout of ``rev`` laid out as the ``wattbench`` package (a PYTHONPATH entry)."""
    tree = where / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(tree), rev],
        check=True,
        capture_output=True,
    )
    for sub in ("backends", "db", "resources"):  # pyproject's package-dir mapping
        (tree / "app" / sub).symlink_to(tree / sub)
    (where / "path").mkdir()
    (where / "path" / "wattbench").symlink_to(tree / "app")
    return where / "path"


def _launch(tmp: str, name: str, env: dict[str, str]) -> tuple[float, bool] | None:
    """Seconds from spawning a fresh python to the window shown, and whether torch was in."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(Path(tmp) / "runs.sqlite"), str(Path(tmp) / name)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp,
    )
    assert proc.stdout is not None
    shown: tuple[float, bool] | None = None
    for line in proc.stdout:
        if line.startswith("SHOWN"):
            shown = (time.perf_counter() - start, line.split()[1] == "True")
            break
    proc.wait(timeout=120)
    if shown is None:
        print("  child failed:", proc.stderr.read() if proc.stderr else "")
    return shown


def _summary(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
    )


def bench_window_shown(repeats: int = 5, against: str | None = None) -> None:
    """Window-shown time of this tree; with ``against``, alternating with that revision's
    (same machine, same minutes: the ratio of the medians is the figure to compare)."""
    runs: dict[str, list[float]] = {"this tree": [], str(against): []}
    torch_seen = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, WATTBENCH_DATA_DIR=tmp, PYTHONPATH=str(ROOT))
        other = None
        if against is not None:
            other = dict(env, PYTHONPATH=str(_revision_tree(against, Path(tmp) / "rev")))
        try:
            for i in range(repeats):
                order = [("this tree", env)] + ([(against, other)] if other else [])
                for name, child_env in order if i % 2 == 0 else order[::-1]:
                    shown = _launch(tmp, f"conf-{i}-{len(runs[str(name)])}", child_env)
                    if shown is not None:
                        runs[str(name)].append(shown[0])
                        if name == "this tree":
                            torch_seen.append(shown[1])
        finally:
            if other is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "-f", f"{tmp}/rev/tree"],
                    check=False,
                    capture_output=True,
                )
    mine = runs["this tree"]
    if mine:
        print(
            f"window shown after launch (fresh process, {len(mine)} launches): "
            f"{_summary(mine)} (target ≤ 1.5 s)"
        )
        print(f"  torch imported before the window was shown: {any(torch_seen)} (target: False)")
    theirs = runs[str(against)]
    if mine and theirs:
        print(
            f"  {against}, alternating with it: {_summary(theirs)}; this tree ÷ {against} "
            f"(medians) = {statistics.median(mine) / statistics.median(theirs):.3f}"
        )


def bench_compare_draw(n_runs: int = 20) -> None:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    from tests.store_fixtures import make_result

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from wattbench.db.store import open_store
    from wattbench.gui import theme
    from wattbench.gui.controller import Controller
    from wattbench.gui.pages.compare import ComparePage
    from wattbench.service.workbench import compare_loaded

    theme.configure_pyqtgraph()
    runs = []
    for i in range(n_runs):  # 2 devices × 2 runtimes × 5 batch sizes, 20 configurations
        batch = (1, 4, 16, 64, 256)[i % 5]
        runs.append(
            make_result(
                seed=100 + i,
                n_latencies=20_000,
                n_telemetry=600,
                mean_ns=200_000.0 * batch**0.8 * (1 + 0.15 * (i // 10)),
                spec_overrides={
                    "device": ("cpu", "cuda:0")[(i // 5) % 2],
                    "runtime": ("torch", "onnxruntime")[i // 10],
                    "batch_size": batch,
                },
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/c.sqlite"
        store = open_store(url)
        store.save_runs(runs)
        store.close()
        controller = Controller(url)
        page = ComparePage(controller)
        page.resize(1400, 900)
        page.show()
        app.processEvents()
        view = compare_loaded(runs, baseline_id=runs[0].id, energy_view="device", noise=0.01)
        draw = []
        tabs: dict[str, list[float]] = {}
        for _ in range(5):
            page.tabs.setCurrentIndex(0)
            start = time.perf_counter()
            page.show_comparison(view)  # draws the visible tab (the figures)
            page.repaint()
            draw.append(time.perf_counter() - start)
            for index in range(1, page.tabs.count()):  # each other tab draws when first shown
                start = time.perf_counter()
                page.tabs.setCurrentIndex(index)
                page.repaint()
                tabs.setdefault(page.tabs.tabText(index), []).append(time.perf_counter() - start)
        print(
            f"compare view, {n_runs} runs ({len(view.comparison.groups)} configurations): "
            f"draw and paint the figures (6 bar charts, verdicts, warnings): median "
            f"{statistics.median(draw):.3f} s, max {max(draw):.3f} s (target ≤ 0.5 s)"
        )
        print(
            "  first showing of each other tab (draw + paint): "
            + ", ".join(f"{name} {statistics.median(t):.3f} s" for name, t in tabs.items())
        )
        opened = []
        controller.storeReady.connect(lambda _d: opened.append(True))
        controller.open_store(url)
        while not opened:
            app.processEvents()
            time.sleep(0.005)
        ids = [r.id for r in runs]
        boards = []
        for i in range(6):  # the first loads the runs from SQLite; later ones reuse them
            before = page.view
            start = time.perf_counter()
            page.set_runs(ids, ids[i % 2])  # as the page's Compare button does
            while page.view is before or not page.board.isVisible():
                app.processEvents()
                time.sleep(0.001)
            page.repaint()
            boards.append(time.perf_counter() - start)
        rows = len(page.board.rows)
        print(
            f"  request to board shown ({rows} board rows, through the controller: compare "
            f"off-thread, board and figures drawn and painted): first (loads 20 runs with "
            f"arrays from SQLite) {boards[0]:.3f} s; again (runs cached) median "
            f"{statistics.median(boards[1:]):.3f} s, max {max(boards[1:]):.3f} s "
            f"(target ≤ 0.5 s)"
        )
        controller.shutdown()


def bench_event_loop_during_run() -> None:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from wattbench.gui import theme
    from wattbench.gui.app_settings import AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import MainWindow
    from wattbench.service.plan import plan_runs
    from wattbench.service.request import RunRequest

    theme.configure_pyqtgraph()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WATTBENCH_DATA_DIR"] = tmp
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        db = str(Path(tmp) / "runs.sqlite")
        controller = Controller(db)
        window = MainWindow(controller, AppSettings())
        window.confirm_close = False
        window.resize(1400, 900)
        window.show()
        controller.open_store(db)
        keys: list[int] = []
        controller.launched.connect(lambda _r, k: keys.extend(k))
        request = RunRequest(
            model="builtin:mlp-tiny",
            runtimes=("torch",),
            preset="quick",
            t_max_s=8.0,
            idle_baseline=False,
            threads=(1,),
            sample_hz=20.0,
        )
        controller.launch(plan_runs(request))
        interval_ms = 5
        lateness_ms: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            item = controller.items.get(keys[0]) if keys else None
            if item is not None and item.phase == "measuring":
                lateness_ms.append(max(0.0, (now - last[0]) * 1e3 - interval_ms))
            last[0] = now

        probe = QTimer()
        probe.setInterval(interval_ms)
        probe.timeout.connect(tick)
        probe.start()
        shown_live = False
        end = time.monotonic() + 300
        while time.monotonic() < end:
            app.processEvents()
            item = controller.items.get(keys[0]) if keys else None
            if item is not None and item.phase == "measuring" and not shown_live:
                window.show_page("live")
                shown_live = True
            if item is not None and item.state.finished:
                break
            time.sleep(0.001)
        probe.stop()
        state = controller.items[keys[0]].state.value if keys else "not queued"
        if lateness_ms:
            ordered = sorted(lateness_ms)
            p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            print(
                f"GUI event-loop latency during a run with the live view ({len(ordered)} "
                f"probe ticks while measuring, run {state}): p50 "
                f"{statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max "
                f"{ordered[-1]:.1f} ms (target p99 ≤ 50 ms)"
            )
        else:
            print(f"GUI event-loop latency: no tick while measuring (run {state})")
        window.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="GUI speed figures")
    parser.add_argument("--skip-run", action="store_true", help="skip the real run (3rd figure)")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also launch the window of git revision REV, alternating (e.g. a release tag)",
    )
    parser.add_argument("--launches", type=int, default=5, help="window launches (each tree)")
    parser.add_argument(
        "--compare-only", action="store_true", help="only the compare view figures (2nd)"
    )
    args = parser.parse_args()
    platform = os.environ.get("QT_QPA_PLATFORM") or ("xcb" if os.environ.get("DISPLAY") else "?")
    print(f"Qt platform: {platform}; CPUs: {os.cpu_count()}")
    if args.compare_only:
        bench_compare_draw()
        return 0
    bench_window_shown(args.launches, args.against)
    bench_compare_draw()
    if not args.skip_run:
        bench_event_loop_during_run()
    return 0


if __name__ == "__main__":
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    raise SystemExit(main())
