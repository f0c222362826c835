"""Launching: no display means a pointer to the CLI (no traceback); the window opens before
torch is imported."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from wattbench.gui.launch import EXIT_NO_DISPLAY, display_problem, x_server_problem


def _env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["WATTBENCH_DATA_DIR"] = str(tmp_path / "data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_display_problem_reads_the_environment() -> None:
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None


def test_wattbench_gui_without_a_display_points_to_the_cli(tmp_path: Path) -> None:
    env = _env(tmp_path, DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    for argv in (
        ["-m", "wattbench", "gui"],
        ["-c", "from wattbench.gui.launch import main; raise SystemExit(main([]))"],
    ):
        proc = subprocess.run(
            [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == EXIT_NO_DISPLAY, proc.stderr
        assert "no display" in proc.stderr
        assert "wattbench run --model" in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout


def test_an_unreachable_x_server_points_to_the_cli(tmp_path: Path) -> None:
    # Qt would abort the process (SIGABRT, no message about the CLI) on a stale DISPLAY
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        number = listener.getsockname()[1] - 6000  # DISPLAY host:N is TCP port 6000 + N
        display = f"127.0.0.1:{number}.0"
        assert x_server_problem({"DISPLAY": display}, "linux") is None
    stale = x_server_problem({"DISPLAY": display}, "linux")  # nothing listens there now
    assert stale is not None and display in stale and "wattbench run --model" in stale
    assert x_server_problem({"DISPLAY": display, "QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert x_server_problem({"DISPLAY": display, "WAYLAND_DISPLAY": "w-0"}, "linux") is None
    assert x_server_problem({"DISPLAY": "/private/tmp/launchd/org.xquartz:0"}, "linux") is None

    env = _env(tmp_path, DISPLAY=display, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    proc = subprocess.run(
        [sys.executable, "-m", "wattbench", "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_NO_DISPLAY, proc.stderr
    assert f"no X server answers on DISPLAY={display}" in proc.stderr
    assert "wattbench run --model" in proc.stderr


SHOW_WINDOW = """
import builtins, sys, threading, time
t0 = time.perf_counter()
importer = []  # the thread that imported torch first (the inventory's pool may, meanwhile)
plain_import = builtins.__import__
def watch(name, *args, **kwargs):
    if name.split(".")[0] == "torch" and not importer and "torch" not in sys.modules:
        importer.append(threading.current_thread() is threading.main_thread())
    return plain_import(name, *args, **kwargs)
builtins.__import__ = watch
from PySide6.QtWidgets import QApplication
app = QApplication([])
from wattbench.gui.controller import Controller
from wattbench.gui.main_window import MainWindow
controller = Controller(None)
window = MainWindow(controller)
window.show()
app.processEvents()
print("shown_s", time.perf_counter() - t0, importer == [True], window.isVisible())
window.confirm_close = False
window.close()
"""


def test_the_window_shows_before_torch_is_imported(tmp_path: Path) -> None:
    env = _env(tmp_path, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", SHOW_WINDOW], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("shown_s"))
    _, seconds, torch_on_gui_thread, visible = line.split()
    print(f"window shown in {float(seconds):.2f} s")  # a figure, not an assertion (noisy host)
    assert torch_on_gui_thread == "False"  # torch may load in the background, never in the way
    assert visible == "True"
