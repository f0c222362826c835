"""A fleet on this machine: a real Dask scheduler and named agents, each a separate
``wattbench`` process (``python -m wattbench scheduler|agent``), each agent pointed at its own
fake sysfs tree so that the hosts differ, with the test runtime ("fake") installed as a
third-party plugin. Processes start in their own session and are killed as a group.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.fakes.sysfs import FakeSysfs, two_socket_tree

PLUGINS = Path(__file__).parent / "plugins"
START_TIMEOUT_S = 120.0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    address: str
    log: Path
    err: IO[str]

    def kill(self) -> None:
        """SIGKILL the process and everything it started (a host that vanishes)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended by itself
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self.err.close()


@dataclass
class FleetProcs:
    scheduler: Proc
    agents: dict[str, Proc] = field(default_factory=dict)
    tls_args: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return self.scheduler.address

    def stop(self) -> None:
        for proc in (*self.agents.values(), self.scheduler):
            proc.kill()


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(key, None)
    env.update(extra)
    return env


def _start(name: str, argv: Sequence[str], marker: str, log: Path, env: Mapping[str, str]) -> Proc:
    """Start ``wattbench ARGV`` and wait for its line ``wattbench MARKER at ADDRESS``."""
    err = log.open("w")
    popen = subprocess.Popen(
        [sys.executable, "-m", "wattbench", *argv],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=dict(env),
        start_new_session=True,
    )
    assert popen.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(popen.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_S
    prefix = f"wattbench {marker} at "
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            break
        if sel.select(timeout=0.5):
            line = popen.stdout.readline()
            if line.startswith(prefix):
                return Proc(name, popen, line[len(prefix) :].strip(), log, err)
    proc = Proc(name, popen, "", log, err)
    proc.kill()
    raise AssertionError(f"{name} did not start: {log.read_text()[-3000:]}")


def start_scheduler(tmp: Path, tls_args: Sequence[str] = ()) -> Proc:
    return _start(
        "scheduler",
        ["scheduler", "--port", "0", *tls_args],
        "scheduler",
        tmp / "scheduler.log",
        _env({}),
    )


def start_agent(
    fleet: FleetProcs,
    tmp: Path,
    name: str,
    sysfs: Path,
    env: Mapping[str, str] | None = None,
) -> Proc:
    argv = ["agent", "--scheduler", fleet.address, "--name", name, *fleet.tls_args]
    extra = {"WATTBENCH_SYSFS_ROOT": str(sysfs), "WATTBENCH_FAKE_SLEEP": "1", **(env or {})}
    proc = _start(name, argv, f"agent {name}", tmp / f"agent-{name}.log", _env(extra))
    fleet.agents[name] = proc
    return proc


def host_trees(tmp: Path) -> dict[str, Path]:
    """Three hosts' sysfs: two RAPL sockets; one package; no power sensor at all."""
    trees = {name: tmp / f"sysfs-{name}" for name in ("xeon", "epyc", "arm")}
    two_socket_tree(trees["xeon"])
    FakeSysfs(trees["epyc"]).rapl_zone("intel-rapl:0", "package-0", 5_000_000)
    trees["arm"].mkdir()
    return trees


def start_fleet(
    tmp: Path,
    names: Sequence[str],
    tls_args: Sequence[str] = (),
    envs: Mapping[str, Mapping[str, str]] | None = None,
) -> FleetProcs:
    trees = host_trees(tmp)
    fleet = FleetProcs(start_scheduler(tmp, tls_args), tls_args=tuple(tls_args))
    try:
        for name in names:
            start_agent(fleet, tmp, name, trees[name], (envs or {}).get(name))
    except BaseException:
        fleet.stop()
        raise
    return fleet


@pytest.fixture(scope="module")
def fleet3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetProcs]:
    """A scheduler and three agents (xeon, epyc, arm), shared by a module's tests; the xeon
    host sets OMP_NUM_THREADS=2, the others set no thread variable at all."""
    fleet = start_fleet(
        tmp_path_factory.mktemp("fleet"),
        ("xeon", "epyc", "arm"),
        envs={"xeon": {"OMP_NUM_THREADS": "2"}},
    )
    try:
        yield fleet
    finally:
        fleet.stop()
