"""Documented peaks, MFU and per-card figures, checked against hand-computed values and the
device names runtimes really report."""

from __future__ import annotations

import math

import pytest
from wattbench.domain.errors import BadInputError
from wattbench.domain.peaks import (
    DOCUMENTED_PEAKS,
    PEAK_PRECISIONS,
    DeviceFigures,
    device_model,
    mfu,
    name_words,
    peak_for,
    per_card,
)

MI250 = "AMD Instinct MI250X / MI250"  # what ROCm's torch reports for each die of both cards


@pytest.mark.parametrize(
    ("name", "precision", "model", "tflops"),
    [
        ("NVIDIA H200", "bf16", "NVIDIA H200 SXM", 989.5),
        ("NVIDIA H200", "torch.bfloat16", "NVIDIA H200 SXM", 989.5),
        ("NVIDIA H200", "fp32", "NVIDIA H200 SXM", 67.0),
        ("NVIDIA A100-SXM4-80GB", "bf16", "NVIDIA A100 SXM4 80 GB", 312.0),
        ("NVIDIA A100-SXM4-40GB", "tf32", "NVIDIA A100 SXM4 40 GB", 156.0),
        ("nvidia a100 sxm4 80 GB", "float16", "NVIDIA A100 SXM4 80 GB", 312.0),
        ("NVIDIA H100 80GB HBM3", "fp16", "NVIDIA H100 SXM", 989.5),
        ("NVIDIA H100 PCIe", "bf16", "NVIDIA H100 PCIe", 756.5),
        ("Tesla V100-SXM2-32GB", "fp16", "NVIDIA V100 SXM2", 125.0),
        ("NVIDIA A10", "tf32", "NVIDIA A10", 62.5),
        ("NVIDIA L4", "bf16", "NVIDIA L4", 121.0),
        ("AMD Instinct MI300X", "bf16", "AMD Instinct MI300X", 1307.4),
        ("AMD Instinct MI300X", "tf32", "AMD Instinct MI300X", 653.7),
    ],
)
def test_real_device_names_find_their_documented_peak(
    name: str, precision: str, model: str, tflops: float
) -> None:
    peak = peak_for(name, precision)
    assert peak is not None
    assert peak.model == model
    assert peak.tflops == pytest.approx(tflops)
    assert not peak.per_die
    assert "dense" in peak.label and model.split()[0] in peak.label


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA GH200 480GB",  # not an H200
        "NVIDIA H200 NVL",  # lower clocks than the SXM part
        "NVIDIA H100 NVL",
        "NVIDIA A10G",  # not an A10
        "NVIDIA A100-PCIE-40GB",  # no PCIe figures in the table
        "NVIDIA L40S",  # not an L4
        "Tesla V100-PCIE-16GB",  # PCIe V100 runs at lower clocks than SXM2
        "NVIDIA GeForce RTX 4090",
        "cpu",
        "",
    ],
)
def test_names_the_table_does_not_document_have_no_peak(name: str) -> None:
    assert peak_for(name, "bf16") is None


def test_precisions_a_device_has_no_figure_for_have_no_peak() -> None:
    assert peak_for("Tesla V100-SXM2-16GB", "bf16") is None  # Volta has no bf16 tensor cores
    assert peak_for(MI250, "tf32") is None
    assert peak_for("NVIDIA H200", "fp8") is None  # not a precision the table holds
    assert peak_for("NVIDIA H200", "int8") is None


def test_a_die_of_an_mi250_gets_half_the_cards_peak() -> None:
    mi250 = peak_for(MI250, "bf16", compute_units=104)
    mi250x = peak_for(MI250, "bf16", compute_units=110)
    assert mi250 is not None and mi250x is not None
    assert (mi250.model, mi250x.model) == ("AMD Instinct MI250", "AMD Instinct MI250X")
    assert mi250.tflops == pytest.approx(362.1 / 2)
    assert mi250x.tflops == pytest.approx(383.0 / 2)
    assert mi250.per_die and mi250.dies_per_card == 2
    assert "per die" in mi250.label and "362.1 per card" in mi250.label
    assert mi250.note == ""  # the compute units settled it


