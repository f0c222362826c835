"""What the app remembers between sessions (QSettings, INI format in the user's config folder).

Tests point QSettings at a temporary folder with QSettings.setPath before creating the window.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

log = logging.getLogger(__name__)

ORGANIZATION = "Wattbench"
APPLICATION = "wattbench"


class AppSettings:
    """Typed access to the few things the app remembers."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self._qs = settings or QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
        )

    @property
    def path(self) -> str:
        return self._qs.fileName()

    def sync(self) -> None:
        self._qs.sync()

    # -- database --------------------------------------------------------------------------
    def db_url(self) -> str | None:
        value = self._qs.value("store/url", "")
        return str(value) if value else None

    def set_db_url(self, url: str | None) -> None:
        self._qs.setValue("store/url", url or "")

    # -- window ----------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)

    def splitter_state(self, key: str) -> QByteArray | None:
        """A splitter's saved sizes (key: "main" or "<page>.<n>")."""
        value = self._qs.value(f"layout/{key}")
        return value if isinstance(value, QByteArray) else None

    def set_splitter_state(self, key: str, state: QByteArray) -> None:
        self._qs.setValue(f"layout/{key}", state)

    def theme(self) -> str:
        """The palette chosen under View ▸ Theme: "system", "light" or "dark"."""
        value = str(self._qs.value("view/theme", "system") or "system")
        return value if value in ("system", "light", "dark") else "system"

    def set_theme(self, name: str) -> None:
        self._qs.setValue("view/theme", name)

    def page(self) -> int:
        return self._int("window/page", 0)

    def set_page(self, index: int) -> None:
        self._qs.setValue("window/page", index)

    # -- last choices (a JSON object per page, so a new field needs no migration) ------------
    def choices(self, page: str) -> dict[str, Any]:
        raw = self._qs.value(f"choices/{page}", "")
        if not raw:
            return {}
        try:
            value = json.loads(str(raw))
        except json.JSONDecodeError:
            log.warning("ignoring unreadable remembered choices for %s", page)
            return {}
        return value if isinstance(value, dict) else {}

    def set_choices(self, page: str, values: dict[str, Any]) -> None:
        self._qs.setValue(f"choices/{page}", json.dumps(values))

    # -- helpers ---------------------------------------------------------------------------
    def _int(self, key: str, default: int) -> int:
        value = self._qs.value(key, default)
        try:
            return int(str(value))
        except (TypeError, ValueError):
            return default
