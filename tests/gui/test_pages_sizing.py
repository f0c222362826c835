"""Sizing (capacity planner) and Claims pages on a store of runs whose figures are known.

report_fixtures.make_run: throughput = batch / mean latency, so the CPU runs (10 ms, batch 32)
deliver 3,200 inferences/s and the cuda:0 runs (4 ms) 8,000: B / A = 2.5 on throughput.
By hand, for a 600 kW budget at PUE 1 with racks of 10 kW:
- CPU server stated at 250 W: ⌊600,000 / 250⌋ = 2,400 servers, ⌊10,000 / 250⌋ = 40 a rack,
  60 racks; 2,400 × 3,200 = 7,680,000 inferences/s.
- GPU server of 8 devices stated at 10 kW: 60 servers, 1 a rack, 60 racks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wattbench.domain.result import RunResult
from wattbench.gui.pages.claims import COL_VERDICT, ClaimsPage
from wattbench.gui.pages.sizing import SizingPage
from wattbench.gui.widgets.banner import Level

from tests.gui.pages_helpers import TIMEOUT_MS, fill_store, make_controller_fixture  # noqa: F401
from tests.report_fixtures import make_run


@pytest.fixture
def runs() -> list[RunResult]:
    cpu = [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2, 3)]
    gpu = [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (4, 5, 6)]
    return cpu + gpu


@pytest.fixture
def url(tmp_path: Path, runs: list[RunResult]) -> str:
    return fill_store(tmp_path / "sizing.sqlite", runs)


def _sizing(qtbot: Any, controller: Any) -> SizingPage:
    page = SizingPage(controller)
    qtbot.addWidget(page)
    with qtbot.waitSignal(controller.runsListed, timeout=TIMEOUT_MS):
        page.show()  # lists the runs
    return page


def test_sizing_plans_the_seed_example(
    qtbot: Any, url: str, runs: list[RunResult], make_controller: Any
) -> None:
    controller = make_controller(url)
    page = _sizing(qtbot, controller)
    assert page.picker.list.count() == 6
    page.set_runs([r.id for r in runs])
    assert page.servers_table.rowCount() == 2  # one row a device of the ticked runs
    page.budget_edit.setText("600")
    page.budget_unit.setCurrentText("kW")
    page.rack_power_edit.setText("10")
    page.set_server("cpu", power="250W")
    page.set_server("cuda:0", devices="8", power="10kW")
    with qtbot.waitSignal(controller.capacityPlanned, timeout=TIMEOUT_MS):
        page.plan_button.click()

    assert "600 kW facility at PUE 1 (600 kW for IT), racks of 10 kW" in page.title.text()
    heads = [page.table.horizontalHeaderItem(c).toolTip() for c in range(2)]
    assert heads == ["cpu · torch", "cuda:0 · torch"]
    assert [page.cell("servers", c) for c in (0, 1)] == ["2,400", "60"]
    assert [page.cell("servers per rack", c) for c in (0, 1)] == ["40", "1"]
    assert [page.cell("racks", c) for c in (0, 1)] == ["60", "60"]
    assert page.cell("server power, load", 0) == "250 W (input)"
    assert page.cell("server power, load", 1) == "10 kW (input)"
    assert page.cell("devices per server", 1) == "8"
    assert page.cell("throughput / device", 0).endswith("inferences/s (measured)")
    aggregate = page.cell("aggregate throughput", 0)
    assert aggregate.endswith(" inferences/s")  # 2,400 servers × ~3,200 inferences/s
    assert float(aggregate.split()[0].replace(",", "")) == pytest.approx(7_680_000, rel=0.01)
    assert page.cell("IT power at load", 0) == "600 kW"
    assert "cpu · torch, server power: stated for the server" in page.notes.text()
    assert page.banner.isHidden()

    # without a stated power the runs' own (50 W, measured) is used and said so
    page.set_server("cpu", power="")
    with qtbot.waitSignal(controller.capacityPlanned, timeout=TIMEOUT_MS):
        page.plan_button.click()
    assert page.cell("server power, load", 0) == "50 W (measured)"
    assert page.cell("servers", 0) == "12,000"
    assert "cpu · torch, server power: system power, measured" in page.notes.text()


def test_sizing_refuses_bad_inputs_in_its_banner(
    qtbot: Any, url: str, runs: list[RunResult], make_controller: Any
) -> None:
    controller = make_controller(url)
    page = _sizing(qtbot, controller)
    page.set_runs([runs[0].id])
    page.budget_edit.setText("600")
    page.budget_unit.setCurrentText("kW")
    page.set_server("cpu", power="250W")
    with qtbot.waitSignal(controller.capacityPlanned, timeout=TIMEOUT_MS):
        page.plan_button.click()
    assert page.cell("servers") == "2,400"

    page.budget_edit.setText("a lot")
    page.plan_button.click()
    assert page.banner.level is Level.ERROR
    assert page.banner.text == (
        "Cannot read the power 'a lot': write a positive number with W, kW or MW "
        "(for example 1MW or 250W)."
    )
    assert page.plan_button.isEnabled()  # nothing was asked of the controller
    assert page.cell("servers") == "2,400"  # the last plan stays as it was

    page.budget_edit.setText("1")
    page.budget_unit.setCurrentText("MW")
    page.pue_edit.setText("0.5")
    page.plan_button.click()
    assert page.banner.text == "The PUE is between 1 and 5 (1 = no overhead)."
    page.pue_edit.setText("1")
    page.set_server("cpu", devices="1.5")
    page.plan_button.click()
    assert page.banner.text == "Devices per server is a whole number (got 1.5)."
    assert page.cell("servers") == "2,400"

    # an error of the service (a run id the store does not hold) comes back as is
    page.set_server("cpu", devices="")
    page.set_runs(["ffffffffffff"])
    with qtbot.waitSignal(controller.capacityFailed, timeout=TIMEOUT_MS) as blocker:
        page.plan_button.click()
    assert page.banner.level is Level.ERROR and page.banner.text == blocker.args[0]
    assert "ffffffffffff" in page.banner.text
    assert page.plan_button.isEnabled() and page.cell("servers") == "2,400"


def _claims(qtbot: Any, controller: Any) -> ClaimsPage:
    """The page with the claim "cuda:0 ≥ 2 × the CPU on throughput" checked: confirmed."""
    page = ClaimsPage(controller)
    qtbot.addWidget(page)
    page.show()
    page.a_edit.setText("device=cpu")
    page.b_edit.setText("device=cuda:0")
    page.metric_combo.setCurrentIndex(page.metric_combo.findData("throughput"))
    _check(qtbot, page, "2")
    assert page.verdicts() == ["CONFIRMED"]
    return page


def _check(qtbot: Any, page: ClaimsPage, factor: str, relation: str = "≥") -> None:
    page.factor_edit.setText(factor)
    page.relation_combo.setCurrentIndex(page.relation_combo.findData(relation))
    with qtbot.waitSignal(page.controller.claimsChecked, timeout=TIMEOUT_MS):
        page.check_button.click()


def test_claims_confirmed_and_refuted_on_known_ratios(
    qtbot: Any, tmp_path: Path, url: str, make_controller: Any
) -> None:
    page = _claims(qtbot, make_controller(url))
    ratio = page.table.item(0, 1).text()
    assert ratio.startswith("2.5") and "[" in ratio  # 2.5× with its interval
    assert page.table.item(0, 0).text() == "B ≥ 2 × A on throughput"
    assert page.table.item(0, 4).text() == "A: cpu · torch (3 runs)\nB: cuda:0 · torch (3 runs)"
    assert page.table.item(0, 4).toolTip().startswith("A: cpu · torch (3 runs: ")
    _check(qtbot, page, "3")
    assert page.verdicts() == ["REFUTED"]
    assert "below 3" in page.table.item(0, 3).text()

    claims = tmp_path / "claims.toml"
    claims.write_text(
        '[[claim]]\nname = "GPU at 2x"\nmetric = "throughput"\nclaim = "B >= 2 * A"\n'
        'a = { device = "cpu" }\nb = { device = "cuda:0" }\n\n'
        '[[claim]]\nmetric = "throughput"\nclaim = "B <= 2 * A"\n'
        'a = "device=cpu"\nb = "device=cuda:0"\n',
        encoding="utf-8",
    )
    with qtbot.waitSignal(page.controller.claimsChecked, timeout=TIMEOUT_MS):
        page.load_claims_file(claims)
    assert page.verdicts() == ["CONFIRMED", "REFUTED"]
    assert page.table.item(0, 0).text() == "GPU at 2x: B ≥ 2 × A on throughput"
    colours = [page.table.item(r, COL_VERDICT).foreground().color().name() for r in (0, 1)]
    assert colours[0] != colours[1]  # the verdicts in their own colours


def test_claims_bad_input_shows_the_message_and_changes_nothing(
    qtbot: Any, tmp_path: Path, url: str, make_controller: Any
) -> None:
    page = _claims(qtbot, make_controller(url))
    page.factor_edit.setText("lots")
    page.check_button.click()
    assert page.banner.level is Level.ERROR
    assert page.banner.text == "Factor: 'lots' is not a number."
    assert page.check_button.isEnabled() and page.verdicts() == ["CONFIRMED"]

    page.factor_edit.setText("2")
    page.b_edit.setText("gpus=8")
    page.check_button.click()
    assert page.banner.text.startswith("Cannot read 'gpus=8' in the side 'gpus=8'")

    bad = tmp_path / "bad.toml"
    bad.write_text("[[claim]]\nmetric = 3\n", encoding="utf-8")
    page.load_claims_file(bad)
    assert page.banner.text == "claim 1: give a, b and metric."
    page.load_claims_file(tmp_path / "missing.toml")
    assert page.banner.text.startswith("Cannot read the claims file")
    assert page.verdicts() == ["CONFIRMED"]

    # a side that matches no run: the service's message, as is
    page.b_edit.setText("tag=nowhere")
    with qtbot.waitSignal(page.controller.claimsFailed, timeout=TIMEOUT_MS) as blocker:
        page.check_button.click()
    assert page.banner.level is Level.ERROR and page.banner.text == blocker.args[0]
    assert "No finished run matches side B (tag nowhere)" in page.banner.text
    assert page.check_button.isEnabled() and page.verdicts() == ["CONFIRMED"]


def test_the_window_opens_both_pages(window: Any) -> None:
    assert isinstance(window.show_page("sizing"), SizingPage)
    assert isinstance(window.show_page("claims"), ClaimsPage)
