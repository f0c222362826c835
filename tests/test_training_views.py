"""Training runs on the verdict board, in the compare table and in the reports: their items are
trained tokens, so every figure a person reads says tokens, never items or inferences.

Figures of training_fixtures.training_run follow from its arguments: a step of 2 × accumulation
× 16 tokens takes step_ms; so at accumulation 2 (64 tokens) cpu at 20 ms and 50 W trains
3,200 tokens/s at 15.6 mJ per token; cuda:0 at 2 ms and 300 W trains 32,000 tokens/s at
9.4 mJ per token. FLOPs per token: 6 × 1,000,000 + 12 × 2 × 64 × 16 = 6,024,576.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from wattbench.domain.cost import CostProfile
from wattbench.domain.result import RunResult
from wattbench.domain.training import FLOPS_FORMULA
from wattbench.engine.board import TRAINING_QUESTIONS, Board
from wattbench.engine.metrics import METRICS, metric_value
from wattbench.engine.training_metrics import mfu_text
from wattbench.reports import write_report
from wattbench.reports.training import step_text
from wattbench.service.workbench import compare_loaded

from tests.report_fixtures import make_run
from tests.training_fixtures import training_run

CPU = "cpu · torch · fp32"
GPU = "cuda:0 · torch · bf16"
FLOPS = 6 * 1_000_000 + 12 * 2 * 64 * 16


def _runs() -> list[RunResult]:
    return [training_run(seed=s) for s in (1, 2)] + [gpu_run(s) for s in (3, 4)]


def gpu_run(seed: int) -> RunResult:
    return training_run(
        seed=seed, device="cuda:0", device_name="NVIDIA H200", step_ms=2, power_w=300,
        precision="bf16",
    )  # fmt: skip


def _profile() -> CostProfile:
    return CostProfile(
        device="cpu", purchase_price_usd=3000, amortization_years=3, utilization=0.5,
        electricity_usd_per_kwh=0.2,
    )  # fmt: skip


def _board(runs: list[RunResult], profiles: tuple[CostProfile, ...] = ()) -> Board:
    board = compare_loaded(runs, cost_profiles=profiles).board
    assert board is not None
    return board


def test_a_training_board_asks_the_training_questions_in_tokens() -> None:
    board = _board(_runs(), (_profile(),))
    assert {a.question for a in board.answers} == set(TRAINING_QUESTIONS)
    tps = board.answer("train-tokens-per-s")
    assert tps.winner is not None and tps.winner.label == GPU
    assert abs(tps.winner.value.value / 32_000 - 1) < 0.02
    figure, vs = tps.cells()[2:4]
    assert "tokens/s" in figure and "items" not in figure
    assert vs.endswith("faster")
    step = board.answer("step-time")
    assert step.title == "Step time (mean)" and step.winner is not None
    assert step.winner.label == GPU and "ms" in step.cells()[2]
    energy = board.answer("train-energy-per-token")
    assert energy.heading == "J per trained token"
    assert energy.winner is not None and energy.winner.label == GPU
    assert "mJ/token" in energy.cells()[2]
    assert abs(energy.winner.value.value / (300 * 0.002 / 64) - 1) < 0.02
    per_j = board.answer("train-tokens-per-j")
    assert per_j.winner is not None and "tokens/J" in per_j.cells()[2]
    cost = board.answer("cost-per-m-train-tokens")  # only the CPU has a cost profile
    assert cost.winner is not None and cost.winner.label == CPU
    assert cost.heading == "$ per 1M tokens trained"
    for a in board.answers:
        assert "items" not in " ".join(a.cells()) and "inference" not in " ".join(a.cells())


def test_achieved_tflops_with_mfu_beside_it_or_why_not() -> None:
    board = _board(_runs())
    tf = board.answer("train-tflops")
    assert tf.winner is not None and tf.runner_up is not None
    assert tf.winner.label == GPU
    assert abs(tf.winner.value.value / (32_000 * FLOPS / 1e12) - 1) < 0.02
    # the H200's documented bf16 dense peak is 989.5 TFLOP/s
    expected = tf.winner.value.value / 989.5 * 100
    mfu = re.search(r"MFU ([0-9.]+) %", tf.cells()[2])
    assert mfu is not None and abs(float(mfu.group(1)) / expected - 1) < 0.01
    assert "MFU n/a: no documented peak for this CPU" in tf.cells()[4]


def test_compare_shows_the_training_metrics_with_token_units() -> None:
    view = compare_loaded(_runs())
    metrics = view.comparison.metrics
    assert "throughput" not in metrics and "energy" not in metrics
    assert metrics[0] == "train-tokens-per-s"
    for m in metrics:
        info = METRICS[m]
        assert "item" not in info.unit and "inference" not in info.label, m
    row = view.comparison.rows[0]
    sentence = view.comparison.verdict(row, "train-tokens-per-s", GPU, CPU)
    assert "trains" in sentence and "tokens per second" in sentence


def test_an_inference_run_has_no_training_figure_and_says_why() -> None:
    run = make_run(seed=1)
    iv, why = metric_value(run, "train-tokens-per-s")
    assert iv is None and why == "not a training run"


def test_a_training_report_speaks_of_tokens_and_shows_the_step(tmp_path: Path) -> None:
    runs = _runs()
    profiles = {"cpu": _profile()}
    html = write_report(runs, tmp_path / "t.html", cost_profiles=profiles).read_text()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "tokens/s" in text
    assert "J per trained token" in text
    assert "USD per million tokens trained" in text
    assert "per inference" not in text and "inferences/s" not in text and "items" not in text
    assert "Training step per run" in text
    assert "2 × 2 × 16 = 64 tokens" in text  # micro-batch × accumulation × sequence
    assert FLOPS_FORMULA.replace("'", "&#x27;") in text
    assert "6.9 → 5.2 over 40 steps (falls)" in text
    assert "documented peak 989.5 TFLOP/s bf16 dense" in text  # the H200's MFU, with its peak
    assert "n/a: no documented peak for this CPU" in text

    rows = list(csv.DictReader(io.StringIO(write_report(runs, tmp_path / "t.csv").read_text())))
    assert {r["train_tokens_per_step"] for r in rows} == {"64"}
    assert float(rows[0]["train_flops_per_token"]) == FLOPS
    assert float(rows[0]["train_metric_tokens_per_s"]) == pytest.approx(3200, rel=0.02)
    assert rows[0]["train_flops_formula"] == FLOPS_FORMULA

    doc = json.loads(write_report(runs, tmp_path / "t.json", cost_profiles=profiles).read_text())
    assert doc["metrics"]["train-tokens-per-s"]["unit"] == "tokens/s"
    assert doc["metrics"]["train-energy-per-token"]["label"] == "energy per trained token"
    assert "throughput" not in doc["metrics"]
    titles = {a["title"] for a in doc["board"]["answers"]}
    assert {"Trained tokens/s", "J per trained token", "$ per 1M tokens trained"} <= titles


def test_mfu_is_per_device_for_data_parallel_ranks() -> None:
    one = gpu_run(3)
    assert one.training is not None
    two = one.with_(training=replace(one.training, data_parallel=2))
    tflops = 400.0  # the node's: each of two ranks achieves 200 of the H200's 989.5
    assert mfu_text(one, tflops) == "MFU 40.4 %"
    assert mfu_text(two, tflops) == "MFU 20.2 % per device"
    assert two.training is not None
    assert step_text(two.training) == "2 × 2 × 16 × 2 ranks = 128 tokens"
