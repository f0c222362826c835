"""The one `wattbench` namespace reaches the wheel whole, and the core stays headless."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {
    "app": "wattbench",
    "backends": "wattbench.backends",
    "db": "wattbench.db",
    "resources": "wattbench.resources",
}


def _folders_as_packages() -> set[str]:
    found: set[str] = set()
    for top, dotted in MAPPING.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            parts = [p for p in rel.parts if p]
            if top == "app" and parts and parts[0] in ("backends", "db", "resources"):
                continue
            found.add(".".join([dotted, *parts]))
    return found


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert _folders_as_packages() == listed


@pytest.mark.slow
def test_every_subpackage_reaches_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    wheel = next(tmp_path.glob("wattbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert _folders_as_packages() <= in_wheel
    # nothing generic lands at the top of site-packages
    tops = {n.split("/", 1)[0] for n in names}
    assert not tops & {"app", "backends", "db", "resources", "tests"}
    assert any(
        n.startswith("wattbench/db/migrations/versions/")
        and n.endswith(".py")
        and not n.endswith("__init__.py")
        for n in names
    )


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


def test_core_never_imports_qt() -> None:
    offenders = []
    for top in ("app", "backends", "db"):
        for py in (ROOT / top).rglob("*.py"):
            if "gui" in py.relative_to(ROOT).parts or py.name == "cmd_gui.py":
                continue
            bad = _imports(py) & {"PySide6", "pyqtgraph", "shiboken6"}
            if bad:
                offenders.append(f"{py.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []


def test_cli_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from wattbench.cli.main import build_parser; build_parser(); "
        "heavy = [m for m in ('torch', 'onnxruntime', 'pynvml', 'PySide6')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
