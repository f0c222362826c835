"""Settings: which run database to use (a file or any SQLAlchemy URL), and what the app follows.

A new database is checked in place (the text), then opened by the controller off the GUI
thread; it is remembered only once it opened, so a typo never leaves the app without a store.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.controller import Controller
from wattbench.gui.main_window import PAGE_KEYS
from wattbench.gui.widgets.banner import Banner, Level

log = logging.getLogger(__name__)

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9]*(\+[a-zA-Z0-9_]+)?://")


def check_db_text(text: str) -> str | None:
    """Why `text` cannot name a database, or None when it may (opening tells the rest)."""
    value = text.strip()
    if not value:
        return "Give a database file or URL, or press 'Use default'."
    if "://" in value:
        if not _URL.match(value):
            return (
                f"{value!r} is not a database URL: it should look like "
                "sqlite:///path/to/runs.sqlite or postgresql+psycopg://user@host/dbname."
            )
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        return f"{path} is a folder: give a file name inside it, e.g. {path / 'runs.sqlite'}."
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{path.parent} cannot be created: {parent} is not a folder."
    return None


class SettingsPage(QWidget):
    """Database choice (validated, applied through the controller) and app behaviour."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = AppSettings()
        self._pending: str | bool | None = False  # False = nothing being applied
        self._build()
        controller.storeReady.connect(self._on_store_ready)
        controller.storeFailed.connect(self._on_store_failed)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.banner = Banner(self)
        layout.addWidget(self.banner)

        db = QGroupBox("Run database", self)
        dl = QVBoxLayout(db)
        help_text = QLabel(
            "Every run is stored here. A file path means a SQLite file (created if missing); "
            "a URL such as postgresql+psycopg://user@host/wattbench lets a team share one "
            "database. The command line uses the same database with --db or $WATTBENCH_DB.",
            db,
        )
        help_text.setWordWrap(True)
        dl.addWidget(help_text)
        form = QFormLayout()
        self.current_label = QLabel(self.controller.store_description or "not open yet", db)
        self.current_label.setWordWrap(True)
        form.addRow("In use:", self.current_label)
        row = QHBoxLayout()
        self.db_edit = QLineEdit(db)
        self.db_edit.setAccessibleName("Database file or URL")
        self.db_edit.setPlaceholderText("default: wattbench.sqlite in your data folder")
        self.db_edit.setText(self.settings.db_url() or "")
        self.db_edit.textChanged.connect(self._check)
        self.db_edit.returnPressed.connect(self.apply)
        row.addWidget(self.db_edit, 1)
        browse = QPushButton("Browse…", db)
        browse.clicked.connect(self.browse)
        row.addWidget(browse)
        form.addRow("Database:", row)
        self.check_label = QLabel("", db)
        self.check_label.setWordWrap(True)
        form.addRow("", self.check_label)
        dl.addLayout(form)
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Use this database", db)
        self.apply_button.clicked.connect(self.apply)
        self.default_button = QPushButton("Use default", db)
        self.default_button.clicked.connect(self.use_default)
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.default_button)
        buttons.addStretch(1)
        dl.addLayout(buttons)
        layout.addWidget(db)

        look = QGroupBox("Appearance and behaviour", self)
        ll = QVBoxLayout(look)
        for text in (
            "Colours follow the system's palette, or a light or dark one chosen under View ▸ "
            "Theme (remembered; or start with --theme light|dark, or $WATTBENCH_THEME), "
            "charts included.",
            "The window's size, layout, page and your last choices on the New run page are "
            "remembered between sessions (in " + self.settings.path + ").",
            "Shortcuts: Ctrl+R starts the runs set up on the New run page; Ctrl+. "
            "cancels the running one, Ctrl+Shift+. all of them; Ctrl+K compares the runs "
            f"selected in the browser; Ctrl+1 … Ctrl+{PAGE_KEYS} switch pages.",
        ):
            label = QLabel(text, look)
            label.setWordWrap(True)
            ll.addWidget(label)
        layout.addWidget(look)
        layout.addStretch(1)
        self._check(self.db_edit.text())

    def _check(self, text: str) -> bool:
        problem = check_db_text(text) if text.strip() else None
        self.check_label.setText(problem or "")
        self.apply_button.setEnabled(bool(text.strip()) and problem is None)
        return problem is None

    def browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Run database file",
            self.db_edit.text() or "wattbench.sqlite",
            "SQLite database (*.sqlite *.db);;All files (*)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.db_edit.setText(path)

    def apply(self) -> None:
        text = self.db_edit.text().strip()
        problem = check_db_text(text)
        if problem is not None:
            self.banner.show_message(problem, Level.ERROR)
            return
        self._open(text)

    def use_default(self) -> None:
        self.db_edit.clear()
        self._open(None)

    def _open(self, url: str | None) -> None:
        self._pending = url
        self.apply_button.setEnabled(False)
        self.default_button.setEnabled(False)
        self.banner.show_message("Opening the database…", Level.INFO)
        self.controller.open_store(url)

    def _on_store_ready(self, description: str) -> None:
        self.current_label.setText(description)
        if self._pending is False:
            return
        url = self._pending if isinstance(self._pending, str) else None
        self._pending = False
        self.settings.set_db_url(url)
        self.settings.sync()
        self.default_button.setEnabled(True)
        self._check(self.db_edit.text())
        self.banner.show_message(f"Now using {description}.", Level.INFO)

    def _on_store_failed(self, message: str) -> None:
        self.current_label.setText("not open")
        if self._pending is False:
            return
        self._pending = False
        self.default_button.setEnabled(True)
        self._check(self.db_edit.text())
        self.banner.show_message(
            f"{message} The choice was not saved; pick another database.", Level.ERROR
        )
