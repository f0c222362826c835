"""A worker never outlives the command that started it.

The CLI is started as a user's shell would, with the fake runtime plugin making the first
call last ten minutes (a model stuck in a long call, spinning the CPU), then killed as
``timeout`` (SIGTERM) or an out-of-memory killer / CI job (SIGKILL) would. Afterwards no
process of the run may be left: the worker is tied to its parent (worker.tie_to_parent).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from wattbench.db.store import open_store

from tests.conftest import PLUGINS


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _busy_worker(cli: psutil.Process, deadline_s: float = 120.0) -> psutil.Process:
    """The CLI's worker process once it is inside the long call (using CPU)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and cli.is_running() and cli.status() != psutil.STATUS_ZOMBIE:
        for child in cli.children(recursive=True):
            try:
                if "spawn_main" in " ".join(child.cmdline()) and child.cpu_times().user > 1.0:
                    return child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError("the CLI ended, or its worker never started the long call")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_the_cli_during_a_long_call_leaves_no_worker(
    sig: signal.Signals, tmp_path: Path
) -> None:
    db = tmp_path / "runs.sqlite"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
        WATTBENCH_FAKE_ITEM_US=str(600 * 1_000_000),  # one call: ten minutes
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "wattbench", "--db", str(db), "run", "--model", "builtin:mlp-tiny",
         "--runtime", "fake", "--no-idle", "--no-memory"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        worker = _busy_worker(psutil.Process(cli.pid))
        family = [worker, *psutil.Process(cli.pid).children(recursive=True)]
        cli.send_signal(sig)
        _out, err = cli.communicate(timeout=60)
        end = time.monotonic() + 10.0  # the tie acts within a second; a loaded machine is slow
        while time.monotonic() < end and not all(_gone(p.pid) for p in family):
            time.sleep(0.1)
        left = [p.pid for p in family if not _gone(p.pid)]
        assert not left, f"processes left running after {sig.name} of the CLI: {left}"
    finally:
        if cli.poll() is None:
            cli.kill()
        cli.communicate()
    if sig == signal.SIGTERM:  # terminated like Ctrl-C: the run is cancelled and recorded
        assert cli.returncode == 4, err
        assert "cancelling (terminated)" in err
        store = open_store(str(db))
        try:
            (run,) = store.list_runs()
            assert run.status.value == "cancelled"
        finally:
            store.close()
