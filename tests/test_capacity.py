"""The capacity planner's arithmetic on the seed example, checked by hand, and its inputs.

Seed example (PRODUCT.md): 600 kW of IT power, racks of 10 kW. A GPU server draws 10 kW with 8
GPUs; a CPU server 250 W. By hand:
- GPU: ⌊600,000 / 10,000⌋ = 60 servers, 1 per rack → 60 racks; 60 × 8 × 1,000 tokens/s =
  480,000 tokens/s. Energy over 3 years at full load: 60 × 10 kW × 26,298 h = 15,778,800 kWh;
  at $0.10/kWh $1,577,880; capex 60 × $300,000 = $18,000,000.
- CPU: ⌊600,000 / 250⌋ = 2,400 servers, ⌊10,000 / 250⌋ = 40 per rack → 60 racks; 2,400 × 30 =
  72,000 tokens/s; the same 15,778,800 kWh; capex 2,400 × $7,000 = $16,800,000.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.engine.capacity import ESTIMATE, INPUT, MEASURED, Facility, ServerConfig, Sourced
from wattbench.engine.capacity import plan_capacity as plan
from wattbench.service.capacity import ServerInput, capacity_plan, parse_power, parse_server

from tests.report_fixtures import make_run

HOURS = 3 * 8766


def _server(
    watts: float, devices: int, per_device: float, price: float, **kw: object
) -> ServerConfig:
    fields: dict[str, object] = dict(
        label="x", unit="output tokens/s",
        throughput_per_device=Sourced(per_device, MEASURED), devices=devices,
        power_w=Sourced(watts, INPUT), idle_w=None, price_usd=Sourced(price, INPUT),
        tariff_usd_per_kwh=Sourced(0.10, INPUT), utilization=Sourced(1.0, INPUT),
    )  # fmt: skip
    fields.update(kw)
    return ServerConfig(**fields)  # type: ignore[arg-type]


def test_the_seed_example_by_hand() -> None:
    facility = Facility(budget_w=600_000, rack_power_w=10_000, years=3)
    gpu = plan(facility, _server(10_000, 8, 1_000, 300_000))
    assert (gpu.servers, gpu.servers_per_rack, gpu.racks) == (60, 1, 60)
    assert gpu.aggregate_per_s == 480_000
    assert gpu.energy_kwh == pytest.approx(15_778_800)
    assert gpu.energy_usd == pytest.approx(1_577_880)
    assert gpu.capex_usd == 18_000_000
    assert gpu.total_usd == pytest.approx(19_577_880)
    work = 480_000 * HOURS * 3600  # tokens over the period
    assert gpu.usd_per_million == pytest.approx(19_577_880 / work * 1e6)
    cpu = plan(facility, _server(250, 1, 30, 7_000))
    assert (cpu.servers, cpu.servers_per_rack, cpu.racks) == (2_400, 40, 60)
    assert cpu.aggregate_per_s == 72_000
    assert cpu.energy_kwh == pytest.approx(15_778_800)
    assert cpu.capex_usd == 16_800_000
    assert not gpu.estimate and not cpu.estimate


def test_pue_slots_idle_split_and_labels() -> None:
    # 1 MW at PUE 1.25 leaves 800 kW for IT; 42 slots cap a 10 kW rack at 40 servers of 250 W
    facility = Facility(budget_w=1e6, pue=1.25, rack_power_w=20_000, rack_slots=42, years=1)
    row = plan(facility, _server(250, 1, 30, 7_000, idle_w=Sourced(100, MEASURED),
                                 utilization=Sourced(0.5, INPUT)))  # fmt: skip
    assert (row.servers, row.servers_per_rack, row.racks) == (3_200, 42, 77)
    # half the time at 250 W, half idle at 100 W: 175 W a server, × PUE, over 8,766 h
    assert row.energy_kwh == pytest.approx(3_200 * 175 * 1.25 * 8_766 / 1000)
    est = plan(facility, _server(250, 1, 30, 7_000, power_w=Sourced(250, ESTIMATE)))
    assert est.estimate
    unknown = plan(facility, _server(250, 1, 30, 7_000, utilization=Sourced(0.5, INPUT)))
    assert any("upper bound" in n for n in unknown.notes)
    none = plan(facility, _server(250, 1, 30, 7_000, power_w=None, na_reason="no power"))
    assert none.servers is None and none.notes == ("no power",)
    with pytest.raises(BadInputError, match="PUE"):
        Facility(budget_w=1e6, pue=0.5)


def test_inputs_are_parsed_with_clear_messages() -> None:
    assert parse_power("1MW") == 1e6 and parse_power("10 kW") == 1e4 and parse_power("250") == 250
    with pytest.raises(BadInputError, match="1MW or 250W"):
        parse_power("lots")
    s = parse_server("cuda:0", "devices=8,power=10kW,idle=3kW,price=300000")
    assert (s.devices, s.power_w, s.idle_w, s.price_usd) == (8, 1e4, 3e3, 3e5)
    with pytest.raises(BadInputError, match="key=value"):
        parse_server("cuda:0", "gpus=8")
    with pytest.raises(BadInputError, match="whole number"):
        parse_server("cuda:0", "devices=1.5")


def test_servers_from_measured_runs_and_profiles() -> None:
    cpu = [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2)]  # 3,200 inferences/s
    gpu = [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (3, 4)]
    profiles = {
        "cpu": CostProfile(device="cpu", purchase_price_usd=4_000, amortization_years=3,
                           utilization=1.0, electricity_usd_per_kwh=0.2),
    }  # fmt: skip
    rows = capacity_plan(
        cpu + gpu,
        Facility(budget_w=10_000, years=1),
        profiles,
        [ServerInput("cuda:0", devices=8, power_w=5_000, price_usd=250_000)],
    )
    by = {r.config.label: r for r in rows}
    c, g = by["cpu · torch"], by["cuda:0 · torch"]
    assert c.config.power_w is not None and c.config.power_w.source == MEASURED
    assert c.config.power_w.value == pytest.approx(50, rel=0.02)
    assert c.servers == 200 and c.config.price_usd is not None
    assert c.config.price_usd.value == 4_000 and c.config.price_usd.source == INPUT
    assert c.aggregate_per_s == pytest.approx(200 * 3_200, rel=0.01)
    assert g.config.power_w is not None and g.config.power_w.source == INPUT
    assert g.servers == 2 and g.config.devices == 8
    assert g.aggregate_per_s == pytest.approx(2 * 8 * 8_000, rel=0.01)
    assert g.energy_usd is None and any("tariff" in n for n in g.notes)
    with pytest.raises(BadInputError, match="none of these runs ran on"):
        capacity_plan(cpu, Facility(budget_w=1e4), {}, [ServerInput("cuda:7", devices=2)])


def test_cli_plan_shows_configurations_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "plan.sqlite")
    runs = [make_run(seed=1, mean_ms=10, power_w=50), make_run(seed=2, device="cuda:0", mean_ms=4)]
    with open_store(db) as s:
        for r in runs:
            s.save_run(r)
    args = ["--db", db, "plan", runs[0].id, runs[1].id, "--budget", "600kW", "--rack-power",
            "10kW", "--server", "cuda:0", "devices=8,power=10kW"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Capacity plan: 600 kW facility at PUE 1 (600 kW for IT), racks of 10 kW" in out
    header = next(line for line in out.splitlines() if "cpu · torch" in line)
    assert header.index("cpu · torch") < header.index("cuda:0 · torch")
    assert "10 kW (input)" in out and "(measured)" in out
    servers = next(line.split() for line in out.splitlines() if line.strip().startswith("servers "))
    assert servers[1:] == ["12,000", "60"]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["servers"] for r in doc["rows"]] == [12_000, 60]
    assert main(["--db", db, "plan", runs[0].id, "--budget", "a lot"]) == 2
    assert "1MW or 250W" in capsys.readouterr().err