def test_a_name_that_fits_two_models_takes_the_higher_peak_and_says_so() -> None:
    peak = peak_for(MI250, "fp16")
    assert peak is not None
    assert peak.model == "AMD Instinct MI250X"
    assert peak.tflops == pytest.approx(191.5)
    assert "also fits AMD Instinct MI250" in peak.label
    only_mi250 = peak_for("AMD Instinct MI250", "fp16")
    assert only_mi250 is not None and only_mi250.tflops == pytest.approx(181.05)
    assert only_mi250.note == ""


def test_name_words_join_sizes_and_split_punctuation() -> None:
    assert name_words("NVIDIA A100-SXM4-80GB") == {"nvidia", "a100", "sxm4", "80gb"}
    assert name_words("A100 SXM4 80 GB") == {"a100", "sxm4", "80gb"}


def test_the_table_is_dense_figures_at_the_four_precisions_with_sources() -> None:
    for entry in DOCUMENTED_PEAKS:
        assert entry.source and entry.tflops and entry.peak_per_card
        assert {p for p, _ in entry.tflops} <= set(PEAK_PRECISIONS)
        assert all(t > 0 for _, t in entry.tflops)
        assert entry.dies_per_card >= 1
    assert device_model(MI250) is not None
    assert {e.dies_per_card for e in DOCUMENTED_PEAKS if "MI250" in e.model} == {2}


def test_mfu_is_achieved_over_the_peak() -> None:
    peak = peak_for("NVIDIA H200", "bf16")
    fraction, words = mfu(395.8, peak)
    assert fraction == pytest.approx(395.8 / 989.5)
    assert words.startswith("MFU 40.0 %")
    assert "989.5 TFLOP/s bf16 dense" in words
    die = peak_for(MI250, "bf16", compute_units=104)
    fraction, _ = mfu(90.525, die)  # half the die's peak
    assert fraction == pytest.approx(0.5)


def test_mfu_without_a_peak_is_na_with_its_reason() -> None:
    fraction, words = mfu(
        10.0, peak_for("NVIDIA A10G", "bf16"), device_name="NVIDIA A10G", precision="bf16"
    )
    assert fraction is None
    assert words == "n/a: no documented peak for NVIDIA A10G at bf16"
    fraction, words = mfu(
        0.5, None, device_name="AMD EPYC 7763 64-Core Processor", precision="fp32"
    )
    assert fraction is None and words == "n/a: no documented peak for this CPU"


def test_mfu_refuses_figures_that_cannot_be_measured() -> None:
    peak = peak_for("NVIDIA L4", "fp16")
    assert mfu(float("nan"), peak)[0] is None
    assert mfu(-1.0, peak)[0] is None
    fraction, words = mfu(130.0, peak)  # above the 121 TFLOP/s peak: a wrong FLOP count
    assert fraction is None and "above the documented peak" in words


def test_two_mi250_dies_with_one_power_reading_make_one_card() -> None:
    dies = [
        DeviceFigures("cuda:1", MI250, 700.0, None),  # given out of order on purpose
        DeviceFigures("cuda:0", MI250, 500.0, 36_000.0),  # the card's one reading
    ]
    (card,) = per_card(dies, interval_s=60.0)
    assert card.complete
    assert card.tokens_per_s == pytest.approx(1200.0)
    assert card.energy_j == pytest.approx(36_000.0)  # taken once, not doubled
    assert card.j_per_token == pytest.approx(36_000.0 / (1200.0 * 60.0))  # 0.5 J/token
    assert [d.device for d in card.devices] == ["cuda:0", "cuda:1"]
    assert card.label == (
        "per card: 2 dies (cuda:0, cuda:1), one power reading (on cuda:0) for the card"
    )
    assert card.card.startswith("cuda card 0")


