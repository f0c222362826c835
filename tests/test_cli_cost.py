"""`wattbench cost set | list | show | delete` through wattbench.cli.main."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.domain.result import RunResult
from wattbench.engine.cost import cost_figures

from tests.store_fixtures import make_result


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cost.sqlite")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_set_list_show_and_delete(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys, "--db", db, "cost", "set", "cuda:0", "--purchase-price", "8766",
        "--years", "2", "--utilization", "0.5", "--electricity", "0.2", "--cloud-hourly", "2.5",
    )  # fmt: skip
    assert code == 0, err
    # 8766 USD over 2 years × 8766 h × 50 % useful = 1 USD per useful hour
    assert "cuda:0" in out and "$8,766.00" in out and "$1.00/h" in out

    # a flag left out keeps the stored value; a second, named profile stands apart
    assert _run(capsys, "--db", db, "cost", "set", "cuda:0", "--electricity", "0.3")[0] == 0
    assert _run(capsys, "--db", db, "cost", "set", "cpu", "--name", "rented",
                "--cloud-hourly", "0.4")[0] == 0  # fmt: skip
    with open_store(db) as s:
        stored = {(p.device, p.name): p for p in s.list_cost_profiles()}
    assert stored[("cuda:0", "")] == CostProfile(
        device="cuda:0", purchase_price_usd=8766.0, amortization_years=2.0, utilization=0.5,
        electricity_usd_per_kwh=0.3, cloud_usd_per_hour=2.5,
    )  # fmt: skip
    assert stored[("cpu", "rented")].cloud_usd_per_hour == 0.4

    code, out, _ = _run(capsys, "--db", db, "cost", "list")
    assert code == 0 and "cuda:0" in out and "rented" in out
    code, out, _ = _run(capsys, "--db", db, "cost", "list", "--json")
    listed = json.loads(out)
    assert [(p["device"], p["name"]) for p in listed] == [("cpu", "rented"), ("cuda:0", "")]
    assert listed[1]["capital_usd_per_hour"] == pytest.approx(1.0)

    code, out, _ = _run(capsys, "--db", db, "cost", "show", "cuda:0")
    assert code == 0 and "Amortised hardware: $1.00/h" in out and "Cloud rental: $2.50/h" in out
    code, _, err = _run(capsys, "--db", db, "cost", "show", "cpu")
    assert code == 2 and "'rented'" in err and "--name" in err

    code, out, _ = _run(capsys, "--db", db, "cost", "delete", "cpu", "--name", "rented", "--yes")
    assert code == 0 and "Deleted" in out
    with open_store(db) as s:
        assert [p.device for p in s.list_cost_profiles()] == ["cuda:0"]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (("--utilization", "1.5"), "--utilization"),
        (("--utilization", "0"), "--utilization"),
        (("--electricity", "-1"), "--electricity"),
        (("--pue", "0.5"), "--pue"),
        (("--cloud-hourly", "nan"), "--cloud-hourly"),
        (("--purchase-price", "1000"), "--years"),  # a price without its period
        (("--years", "3"), "--purchase-price"),
        (("--carbon", "lots"), "--carbon"),  # not a number: argparse's own usage error
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    db: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], flag: str
) -> None:
    try:
        code, _, err = _run(capsys, "--db", db, "cost", "set", "cpu", *argv)
    except SystemExit as exc:
        code, err = int(exc.code or 0), capsys.readouterr().err
    assert code == 2
    assert flag in err
    assert "Traceback" not in err
    with open_store(db) as s:
        assert s.list_cost_profiles() == []


def test_delete_needs_yes_without_a_terminal(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(capsys, "--db", db, "cost", "set", "cpu", "--cloud-hourly", "1")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # a "yes" on a pipe is not asked for
    code, _, err = _run(capsys, "--db", db, "cost", "delete", "cpu")
    assert code == 2 and "--yes" in err
    code, _, err = _run(capsys, "--db", db, "cost", "delete", "gpu:7", "--yes")
    assert code == 2 and "No cost profile for gpu:7" in err
    with open_store(db) as s:
        assert [p.device for p in s.list_cost_profiles()] == ["cpu"]


def test_list_with_no_profiles_says_how_to_add_one(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "--db", db, "cost", "list")
    assert code == 0 and "wattbench cost set" in out
    code, out, _ = _run(capsys, "--db", db, "cost", "list", "--json")
    assert json.loads(out) == []


def _estimate_only(run_id: str) -> RunResult:
    """A CPU run whose only energy figure is a model's estimate (no power reading)."""
    measured = make_result(n_latencies=200, n_telemetry=0)
    e = measured.energy[0]
    estimate = replace(e, method="model", rel_uncertainty=None, flags=("estimate",))
    return measured.with_(id=run_id, energy=(estimate,), energy_na_reason="no power sensor")


