"""The main window: a sidebar of pages, a menu, shortcuts and a status bar.

Pages are QWidget subclasses built as ``Page(controller, parent)``. The three run pages (new
run, queue, live) are built at once; the others (runs, compare, costs, sensors, settings) are
imported and built the first time they are shown, so the window appears quickly; a page that
fails to build shows a placeholder with the reason instead.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from wattbench.gui import icons, theme
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.controller import Controller, ItemState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageInfo:
    name: str  # used by show_page and remembered in the settings
    title: str
    icon: str  # resources/<icon>.svg
    module: str  # wattbench.gui.<module>, e.g. "pages.runs"
    cls: str
    eager: bool = False


PAGES: tuple[PageInfo, ...] = (
    PageInfo("new-run", "New run", "icon-new-run", "pages.new_run", "NewRunPage", eager=True),
    PageInfo("queue", "Queue", "icon-queue", "pages.queue", "QueuePage", eager=True),
    PageInfo("live", "Live", "icon-live", "pages.live", "LivePage", eager=True),
    PageInfo("runs", "Runs", "icon-runs", "pages.runs", "RunsPage"),
    PageInfo("compare", "Compare", "icon-compare", "pages.compare", "ComparePage"),
    PageInfo("sizing", "Sizing", "icon-sizing", "pages.sizing", "SizingPage"),
    PageInfo("claims", "Claims", "icon-claims", "pages.claims", "ClaimsPage"),
    PageInfo("fleet", "Fleet", "icon-fleet", "pages.fleet", "FleetPage"),
    PageInfo("costs", "Cost profiles", "icon-cost", "pages.costs", "CostsPage"),
    PageInfo("sensors", "Sensors", "icon-sensors", "pages.sensors", "SensorsPage"),
    PageInfo("settings", "Settings", "icon-settings", "pages.settings", "SettingsPage"),
)
PAGE_NAMES = tuple(p.name for p in PAGES)
PAGE_KEYS = min(len(PAGES), 9)  # the first pages have a Ctrl+digit shortcut


class Placeholder(QWidget):
    """Stands in for a page that is not built yet, or could not be built (with why)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)


