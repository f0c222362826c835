"""RAPL and hwmon readers on fake sysfs trees (real files, real reader code)."""

from __future__ import annotations

import errno
import subprocess
import time
from pathlib import Path

import pytest
from wattbench.backends.sensors import common
from wattbench.backends.sensors.common import STATUS_ABSENT, STATUS_OK, STATUS_UNREADABLE
from wattbench.backends.sensors.discovery import discover, inventory
from wattbench.backends.sensors.hwmon import HwmonSource
from wattbench.backends.sensors.rapl import (
    RAPL_TMPFILES_LINE,
    RAPL_UDEV_RULE,
    RaplSource,
    open_rapl,
)
from wattbench.domain.errors import SensorError, SensorPermissionError

from tests.fakes.sysfs import FakeSysfs, enforcing_opener, two_socket_tree


@pytest.fixture(autouse=True)
def _as_ordinary_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "OPENER", enforcing_opener)


def _by_id(src: RaplSource | HwmonSource) -> dict[str, common.DomainStatus]:
    return {st.id: st for st in src.statuses}


def test_rapl_two_packages_dram_psys_and_mmio_duplicate(tmp_path: Path) -> None:
    two_socket_tree(tmp_path)
    src = RaplSource(str(tmp_path))
    st = _by_id(src)
    ids = {d.id for d in src.domains()}
    assert ids == {
        "rapl:package-0",
        "rapl:core-0",
        "rapl:dram-0",
        "rapl:package-1",
        "rapl:dram-1",
        "rapl:psys",
    }
    assert st["rapl:package-0"].used and st["rapl:package-1"].used
    assert st["rapl:dram-0"].domain is not None and st["rapl:dram-0"].domain.scope == "dram"
    assert st["rapl:dram-1"].used
    # psys contains the packages and core is part of package-0: shown, never summed
    assert not st["rapl:psys"].used and "never summed" in (st["rapl:psys"].note or "")
    assert not st["rapl:core-0"].used
    # the mmio zone repeats package-0: dropped
    assert st["rapl-mmio:package-0"].status == STATUS_ABSENT
    assert "duplicate" in (st["rapl-mmio:package-0"].why or "")
    readings = {r.domain_id: r.value for r in src.read()}
    assert readings["rapl:package-1"] == 20_000_000
    assert readings["rapl:dram-0"] == 2_000_000
    dom = {d.id: d for d in src.domains()}["rapl:package-0"]
    assert dom.max_range == 262143328850 and dom.unit == "uJ" and dom.kind == "energy"
    assert dom.max_power_w == 500.0  # default bound above the 125 W limit
    src.close()


