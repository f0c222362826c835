"""The one formatter of numbers and units that the CLI, the GUI and the reports share."""

from __future__ import annotations

import math

import pytest
from wattbench.domain import units


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1_234_567, "1,234,567"),  # every integer digit, with separators: never 1.23e+06
        (14963.4, "14,963"),
        (3519.04, "3,519"),
        (999.6, "1,000"),
        (123.4, "123"),
        (12.345, "12.3"),
        (9.996, "10.0"),  # rounding carries into the next digit without a fourth one
        (0.5, "0.500"),
        (0.00579, "0.00579"),
        (1e-5, "1.00e-05"),  # far outside everyday sizes: scientific
        (2.5e12, "2.50e+12"),
        (0, "0"),
        (-3.21, "-3.21"),
        (None, "n/a"),
        (math.nan, "n/a"),
        (math.inf, "n/a"),
    ],
)
def test_number(value: float | None, text: str) -> None:
    assert units.number(value) == text


def test_units_pick_the_scale_that_reads_best() -> None:
    assert [units.duration_ns(v) for v in (812, 35_200, 4.1e6, 1.25e9)] == [
        "812 ns",
        "35.2 µs",
        "4.10 ms",
        "1.25 s",
    ]
    assert [units.energy_j(v) for v in (2.5, 0.0123, 4.2e-6, 3e-9)] == [
        "2.50 J",
        "12.3 mJ",
        "4.20 µJ",
        "3.00 nJ",
    ]
    assert units.duration_s(185) == "3 min 05 s" and units.duration_s(0.42) == "0.420 s"
    assert units.size_bytes(3.5 * 2**20) == "3.50 MiB"
    assert units.percent(0.0123) == "1.2 %" and units.percent(0.0123, 3) == "1.23 %"
    assert units.percent(None) == "n/a"
    assert units.with_unit(1_234_567, "items/s") == "1,234,567 items/s"
    assert units.power_w(None) == "n/a"


def test_intervals_ratios_and_na() -> None:
    assert units.ratio(1.84, 1.79, 1.9) == "1.84× [1.79–1.90]"
    assert units.ratio(2.0) == "2.00×"
    assert units.interval(1220, 1250) == "1,220–1,250"
    assert units.interval(None, 3) == ""
    assert units.interval(1e6, 2e6, units.duration_ns) == "1.00 ms–2.00 ms"
    assert units.na("no sensor") == "n/a — no sensor" and units.na(None) == "n/a"


def test_log_ticks_are_1_2_5_in_plain_numbers() -> None:
    major, minor = units.log_ticks(1, 32)
    assert [label for _, label in major] == ["1", "10"]
    assert [label for _, label in minor] == ["2", "5", "20"]  # 50 is past 32 × 1.5
