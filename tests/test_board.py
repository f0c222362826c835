"""The verdict board picks the right best configuration per question from runs with known figures.

Figures of report_fixtures.make_run follow from its arguments: throughput = batch / mean latency,
energy per inference = power × mean latency / batch. So at batch 32:
cpu · torch (10 ms, 50 W): 3,200 items/s, 15.6 mJ; cuda:0 (4 ms, 300 W): 8,000 items/s, 37.5 mJ;
cpu · onnxruntime (8 ms, 30 W): 4,000 items/s, 7.5 mJ. The fastest is not the most efficient.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.cost import CostProfile
from wattbench.domain.result import FLAG_NOT_CONVERGED, RunResult
from wattbench.engine.board import ESTIMATE, HARDWARE_ONLY, MEASURED, Board
from wattbench.service.workbench import compare_loaded

from tests.report_fixtures import make_run

CPU = "cpu · torch"
GPU = "cuda:0 · torch"
ORT = "cpu · onnxruntime"


def _flagged(run: RunResult) -> RunResult:
    return run.with_(flags=(*run.flags, FLAG_NOT_CONVERGED))


def _runs() -> list[RunResult]:
    return (
        [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2)]
        + [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (3, 4)]
        + [make_run(seed=s, runtime="onnxruntime", mean_ms=8, power_w=30) for s in (5, 6)]
    )


def _board(runs: list[RunResult], profiles: tuple[CostProfile, ...] = ()) -> Board:
    board = compare_loaded(runs, cost_profiles=profiles).board
    assert board is not None
    return board


def _profile(device: str, price: float, tariff: float | None = 0.2) -> CostProfile:
    return CostProfile(
        device=device,
        purchase_price_usd=price,
        amortization_years=3,
        utilization=0.5,
        electricity_usd_per_kwh=tariff,
    )


def test_fastest_and_most_efficient_differ() -> None:
    board = _board(_runs())
    thr = board.answer("throughput")
    assert thr.winner is not None and thr.winner.label == GPU
    assert thr.runner_up is not None and thr.runner_up.label == ORT
    assert thr.winner.ratio is not None and thr.winner.ratio.value is not None
    assert abs(thr.winner.ratio.value - 2.5) < 0.05  # 8,000 / 3,200
    assert thr.winner.ratio.kind == "faster"
    assert thr.lead is not None and thr.lead.value is not None
    assert abs(thr.lead.value - 2.0) < 0.05  # 8,000 / 4,000
    energy = board.answer("energy")
    assert energy.winner is not None and energy.winner.label == ORT
    assert energy.runner_up is not None and energy.runner_up.label == CPU
    assert abs(energy.winner.value.value - 0.0075) < 0.0002
    ppw = board.answer("perf-per-watt")
    assert ppw.winner is not None and ppw.winner.label == ORT
    assert ppw.winner.ratio is not None and ppw.winner.ratio.kind == "better"
    # 800 calls a run: enough effective samples for p99 to be a headline figure
    p99 = board.answer("latency-p99")
    assert p99.winner is not None and p99.winner.label == GPU
    assert p99.winner.ratio is not None and p99.winner.ratio.kind == "faster"
    cells = thr.cells()
    assert cells[1] == GPU and "items/s" in cells[2] and "faster" in cells[3]
    assert ORT in cells[4] and "best is 2.00×" in cells[4]


def test_p99_is_asked_only_where_it_is_a_headline() -> None:
    few = [make_run(seed=s, mean_ms=10, n=120) for s in (1, 2)] + [
        make_run(seed=s, device="cuda:0", mean_ms=4, n=120) for s in (3, 4)
    ]
    assert all(a.question != "latency-p99" for a in _board(few).answers)
    # the baseline's p99 is a headline, another configuration's is not: that one is not ranked
    mixed = _runs()[:2] + [make_run(seed=s, device="cuda:0", mean_ms=4, n=120) for s in (3, 4)]
    p99 = _board(mixed).answer("latency-p99")
    assert p99.winner is not None and p99.winner.label == CPU and p99.runner_up is None


def test_an_unreliable_run_never_wins() -> None:
    # three times as fast and ten times as frugal as anything else, but not converged
    cheat = [
        _flagged(make_run(seed=s, device="cpu", batch=16, mean_ms=1, power_w=5)) for s in (7, 8)
    ]
    board = _board(_runs() + cheat)
    for q in ("throughput", "energy", "perf-per-watt"):
        a = board.answer(q)
        assert a.winner is not None and "b16" not in a.winner.label, q
        assert a.runner_up is not None and "b16" not in a.runner_up.label, q
    assert len(board.not_ranked) == 1 and "b16" in board.not_ranked[0]
    assert "unreliable — not converged" in board.not_ranked[0]
    assert any(line.startswith("Not ranked:") for line in board.footnote_lines())


def test_an_unreliable_baseline_does_not_win_and_its_ratios_say_so() -> None:
    # the baseline is the fastest of all, but not converged
    fast_base = [_flagged(make_run(seed=s, mean_ms=1, power_w=50)) for s in (1, 2)]
    board = _board(fast_base + _runs()[2:])
    thr = board.answer("throughput")
    assert thr.winner is not None and thr.winner.label == GPU
    assert thr.winner.ratio is not None and thr.winner.ratio.kind == "unreliable"
    assert "unreliable" in thr.winner.ratio_text()


def test_questions_without_figures_say_why_once() -> None:
    runs = [make_run(seed=s, mean_ms=10, power_w=None) for s in (1, 2)] + [
        make_run(seed=s, device="cuda:0", mean_ms=4, power_w=None) for s in (3, 4)
    ]
    board = _board(runs)
    energy, ppw = board.answer("energy"), board.answer("perf-per-watt")
    assert energy.winner is None and ppw.winner is None
    assert energy.mark and energy.mark == ppw.mark  # one reason, one footnote
    assert energy.cells()[1] == f"n/a{energy.mark}"
    reasons = [line for line in board.footnotes if "no power sensor" in line]
    assert len(reasons) == 1 and reasons[0].startswith(energy.mark)
    # no estimate was made: no estimate rows either
    assert all(a.basis == MEASURED for a in board.answers)


def test_estimates_and_hardware_only_costs_are_ranked_apart() -> None:
    cpu = [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2)]
    gpu_estimated = [
        make_run(seed=s, device="cuda:0", mean_ms=4, power_w=250, estimate_only=True)
        for s in (3, 4)
    ]
    board = _board(cpu + gpu_estimated, (_profile("cpu", 4000), _profile("cuda:0", 30000)))
    measured = board.answer("energy")
    assert measured.winner is not None and measured.winner.label == "cpu · torch"
    assert measured.runner_up is None  # the estimate is not ranked against it
    est = board.answer("energy", ESTIMATE)
    assert est.winner is not None and est.winner.label == "cuda:0 · torch"
    assert est.heading == "Energy per inference (estimate)" and "estimate" in est.note
    # $: the CPU's is complete (measured energy); the GPU's energy part is an estimate
    cost = board.answer("cost")
    assert cost.winner is not None and cost.winner.label == "cpu · torch"
    cost_est = board.answer("cost", ESTIMATE)
    assert cost_est.winner is not None and cost_est.winner.label == "cuda:0 · torch"
    # the hardware part needs no power reading: 30,000 $ over 3 years at 50 % for 8,000/s
    hw = board.answer("cost", HARDWARE_ONLY)
    assert hw.winner is not None and hw.winner.label == "cuda:0 · torch"
    expected = 30000 / (3 * 8766 * 0.5) * (1e6 / 8000 / 3600)
    assert abs(hw.winner.value.value / expected - 1) < 0.02
    assert "lower bound" in hw.note


def test_generation_runs_get_token_questions() -> None:
    runs = [make_run(seed=s, generation=True, batch=1, mean_ms=40) for s in (1, 2)] + [
        make_run(seed=s, device="cuda:0", generation=True, batch=1, mean_ms=10) for s in (3, 4)
    ]
    board = _board(runs)
    questions = {a.question for a in board.answers}
    assert {"decode-tokens-per-s", "ttft", "tpot", "tokens-per-j"} <= questions
    assert "throughput" not in questions
    tps = board.answer("decode-tokens-per-s")
    assert tps.winner is not None and tps.winner.label.startswith("cuda:0")
    tpj = board.answer("tokens-per-j")
    assert tpj.winner is not None
    assert "/token" in tpj.cells()[2]  # J per token is read too


def test_another_model_is_not_ranked() -> None:
    other = [
        make_run(seed=s, device="cuda:0", mean_ms=1, model="builtin:mlp", model_name="MLP")
        for s in (9, 10)
    ]
    board = _board(_runs() + other)
    winner = board.answer("throughput").winner
    assert winner is not None and winner.label == f"{GPU} · builtin:resnet50"
    assert any("another model" in line for line in board.not_ranked)


def test_cli_prints_the_board_first_and_its_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "board.sqlite")
    runs = [*_runs(), _flagged(make_run(seed=7, batch=16, mean_ms=1, power_w=5))]
    with open_store(db) as s:
        for r in runs:
            s.save_run(r)
    ids = [r.id for r in runs]
    assert main(["--db", db, "compare", *ids, "--brief"]) == 0
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0].startswith("Verdict board — baseline cpu · torch · b32 (2 runs)")
    thr = next(i for i, line in enumerate(lines) if line.startswith("Throughput"))
    assert "cuda:0 · torch · b32" in lines[thr] and "2.50×" in lines[thr]
    assert "cpu · onnxruntime · b32" in lines[thr + 1] and "lead 2.00×" in lines[thr + 1]
    energy = next(line for line in lines if line.startswith("Energy per inference"))
    assert "cpu · onnxruntime · b32" in energy
    assert "Not ranked: cpu · torch · b16: unreliable — not converged." in lines
    assert "Baseline:" not in out  # --brief: the board only
    assert main(["--db", db, "compare", *ids, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    answers = {a["question"]: a for a in doc["board"]["answers"] if a["basis"] == MEASURED}
    assert answers["throughput"]["winner"]["label"] == "cuda:0 · torch · b32"
    assert answers["perf-per-watt"]["winner"]["label"] == "cpu · onnxruntime · b32"
    assert answers["cost"]["winner"] is None and answers["cost"]["na_reasons"]
