"""`wattbench sensors` on a fake tree (WATTBENCH_SYSFS_ROOT) and on this real machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wattbench.backends.sensors import common
from wattbench.backends.sensors.rapl import RAPL_TMPFILES_LINE, RAPL_UDEV_RULE
from wattbench.cli.main import main

from tests.fakes.fake_pynvml import FakeGpu, FakeNvml
from tests.fakes.sysfs import FakeSysfs, enforcing_opener, two_socket_tree


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["sensors", *argv])
    return code, capsys.readouterr().out


def test_sensors_on_a_fake_tree_with_unreadable_rapl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    two_socket_tree(tmp_path, readable=False)
    FakeSysfs(tmp_path).hwmon_chip(
        "hwmon3", "amdgpu", {"power1_average": 31_000_000}, labels={"power1": "PPT"}
    )
    monkeypatch.setenv(common.SYSFS_ROOT_ENV, str(tmp_path))
    monkeypatch.setattr(common, "OPENER", enforcing_opener)  # as an ordinary user sees it
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([FakeGpu(energy_counter=False)]))
    code, out = _run(capsys)
    assert code == 0
    assert f"sysfs root {tmp_path}" in out
    assert "unreadable" in out and "permission denied" in out
    assert RAPL_UDEV_RULE in out and RAPL_TMPFILES_LINE in out
    assert "sudo" in out and "run Wattbench as root" in out  # ... says: do NOT run it as root
    assert "cuda:0" in out and "nvml.power_instant∫" in out
    assert "amdgpu" in out and "hwmon.amdgpu.power1_average∫" in out
    assert "No power sensor can be read" not in out  # the GPU and the hwmon sensor are ok

    code, out = _run(capsys, "--json")
    doc = json.loads(out)
    assert doc["format"] == "wattbench.sensors" and doc["measured"] is True
    rapl = [s for s in doc["sensors"] if s["source"] == "rapl" and s["status"] == "unreadable"]
    assert len(rapl) == 6 and all(RAPL_TMPFILES_LINE in s["fix"] for s in rapl)
    dup = [s for s in doc["sensors"] if s["id"] == "rapl-mmio:package-0"]
    assert dup and "duplicate" in dup[0]["why"]
    # the CPU itself cannot be measured: it gets the labelled estimate
    est = [s for s in doc["sensors"] if s["source"] == "estimate"]
    assert est and est[0]["estimate"] is True and est[0]["device"] == "cpu"


def test_sensors_readable_tree_in_a_subprocess(tmp_path: Path) -> None:
    """The environment variable points the whole program at another tree."""
    two_socket_tree(tmp_path)
    env = dict(os.environ, WATTBENCH_SYSFS_ROOT=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "wattbench", "sensors", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    doc = json.loads(proc.stdout)
    ok = {s["id"] for s in doc["sensors"] if s["status"] == "ok"}
    assert {"rapl:package-0", "rapl:package-1", "rapl:dram-0", "rapl:dram-1"} <= ok
    assert doc["measured"] is True and doc["sys_root"] == str(tmp_path)
    assert "estimate:cpu" not in ok  # a measured CPU needs no estimate


def test_sensors_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    for s in doc["sensors"]:
        if s["status"] != "ok":
            assert s["why"], s  # every unreadable or absent source says why
    est = [s for s in doc["sensors"] if s["source"] == "estimate"]
    if not doc["measured"]:
        assert est and est[0]["status"] == "ok" and est[0]["estimate"] is True
        code, text = _run(capsys)
        assert "No power sensor can be read here" in text and "ESTIMATE" in text
