"""Test-wide isolation: every test writes into temporary folders, never the user's.

``fake_plugins`` registers the test runtime and power source of tests/plugins (through the
entry point groups, as a third-party package would) for one test, its run workers included.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wattbench.backends.runtimes import registry
from wattbench.backends.sensors import discovery

from tests.store_fixtures import pg_base_url  # noqa: F401 (the session's PostgreSQL server)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PLUGINS = Path(__file__).parent / "plugins"


def _forget_plugins() -> None:
    registry.reset_caches()
    discovery.factories.cache_clear()


@pytest.fixture
def fake_plugins() -> Iterator[Path]:
    """The fake runtime ("fake") and wall meter ("fakeplug") are installed for this test."""
    sys.path.insert(0, str(PLUGINS))  # spawned workers get the parent's sys.path
    importlib.invalidate_caches()
    _forget_plugins()
    try:
        yield PLUGINS
    finally:
        sys.path.remove(str(PLUGINS))
        sys.modules.pop("wattbench_fake_plugins", None)
        importlib.invalidate_caches()
        _forget_plugins()


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wattbench-session")
    dirs = {"data": root / "data", "cache": root / "cache", "config": root / "config"}
    for d in dirs.values():
        d.mkdir()
    return dirs


@pytest.fixture(autouse=True)
def _isolated_env(
    session_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    # The data folder (default database) is per test; the ONNX export cache is shared by the
    # session so that each built-in model is exported once.
    data = tmp_path / "wattbench-data"
    data.mkdir()
    monkeypatch.setenv("WATTBENCH_DATA_DIR", str(data))
    monkeypatch.setenv("WATTBENCH_CACHE_DIR", str(session_dirs["cache"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(session_dirs["config"]))
    monkeypatch.delenv("WATTBENCH_DB", raising=False)
    monkeypatch.delenv("WATTBENCH_TEST_FAULT", raising=False)
    yield
    registry.reset_caches()