def test_show_with_runs_gives_the_hardware_part_without_a_power_reading(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = make_result(n_latencies=200, n_telemetry=0)
    blind = _estimate_only("e" * 32)
    with open_store(db) as s:
        s.save_run(measured)
        s.save_run(blind)
        s.save_cost_profile(
            CostProfile(device="cpu", purchase_price_usd=8766.0, amortization_years=1.0,
                        electricity_usd_per_kwh=0.2)
        )  # fmt: skip
    code, out, err = _run(
        capsys, "--db", db, "cost", "show", "cpu", "--json", "--run", measured.id, "eeee"
    )
    assert code == 0, err
    rows = {r["run"]: r for r in json.loads(out)["runs"]}
    profile = CostProfile(device="cpu", purchase_price_usd=8766.0, amortization_years=1.0,
                          electricity_usd_per_kwh=0.2)  # fmt: skip
    full = cost_figures(measured, profile, allow_estimate=False)
    assert full.usd_per_million is not None and full.energy_usd_per_million is not None
    assert rows[measured.id]["usd_per_million"] == f"${units.number(full.usd_per_million.value)}"
    assert "measured energy" in rows[measured.id]["counts"]
    assert rows[measured.id]["estimate"] == "—"
    # no power reading: the hardware part (1 $/h × hours per million) stands, marked partial
    assert blind.throughput_items_per_s is not None
    hardware = 1e6 / blind.throughput_items_per_s.value / 3600.0
    assert rows[blind.id]["usd_per_million"] == f"≥ ${units.number(hardware)}"
    assert rows[blind.id]["counts"] == "hardware only (energy n/a: no power sensor)"
    est = cost_figures(blind, profile)
    assert est.usd_is_estimate and est.usd_per_million is not None
    assert rows[blind.id]["estimate"].startswith(f"${units.number(est.usd_per_million.value)}")
    assert "(estimate: energy from" in rows[blind.id]["estimate"]

    code, out, _ = _run(capsys, "--db", db, "cost", "show", "cpu", "--run", "eeee")
    assert code == 0 and "hardware only" in out and "estimate" in out

    gpu = make_result(spec_overrides={"device": "cuda:0"}, n_latencies=200, n_telemetry=0)
    with open_store(db) as s:
        s.save_run(gpu.with_(id="9" * 32))
    code, _, err = _run(capsys, "--db", db, "cost", "show", "cpu", "--run", "9999")
    assert code == 2 and "ran on cuda:0" in err


def test_run_output_gives_the_hardware_part_when_energy_is_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wattbench.cli import run_output

    base = make_result()
    no_energy = replace(base, energy=(), energy_na_reason="no power sensor readable here")
    profile = CostProfile(device=base.spec.device, purchase_price_usd=8766.0, amortization_years=1,
                          utilization=1.0, electricity_usd_per_kwh=0.2)  # fmt: skip
    run_output.print_results([no_energy, no_energy], {base.spec.device: profile})
    out = capsys.readouterr().out
    # $1 an hour of hardware: 1e6 / throughput / 3600 hours per million inferences
    assert no_energy.throughput_items_per_s is not None
    hw = 1e6 / no_energy.throughput_items_per_s.value / 3600
    cost_lines = [line for line in out.splitlines() if ". cost: " in line]
    assert len(cost_lines) == 2
    assert f"≥ ${units.number(hw)} per million inferences: hardware only" in cost_lines[0]
    assert out.count("no power sensor readable here") == 1  # said once, marked in both lines
