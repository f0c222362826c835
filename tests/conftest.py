"""Test-wide isolation: every test writes into temporary folders, never the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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
    try:
        from wattbench.backends.runtimes import registry
    except ImportError:
        return
    reset = getattr(registry, "reset_caches", None)
    if reset is not None:
        reset()
