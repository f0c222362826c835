"""Start the desktop app: `wattbench-gui` and `wattbench gui`.

Without a display (no DISPLAY or WAYLAND_DISPLAY on Linux, and no offscreen platform asked
for) it says how to use the command line instead and returns EXIT_NO_DISPLAY, before Qt is
imported. Torch and the store are loaded by the controller's threads after the window shows.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

EXIT_NO_DISPLAY = 2  # like bad input: the request cannot be met here
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")

CLI_HINT = """\
Use the command line instead, for example:
  wattbench devices                      # what can run here, and why not
  wattbench models                       # the model catalog
  wattbench sensors                      # power sources and how to fix them
  wattbench run --model builtin:mlp-tiny --device cpu --preset quick
  wattbench runs                         # stored runs
Or forward a display (ssh -X), or run under Xvfb: xvfb-run wattbench gui"""
NO_DISPLAY_MESSAGE = (
    "wattbench: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set).\n"
    + CLI_HINT
)
NO_X_SERVER_MESSAGE = (
    "wattbench: no X server answers on DISPLAY={display} (a closed ssh session, or the "
    "server stopped), so the window cannot open.\n" + CLI_HINT
)
X_CONNECT_TIMEOUT_S = 2.0


def display_problem(
    environ: dict[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why no window can be shown here, or None when one can."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if qpa in HEADLESS_PLATFORMS:
        return None
    if not plat.startswith("linux") and not plat.startswith("freebsd"):
        return None  # Windows and macOS always have a window system
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return NO_DISPLAY_MESSAGE


def x_server_problem(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why the X server that DISPLAY names cannot be reached, or None.

    Qt aborts the process (no exception to catch) when it cannot connect to DISPLAY; this
    probe connects to the server's socket first, so the user gets the CLI hint instead. None
    as well when X is not what Qt will use, or when the address cannot be told from DISPLAY.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if not plat.startswith("linux") and not plat.startswith("freebsd"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if qpa not in ("", "xcb") or (not qpa and env.get("WAYLAND_DISPLAY")):
        return None
    display = env.get("DISPLAY", "")
    match = re.fullmatch(r"(?P<host>[^:/]*)(?:/unix)?:(?P<number>\d+)(?:\.\d+)?", display)
    if match is None:
        return None
    number = int(match["number"])
    host = match["host"]
    targets: list[tuple[int, Any]]
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        targets = [(socket.AF_UNIX, "\0" + path), (socket.AF_UNIX, path)]
    else:
        targets = [(socket.AF_INET, (host, 6000 + number))]
    for family, address in targets:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(X_CONNECT_TIMEOUT_S)
                sock.connect(address)
            return None
        except (OSError, ValueError) as exc:
            log.debug("X server at %r: %s", address, exc)
    return NO_X_SERVER_MESSAGE.format(display=display)


def qt_binding_problem() -> str | None:
    """A known-bad Qt binding for this Python, or None.

    PySide6 6.12.0 drops a reference to True on every signal emit and to None on every call of
    a method returning nothing; Python < 3.12 does not make them immortal, so the app aborts
    ("deallocating True or False") after a few thousand calls.
    """
    import PySide6

    if PySide6.__version__ == "6.12.0" and sys.version_info < (3, 12):
        return (
            "PySide6 6.12.0 has a reference-counting bug on Python < 3.12 that crashes the app "
            "after a while: install another version (pip install 'pyside6-essentials<6.12')."
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wattbench-gui", description="Open the Wattbench desktop workbench."
    )
    add_arguments(parser)
    parser.add_argument(
        "--db", metavar="URL", default=None, help="SQLAlchemy URL or SQLite file of the run store"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by `wattbench-gui` and `wattbench gui`."""
    parser.add_argument(
        "--page",
        default=None,
        help="page to open (new-run, queue, live, runs, compare, costs, sensors, settings)",
    )
    parser.add_argument(
        "--theme",
        choices=("system", "light", "dark"),
        default=None,
        help="palette: the system's, or Wattbench's light or dark one (default: the one "
        "chosen under View > Theme, or $WATTBENCH_THEME)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `wattbench-gui`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_app(db_url=args.db, page=args.page, theme_name=args.theme)


def run_app(
    *,
    db_url: str | None = None,
    page: str | None = None,
    argv: Sequence[str] | None = None,
    theme_name: str | None = None,
) -> int:
    """Open the window and run the event loop; the exit code. The palette: ``theme_name``,
    else $WATTBENCH_THEME, else the one chosen under View ▸ Theme."""
    problem = display_problem() or x_server_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_NO_DISPLAY

    from PySide6.QtWidgets import QApplication
    from wattbench.gui import icons, theme
    from wattbench.gui.app_settings import APPLICATION, ORGANIZATION, AppSettings
    from wattbench.gui.controller import Controller
    from wattbench.gui.main_window import PAGE_NAMES, MainWindow

    binding = qt_binding_problem()
    if binding is not None:
        log.warning("%s", binding)
        print(f"wattbench: warning: {binding}", file=sys.stderr)
    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Wattbench")
    app.setDesktopFileName("wattbench")
    app.setWindowIcon(icons.app_icon())
    settings = AppSettings()
    theme.apply_theme(theme_name or theme.theme_from_env() or settings.theme())
    theme.configure_pyqtgraph()
    url = db_url or settings.db_url()
    controller = Controller(url)
    window = MainWindow(controller, settings)
    if page:
        if page not in PAGE_NAMES:
            print(
                f"wattbench: unknown page {page!r}; pages: {', '.join(PAGE_NAMES)}", file=sys.stderr
            )
            controller.shutdown()
            return 2
        window.show_page(page)
    window.show()
    controller.open_store(url)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