class MainWindow(QMainWindow):
    """Wattbench's window. `show_page(name)` switches pages; see PAGES for the names."""

    def __init__(
        self,
        controller: Controller,
        settings: AppSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings or AppSettings()
        self.confirm_close = True  # ask before closing while runs are queued (tests turn off)
        self.setWindowTitle("Wattbench")
        self.setWindowIcon(icons.app_icon())
        self.setObjectName("main-window")
        self.pages: dict[str, QWidget] = {}
        self._built: set[str] = set()

        self.nav = QListWidget(self)
        self.nav.setObjectName("nav")
        self.nav.setIconSize(QSize(22, 22))
        self.nav.setSpacing(2)
        self.nav.setFrameShape(QListWidget.Shape.NoFrame)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.stack = QStackedWidget(self)
        for info in PAGES:
            item = QListWidgetItem(icons.icon(info.icon), info.title)
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(info.title)
            self.nav.addItem(item)
            page = Placeholder(f"Loading {info.title}…", self)
            self.pages[info.name] = page
            self.stack.addWidget(page)
        self.nav.setMinimumWidth(150)
        self.nav.setMaximumWidth(220)
        splitter = QSplitter(self)
        self._main_splitter = splitter
        splitter.addWidget(self.nav)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(1, False)
        splitter.setSizes([170, 1000])
        self.setCentralWidget(splitter)

        for info in PAGES:
            if info.eager:
                self._build(info)
        self.nav.currentRowChanged.connect(self._on_nav)

        self._store_label = QLabel("Opening the run database…", self)
        self._queue_label = QLabel("", self)
        self.statusBar().addWidget(self._store_label, 1)
        self.statusBar().addPermanentWidget(self._queue_label)

        self._make_actions()
        self._connect_controller()
        self.resize(1200, 800)
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        self._restore_splitters("main", [splitter])
        last = self.settings.page()
        self.nav.setCurrentRow(last if 0 <= last < len(PAGES) else 0)
        self._update_queue_status()

    # ------------------------------------------------------------------ pages
    def show_page(self, name: str) -> QWidget:
        """Show the page called `name` (see PAGE_NAMES) and return its widget."""
        if name not in PAGE_NAMES:
            raise ValueError(f"unknown page {name!r}; pages: {', '.join(PAGE_NAMES)}")
        row = PAGE_NAMES.index(name)
        if self.nav.currentRow() != row:
            self.nav.setCurrentRow(row)  # builds and shows it through _on_nav
        else:
            self._on_nav(row)
        return self.pages[name]

    def current_page_name(self) -> str:
        row = self.nav.currentRow()
        return PAGE_NAMES[row] if 0 <= row < len(PAGES) else PAGE_NAMES[0]

    def page(self, name: str) -> QWidget:
        """The page's widget, built if needed (a placeholder if it cannot be built)."""
        info = PAGES[PAGE_NAMES.index(name)]
        self._build(info)
        return self.pages[name]

    def _on_nav(self, row: int) -> None:
        if not 0 <= row < len(PAGES):
            return
        info = PAGES[row]
        self._build(info)
        self.stack.setCurrentWidget(self.pages[info.name])
        self.settings.set_page(row)

    def _build(self, info: PageInfo) -> None:
        if info.name in self._built:
            return
        self._built.add(info.name)
        module = importlib.import_module(f"wattbench.gui.{info.module}")
        factory: Callable[..., QWidget] = getattr(module, info.cls)
        try:
            page = factory(self.controller, self)
        except Exception as exc:  # a page that fails to build must not take the window down
            log.exception("page %s failed to build", info.name)
            page = Placeholder(f"{info.title} could not be opened: {exc}", self)
        page.setObjectName(f"page-{info.name}")
        old = self.pages[info.name]
        index = self.stack.indexOf(old)
        self.stack.insertWidget(index, page)
        if self.stack.currentWidget() is old:
            self.stack.setCurrentWidget(page)
        self.stack.removeWidget(old)
        old.deleteLater()
        self.pages[info.name] = page
        self._restore_splitters(info.name, page.findChildren(QSplitter))

    def _restore_splitters(self, prefix: str, splitters: list[QSplitter]) -> None:
        """Give a page's splitters the sizes they had when the window was last closed."""
        for i, splitter in enumerate(splitters):
            key = prefix if prefix == "main" else f"{prefix}.{i}"
            state = self.settings.splitter_state(key)
            if state is not None:
                splitter.restoreState(state)

    def _save_splitters(self) -> None:
        self.settings.set_splitter_state("main", self._main_splitter.saveState())
        for name in self._built:
            for i, splitter in enumerate(self.pages[name].findChildren(QSplitter)):
                self.settings.set_splitter_state(f"{name}.{i}", splitter.saveState())

    # ------------------------------------------------------------------ actions
    def _action(
        self,
        text: str,
        slot: Callable[[], object],
        shortcuts: list[str],
        icon_name: str | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icons.icon(icon_name))
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setStatusTip(tip or text)
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        self.run_action = self._action(
            "&Run",
            self._run,
            ["Ctrl+R"],
            "icon-new-run",
            "Queue the runs set up on the New run page",
        )
        self.cancel_action = self._action(
            "&Cancel current run",
            self.controller.cancel_current,
            ["Ctrl+."],  # not Esc: pressed to leave a field, it would stop a long run
            "icon-cancel",
            "Stop the run in progress (it is kept as cancelled)",
        )
        self.cancel_all_action = self._action(
            "Cancel &all runs",
            self.controller.cancel_all,
            ["Ctrl+Shift+."],
            "icon-cancel",
            "Stop the run in progress and drop every queued run",
        )
        self.compare_action = self._action(
            "Co&mpare selected runs",
            self._compare,
            ["Ctrl+K"],
            "icon-compare",
            "Compare the runs selected in the runs browser",
        )
        self.open_model_action = self._action(
            "&Open model file…",
            self._open_model,
            ["Ctrl+O"],
            "icon-open",
            "Benchmark an ONNX or TorchScript file",
        )
        quit_action = self._action("&Quit", self.close, ["Ctrl+Q"])

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_model_action)
        file_menu.addAction(
            self._action(
                "&Settings…", lambda: self.show_page("settings"), ["Ctrl+,"], "icon-settings"
            )
        )
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        run_menu = bar.addMenu("&Run")
        run_menu.addAction(self.run_action)
        run_menu.addAction(self.cancel_action)
        run_menu.addAction(self.cancel_all_action)
        run_menu.addAction(self._action("C&lear finished runs", self.controller.clear_finished, []))
        view_menu = bar.addMenu("&View")
        for i, info in enumerate(PAGES):
            view_menu.addAction(
                self._action(
                    info.title,
                    lambda name=info.name: self.show_page(name),  # type: ignore[misc]
                    [f"Ctrl+{i + 1}"] if i < PAGE_KEYS else [],  # Ctrl+1 … Ctrl+9
                    info.icon,
                )
            )
        view_menu.addSeparator()
        view_menu.addAction(self.compare_action)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name, text in (
            ("system", "&System palette"),
            ("light", "&Light"),
            ("dark", "&Dark"),
        ):
            action = QAction(text, self)
            action.setCheckable(True)
            action.setChecked(name == theme.current_theme())
            action.setStatusTip(f"Draw the window and its charts with the {name} palette")
            action.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[name] = action
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&About Wattbench", self._about, []))

    def set_theme(self, name: str) -> None:
        """Switch the palette now (pages and charts follow) and remember it."""
        theme.apply_theme(name)
        self.theme_actions[name].setChecked(True)
        self.settings.set_theme(name)
        theme.watcher().refresh(force=True)

    def _run(self) -> None:
        page = self.page("new-run")
        self.show_page("new-run")
        start = getattr(page, "start_runs", None)
        if callable(start):
            start()

    def _open_model(self) -> None:
        page = self.page("new-run")
        self.show_page("new-run")
        opener = getattr(page, "open_model_file", None)
        if callable(opener):
            opener()

    def _compare(self) -> None:
        runs = self.pages.get("runs")
        selected = getattr(runs, "selected_run_ids", None)
        ids = list(selected()) if callable(selected) else []
        if ids:
            self.controller.request_compare(ids)
        else:
            self.show_page("compare")

    def _about(self) -> None:
        from wattbench import __version__

        QMessageBox.about(
            self,
            "About Wattbench",
            f"<b>Wattbench {__version__}</b><br>Which of your devices runs this AI model best — "
            "per second, per joule, per dollar.<br><br>Settings file: "
            f"{self.settings.path}",
        )

    # ------------------------------------------------------------------ controller
    def _connect_controller(self) -> None:
        c = self.controller
        c.storeReady.connect(self._on_store_described)
        c.storeDescribed.connect(self._on_store_described)
        c.runsChanged.connect(c.refresh_store_description)
        c.storeFailed.connect(self._on_store_failed)
        c.queueChanged.connect(self._update_queue_status)
        c.itemChanged.connect(lambda _key: self._update_queue_status())
        c.queueIdle.connect(self._update_queue_status)
        c.runStarted.connect(self._on_run_started)
        c.launched.connect(lambda _req, _keys: self.show_page("queue"))
        c.compareRequested.connect(lambda _ids: self.show_page("compare"))
        c.pageRequested.connect(self.show_page)
        c.failed.connect(self._on_failed)

    def _on_store_described(self, text: str) -> None:
        self._store_label.setText(f"Database: {text}")
        self._store_label.setToolTip(text)

    def _on_store_failed(self, message: str) -> None:
        self._store_label.setText("Database not open — see Settings")
        self._store_label.setToolTip(message)
        self.statusBar().showMessage(message, 15_000)

    def _on_failed(self, what: str, message: str) -> None:
        log.warning("%s: %s", what, message)
        self.statusBar().showMessage(f"Could not {what}: {message}", 15_000)

    def _on_run_started(self, _key: int) -> None:
        if self.current_page_name() in ("new-run", "queue"):
            self.show_page("live")

    def _update_queue_status(self) -> None:
        items = list(self.controller.items.values())
        running = [it for it in items if it.state is ItemState.RUNNING]
        queued = sum(1 for it in items if it.state is ItemState.QUEUED)
        parts = []
        if running:
            it = running[0]
            parts.append(f"Running: {it.label} ({it.phase})")
        if queued:
            parts.append(f"{queued} queued")
        failed = sum(1 for it in items if it.state is ItemState.FAILED)
        if failed:
            parts.append(f"{failed} failed")
        self._queue_label.setText(" · ".join(parts) or "Idle")
        self.cancel_action.setEnabled(bool(running))
        self.cancel_all_action.setEnabled(bool(running) or bool(queued))

    # ------------------------------------------------------------------ window events
    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            theme.watcher().refresh()
            for info in PAGES:
                item = self.nav.item(PAGE_NAMES.index(info.name))
                item.setIcon(icons.icon(info.icon))
            icons.recolour(self)  # the buttons' and actions' icons too
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.busy and self.confirm_close:
            answer = QMessageBox.question(
                self,
                "Runs in progress",
                f"{self.controller.pending_count()} run(s) are queued or running. "
                "Cancel them and quit?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self._save_splitters()
        for page in self.pages.values():
            saver = getattr(page, "save_choices", None)
            if callable(saver):
                try:
                    saver()
                except Exception:  # remembering choices is best effort
                    log.exception("could not remember the choices of a page")
        self.settings.sync()
        self.controller.shutdown()
        super().closeEvent(event)
