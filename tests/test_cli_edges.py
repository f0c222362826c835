"""Edge values and outputs end in a clear line and the right exit code, never a traceback.

The command runs as a user starts it (a subprocess of ``python -m wattbench``), on the fake
runtime plugin, so what is checked is exactly what a terminal or a script would see.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from wattbench.db.store import open_store
from wattbench.engine import convergence

from tests.conftest import PLUGINS
from tests.store_fixtures import make_results

QUICK = ["--runtime", "fake", "--preset", "quick", "--no-idle", "--no-memory", "--no-store"]


def _wattbench(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    full = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])
    )
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "wattbench", *args],
        env=full, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_one_call_longer_than_t_max_says_how_long_to_measure() -> None:
    proc = _wattbench(
        "run", "--model", "builtin:mlp-tiny", *QUICK, "--t-max", "1",
        env={"WATTBENCH_FAKE_ITEM_US": "1500000"},  # one call: 1.5 s
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr  # the settings cannot work: bad input
    out = " ".join((proc.stdout + proc.stderr).split())
    took = re.search(r"One call takes (1\.5\d*) s", out)
    assert took is not None, out
    asked = re.search(r"Raise T_max to at least (\d+) s", out)  # enough calls to stop on
    needed = convergence.MIN_N * float(took.group(1))
    assert asked is not None and int(asked.group(1)) >= needed, out
    assert "Traceback" not in proc.stderr and "summarize" not in out


def test_a_worker_error_is_one_sentence_and_its_traceback_needs_v() -> None:
    args = ["run", "--model", "builtin:mlp-tiny", *QUICK, "--t-max", "1"]
    fault = {"WATTBENCH_TEST_FAULT": "raise"}
    quiet = _wattbench(*args, env=fault)
    assert quiet.returncode == 3
    assert "Traceback" not in quiet.stderr + quiet.stdout
    said = " ".join(quiet.stdout.split())
    assert "failed in the worker with RuntimeError" in said and "run again with -v" in said
    loud = _wattbench("-v", *args, env=fault)
    assert loud.returncode == 3 and "Traceback (most recent call last)" in loud.stderr


def test_a_reader_that_stops_early_is_not_an_error_trace(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    store = open_store(str(db))
    try:
        store.save_runs(make_results(400))  # a listing far longer than a pipe's buffer
    finally:
        store.close()
    full = dict(os.environ)
    reader = subprocess.Popen(
        [sys.executable, "-m", "wattbench", "--db", str(db), "runs"],
        env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert reader.stdout is not None and reader.stderr is not None
    first = reader.stdout.readline()  # like `| head -1`: read a line, then go away
    reader.stdout.close()
    err = reader.stderr.read().decode()
    reader.stderr.close()
    assert reader.wait(timeout=120) == 141, err  # as a shell reports SIGPIPE
    assert first and "Traceback" not in err and "BrokenPipe" not in err, err


def test_what_the_store_cannot_hold_is_refused_before_anything_is_measured(
    tmp_path: Path,
) -> None:
    """A tag the store refuses, or a batch beyond its INTEGER columns, used to be found at the
    first write, after the whole sweep was measured; now the plan refuses it (exit 2)."""
    db = tmp_path / "runs.sqlite"
    base = ["--db", str(db), "run", "--model", "builtin:mlp-tiny", "--runtime", "fake"]
    base += ["--preset", "quick", "--no-idle", "--no-memory"]
    cases = [
        (["--tag", "<b>x</b>"], r"Tag '<b>x</b>' is not usable"),
        (["--tag", "ok\u202etxt.exe"], r"is not usable"),
        (["--batch", "1,3000000000"], r"Batch size 3000000000 is beyond what a run can record"),
    ]
    for extra, said in cases:
        proc = _wattbench(*base, *extra, env={"WATTBENCH_FAKE_ITEM_US": "100"})
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode == 2, out
        assert re.search(said, out), out
        assert "Traceback" not in out
    if db.exists():  # nothing was recorded, not even a pending run
        with open_store(str(db)) as store:
            assert store.count_runs() == 0


def test_a_dimension_the_model_lacks_is_refused_not_ignored() -> None:
    proc = _wattbench("run", "--model", "builtin:mlp-tiny", *QUICK, "--dim", "seq_len=128")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, out
    assert "has no dimension 'seq_len'" in out and "--dim" in out, out
