"""mypy really checks types across Wattbench's modules (py.typed, strict editable install).

Without it, every ``wattbench.*`` import was Any to mypy and a deliberate type error passed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SNIPPET = """
from wattbench.service.workbench import Workbench

def newest_model(wb: Workbench) -> None:
    runs = wb.list_runs()
    reveal_type(runs[0])
    count: int = runs[0].model_ref  # a str: mypy must refuse it
"""


def test_mypy_sees_the_real_classes_of_another_module(tmp_path: Path) -> None:
    path = tmp_path / "uses_the_store.py"
    path.write_text(textwrap.dedent(SNIPPET))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), str(path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert 'Revealed type is "wattbench.db.values.RunSummary"' in out, out
    assert (
        'Incompatible types in assignment (expression has type "str", variable has type "int")'
        in out
    ), out
    assert proc.returncode == 1
