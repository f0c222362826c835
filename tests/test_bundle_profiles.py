"""Cost profiles travel in bundles: export writes the profiles of the runs' devices, import adds
the ones the store lacks and never overwrites one it has; hostile profile entries are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wattbench.cli.main import main
from wattbench.db.bundle import export_bundle
from wattbench.db.bundle_read import import_bundle
from wattbench.db.store import Store, open_store
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BundleError

from tests.bundle_fixtures import empty_db, read_members, target, write_members
from tests.store_fixtures import make_result

__all__ = ["empty_db", "target"]  # fixtures

OWNED = CostProfile(
    device="cpu", purchase_price_usd=3000.0, amortization_years=3.0, utilization=0.5,
    electricity_usd_per_kwh=0.25, pue=1.2,
)  # fmt: skip
RENTED = CostProfile(device="cpu", name="cloud", cloud_usd_per_hour=0.8)
OTHER_DEVICE = CostProfile(device="cuda:0", cloud_usd_per_hour=3.0)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle of one CPU run from a store with two CPU profiles and one of another device."""
    with open_store(str(tmp_path / "source.sqlite")) as s:
        s.save_run(make_result(n_latencies=200, n_telemetry=20))
        for p in (OWNED, RENTED, OTHER_DEVICE):
            s.save_cost_profile(p)
        summary = export_bundle(s, None, tmp_path / "runs.wbz")
    assert summary.cost_profiles == 2
    return summary.path


def _manifest(path: Path) -> dict[str, Any]:
    return json.loads(read_members(path)["manifest.json"])


def _with_manifest(path: Path, change: dict[str, Any]) -> Path:
    members = read_members(path)
    manifest = {**json.loads(members["manifest.json"]), **change}
    members["manifest.json"] = json.dumps(manifest).encode()
    return write_members(path.with_name("forged.wbz"), members)


def test_export_writes_the_profiles_of_the_runs_devices(bundle: Path) -> None:
    profiles = _manifest(bundle)["cost_profiles"]
    assert [(p["device"], p["name"]) for p in profiles] == [("cpu", ""), ("cpu", "cloud")]
    assert _manifest(bundle)["format_version"] == 1  # older readers ignore the new key


def test_import_adds_the_profiles_to_an_empty_store(bundle: Path, target: Store) -> None:
    summary = import_bundle(target, bundle)
    assert len(summary.added) == 1
    assert summary.profiles_added == ("cpu", "cpu/cloud") and summary.profiles_kept == ()
    assert target.list_cost_profiles() == [OWNED, RENTED]
    again = import_bundle(target, bundle)  # idempotent
    assert again.profiles_added == () and again.profiles_kept == ("cpu", "cpu/cloud")
    assert target.list_cost_profiles() == [OWNED, RENTED]


def test_import_never_overwrites_a_profile_the_store_has(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "mine.sqlite")
    mine = CostProfile(device="cpu", cloud_usd_per_hour=0.1)
    with open_store(db) as s:
        s.save_cost_profile(mine)
    assert main(["--db", db, "import", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "Imported 1 run" in out
    assert "Added 1 cost profile: cpu/cloud." in out
    assert "Kept this store's own cost profile of cpu" in out
    with open_store(db) as s:
        assert s.list_cost_profiles() == [mine, RENTED]


def test_export_prints_the_profile_count(
    tmp_path: Path, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "source.sqlite")
    assert main(["--db", db, "export", "--all", "-o", str(tmp_path / "again.wbz")]) == 0
    assert "with 2 cost profiles of their devices" in capsys.readouterr().out


def test_a_bundle_without_profiles_still_imports(bundle: Path, target: Store) -> None:
    members = read_members(bundle)
    manifest = json.loads(members["manifest.json"])
    del manifest["cost_profiles"]  # as written before profiles travelled
    members["manifest.json"] = json.dumps(manifest).encode()
    summary = import_bundle(target, write_members(bundle.with_name("old.wbz"), members))
    assert len(summary.added) == 1 and summary.profiles_added == ()
    assert target.list_cost_profiles() == []


_GOOD = {"device": "cpu", "name": "x", "cloud_usd_per_hour": 1.0}


@pytest.mark.parametrize(
    ("profiles", "reason"),
    [
        ({"device": "cpu"}, "not a list"),
        (["cpu"], "not an object"),
        ([{**_GOOD, "script": "x"}], "unknown field"),
        ([{**_GOOD, "cloud_usd_per_hour": "1.0"}], "not a number"),
        ([{**_GOOD, "cloud_usd_per_hour": True}], "not a number"),
        ([{**_GOOD, "utilization": 2.0}], "not plausible"),
        ([{**_GOOD, "purchase_price_usd": 100.0}], "not plausible"),  # no amortization
        ([{**_GOOD, "pue": 1e308}], "out of range"),  # refused by the strict JSON reader
        ([{**_GOOD, "device": None}], "device is not text"),
        ([{**_GOOD, "name": "<img src=x onerror=alert(1)>"}], "markup"),
        ([{**_GOOD, "device": "cpu\u202e"}], "markup"),
        ([_GOOD, _GOOD], "lists a cost profile twice"),
        ([_GOOD] * 1001, "at most 1000"),
    ],
)
def test_hostile_profiles_are_refused_and_nothing_is_imported(
    bundle: Path, target: Store, profiles: Any, reason: str
) -> None:
    with pytest.raises(BundleError, match="cannot be imported") as exc:
        import_bundle(target, _with_manifest(bundle, {"cost_profiles": profiles}))
    assert reason in str(exc.value)
    assert target.count_runs() == 0 and target.list_cost_profiles() == []