def test_dies_with_a_reading_each_are_summed() -> None:
    dies = [
        DeviceFigures("cuda:2", MI250, 300.0, 1000.0),
        DeviceFigures("cuda:3", MI250, 100.0, 3000.0),
    ]
    (card,) = per_card(dies, interval_s=10.0)
    assert card.card.startswith("cuda card 1")
    assert card.energy_j == pytest.approx(4000.0)
    assert card.j_per_token == pytest.approx(4000.0 / 4000.0)
    assert "each die its own power reading" in card.label


def test_a_reading_on_the_second_die_only_is_not_taken_for_the_card() -> None:
    dies = [DeviceFigures("cuda:0", MI250, 300.0, None), DeviceFigures("cuda:1", MI250, 1.0, 9.0)]
    (card,) = per_card(dies, interval_s=1.0)
    assert card.tokens_per_s == pytest.approx(301.0)
    assert card.energy_j is None and card.j_per_token is None
    assert "energy n/a" in card.label


def test_half_a_card_is_said_so_and_not_summed() -> None:
    dies = [
        DeviceFigures("cuda:0", MI250, 500.0, 20_000.0),
        DeviceFigures("cuda:1", MI250, 700.0, None),
        DeviceFigures("cuda:2", MI250, 450.0, 15_000.0),  # card 1 without its cuda:3
    ]
    whole, half = per_card(dies, interval_s=30.0)
    assert whole.complete and whole.tokens_per_s == pytest.approx(1200.0)
    assert not half.complete
    assert half.tokens_per_s is None and half.energy_j is None and half.j_per_token is None
    assert half.label.startswith("incomplete card: 1 of its 2 dies measured (cuda:2)")
    assert [d.tokens_per_s for d in half.devices] == [450.0]  # the die's own figure is kept


def test_one_die_per_card_devices_pass_through_unchanged() -> None:
    devices = [
        DeviceFigures("cuda:1", "NVIDIA A100-SXM4-40GB", 800.0, None),
        DeviceFigures("cuda:0", "NVIDIA A100-SXM4-40GB", 1000.0, 24_000.0),
    ]
    first, second = per_card(devices, interval_s=60.0)
    assert (first.card, second.card) == ("cuda:0", "cuda:1")
    assert first.label == second.label == "per card = per device"
    assert first.model == "NVIDIA A100 SXM4 40 GB"
    assert first.tokens_per_s == 1000.0 and first.energy_j == 24_000.0
    assert first.j_per_token == pytest.approx(24_000.0 / 60_000.0)
    assert second.energy_j is None and second.j_per_token is None
    (unknown,) = per_card([DeviceFigures("cpu", "AMD EPYC 7763", 12.5, 600.0)], interval_s=4.0)
    assert unknown.complete and unknown.model == "AMD EPYC 7763"
    assert unknown.j_per_token == pytest.approx(600.0 / 50.0)


def test_a_die_without_a_device_index_cannot_be_placed_on_a_card() -> None:
    (card,) = per_card([DeviceFigures("gcd", MI250, 10.0, 5.0)], interval_s=1.0)
    assert not card.complete and card.tokens_per_s is None
    assert "no device index" in card.label


@pytest.mark.parametrize(
    ("devices", "interval_s"),
    [
        ([DeviceFigures("cuda:0", MI250, 1.0, None)], 0.0),
        ([DeviceFigures("cuda:0", MI250, 1.0, None)], math.inf),
        ([DeviceFigures("cuda:0", MI250, -1.0, None)], 1.0),
        ([DeviceFigures("cuda:0", MI250, 1.0, math.nan)], 1.0),
        ([DeviceFigures("cuda:0", MI250, 1.0, None)] * 2, 1.0),
    ],
)
def test_figures_that_are_not_measurements_are_refused(
    devices: list[DeviceFigures], interval_s: float
) -> None:
    with pytest.raises(BadInputError):
        per_card(devices, interval_s=interval_s)