def test_rapl_reads_follow_the_file(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.rapl_zone("intel-rapl:0", "package-0", 5_000)
    src = RaplSource(str(tmp_path))
    assert src.read()[0].value == 5_000
    fs.set_energy("intel-rapl:0", 7_500)
    assert src.read()[0].value == 7_500
    src.close()


def test_rapl_unreadable_counters_give_the_exact_fix(tmp_path: Path) -> None:
    two_socket_tree(tmp_path, readable=False)
    src = RaplSource(str(tmp_path))
    assert src.domains() == []
    bad = [s for s in src.statuses if s.status == STATUS_UNREADABLE]
    assert len(bad) == 6
    fix = bad[0].fix or ""
    assert RAPL_UDEV_RULE in fix and RAPL_TMPFILES_LINE in fix
    assert "as root" not in fix.replace("(do not run Wattbench as root)", "")
    assert "permission denied" in (bad[0].why or "")
    with pytest.raises(SensorPermissionError) as exc:
        open_rapl(str(tmp_path))
    assert RAPL_TMPFILES_LINE in str(exc.value)


def test_rapl_mixed_readable_and_unreadable(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.rapl_zone("intel-rapl:0", "package-0", 1)
    fs.rapl_zone("intel-rapl:0:0", "dram", 1, readable=False)
    src = open_rapl(str(tmp_path))
    assert [d.id for d in src.domains()] == ["rapl:package-0"]
    assert _by_id(src)["rapl:dram-0"].status == STATUS_UNREADABLE
    src.close()


def test_rapl_mmio_only_machine_is_used(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.rapl_zone("intel-rapl-mmio:0", "package-0", 1)
    src = RaplSource(str(tmp_path))
    assert [d.id for d in src.domains()] == ["rapl:package-0"]
    assert "MMIO" in (_by_id(src)["rapl:package-0"].note or "")


def test_rapl_absent(tmp_path: Path) -> None:
    src = RaplSource(str(tmp_path))
    assert src.domains() == [] and src.statuses[0].status == STATUS_ABSENT
    with pytest.raises(SensorError):
        open_rapl(str(tmp_path))


def test_hwmon_sensors_labels_and_unreadable(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.hwmon_chip("hwmon0", "coretemp", {"temp1_input": 40000})  # no power: ignored
    fs.hwmon_chip(
        "hwmon1",
        "apm_xgene",
        {"power1_input": 35_000_000, "power2_input": 5_000_000, "energy1_input": 7_000_000},
        labels={"power1": "CPU power", "power2": "IO power", "energy1": "SoC energy"},
        update_interval_ms=50,
    )
    fs.hwmon_chip(
        "hwmon2",
        "amd_energy",
        {"energy1_input": 1, "energy17_input": 99},
        labels={"energy1": "Ecore000", "energy17": "Esocket0"},
        unreadable=("energy17_input",),
    )
    src = HwmonSource(str(tmp_path))
    st = _by_id(src)
    p1 = st["hwmon:hwmon1/power1"]
    assert p1.status == STATUS_OK and p1.domain is not None
    assert p1.domain.label == "CPU power" and p1.domain.scope == "soc" and p1.used
    assert p1.domain.source.endswith("power1_input∫") and p1.domain.update_period_s == 0.05
    assert not st["hwmon:hwmon1/power2"].used  # "IO power": cannot be placed, never summed
    e1 = st["hwmon:hwmon1/energy1"].domain
    assert e1 is not None and e1.kind == "energy"
    sock = st["hwmon:hwmon2/energy17"]
    assert sock.status == STATUS_UNREADABLE and "tmpfiles.d" in (sock.fix or "")
    assert not st["hwmon:hwmon2/energy1"].used  # a core counter is part of the socket
    values = {r.domain_id: r.value for r in src.read()}
    assert values["hwmon:hwmon1/power1"] == 35_000_000
    src.close()


def test_discovery_is_fast_and_starts_no_subprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_socket_tree(tmp_path)
    FakeSysfs(tmp_path).hwmon_chip(
        "hwmon0", "amd_energy", {"energy1_input": 5}, labels={"energy1": "Esocket0"}
    )

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("discovery started a subprocess")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_subprocess)
    t0 = time.perf_counter()
    inv = inventory(tmp_path, nvml_module=None)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0  # the ≤ 1 s target is measured in tests/benchmarks/bench_energy.py
    names = [s.name for s in inv.sources]
    assert "rapl" in names and "hwmon" in names and "estimate" not in names
    # the hwmon socket counter repeats RAPL: shown, not summed
    assert not inv.used("hwmon:hwmon0/energy1") and inv.used("rapl:package-0")
    inv.close()


def test_discover_falls_back_to_the_estimate(tmp_path: Path) -> None:
    sources = discover(tmp_path)
    assert [s.name for s in sources][-1] == "estimate"
    for s in sources:
        s.close()


def test_sysfs_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSysfs(tmp_path).rapl_zone("intel-rapl:0", "package-0", 1)
    monkeypatch.setenv(common.SYSFS_ROOT_ENV, str(tmp_path))
    src = RaplSource()
    assert [d.id for d in src.domains()] == ["rapl:package-0"]
    src.close()


def test_hwmon_domain_switched_off_is_absent_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = FakeSysfs(tmp_path)
    fs.hwmon_chip(
        "hwmon0",
        "xgene",
        {"power1_input": 1, "power2_input": 2},
        labels={"power1": "CPU power", "power2": "DRAM power"},
    )
    off = str(fs.hwmon / "hwmon0" / "power2_input")

    def opener(path: str, flags: int) -> int:
        if path == off:  # what the driver answers for a switched-off domain
            raise OSError(errno.ENXIO, "No such device or address", path)
        return enforcing_opener(path, flags)

    monkeypatch.setattr(common, "OPENER", opener)
    st = _by_id(HwmonSource(str(tmp_path)))
    assert st["hwmon:hwmon0/power1"].status == STATUS_OK
    assert st["hwmon:hwmon0/power2"].status == STATUS_ABSENT
    assert "switched off" in (st["hwmon:hwmon0/power2"].why or "")
