"""Numbers and units for people, one way everywhere: the CLI, the GUI and the reports.

A figure that is unknown reads "n/a" (with its reason where there is room), never 0.
``number`` keeps three significant digits, writes whole thousands with separators
("1,234,567", never "1.23e+06" or "1234567") and uses scientific notation only far outside
everyday sizes (below 0.0001 or from a trillion up). An interval is written out as its ends
in brackets, "[16.8–71.7]", never as a ± that would cross zero; a run's precision is ``rho``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import pairwise

from wattbench.domain.quality import ETA_MEANING, ETA_RANGE_TEXT, eta_out_of_range

NA = "n/a"
SCIENTIFIC_BELOW = 1e-4
SCIENTIFIC_FROM = 1e12


# control characters (but tab and line break) and the invisible marks that reorder or hide text:
# a name like "report\u202egnp.exe" must not print as "reportexe.png"
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def printable(text: object) -> str:
    """``text`` as it may be shown: control characters and direction marks written out as
    ``\\u202e`` (visible, not obeyed). Every user string printed or rendered goes through here."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def na(reason: str | None) -> str:
    """The text shown instead of a number that could not be measured."""
    return f"{NA} — {reason}" if reason else NA


def number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (every integer digit from 1,000 up)."""
    if value is None or not math.isfinite(value):
        return NA
    if value == 0:
        return "0"
    size = abs(value)
    if size < SCIENTIFIC_BELOW or size >= SCIENTIFIC_FROM:
        return f"{value:.{digits - 1}e}"
    rounded = float(f"{value:.{digits - 1}e}")  # 9.996 is 10.0, not 9.996 or 10.00
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:,.{decimals}f}" if decimals else f"{value:,.0f}"


def count(n: int | None) -> str:
    """A whole count with separators: 1,234,567."""
    return NA if n is None else f"{n:,}"


def with_unit(value: float | None, unit: str, digits: int = 3) -> str:
    """'1,234 items/s'; 'n/a' when unknown."""
    return NA if not finite(value) else f"{number(value, digits)} {unit}".rstrip()


def _scaled(value: float | None, steps: tuple[tuple[float, str], ...], digits: int) -> str:
    if value is None or not math.isfinite(value):
        return NA
    size = abs(value)
    for scale, unit in steps:
        if size >= scale:
            return f"{number(value / scale, digits)} {unit}"
    scale, unit = steps[-1]
    return f"{number(value / scale, digits)} {unit}"


def duration_ns(value_ns: float | None, digits: int = 3) -> str:
    """A latency in the unit that reads best: 812 ns, 35.2 µs, 4.10 ms, 1.25 s."""
    return _scaled(value_ns, ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns")), digits)


def duration_s(value_s: float | None) -> str:
    """A phase's length: 0.42 s, 12.3 s, 3 min 05 s."""
    if value_s is None or not math.isfinite(value_s):
        return NA
    if value_s < 60:
        return f"{number(value_s)} s"
    minutes, seconds = divmod(round(value_s), 60)
    return f"{minutes} min {seconds:02d} s"


def energy_j(value_j: float | None, digits: int = 3) -> str:
    """An energy in J, mJ, µJ or nJ."""
    return _scaled(value_j, ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ")), digits)


def power_w(value_w: float | None) -> str:
    return with_unit(value_w, "W")


def size_bytes(n: float | None) -> str:
    """A memory size in binary units: 512 B, 3.50 MiB, 1.20 GiB."""
    return _scaled(n, ((2.0**30, "GiB"), (2.0**20, "MiB"), (2.0**10, "KiB"), (1.0, "B")), 3)


def percent(fraction: float | None, digits: int = 2) -> str:
    """0.0123 -> '1.2 %' (two significant digits unless asked for more)."""
    if fraction is None or not math.isfinite(fraction):
        return NA
    return f"{number(fraction * 100, digits)} %"


def interval(
    lo: float | None, hi: float | None, fmt: Callable[[float | None], str] = number
) -> str:
    """'1,220–1,250' (each end through ``fmt``), or '' when the interval is unknown."""
    if not (finite(lo) and finite(hi)):
        return ""
    return f"{fmt(lo)}–{fmt(hi)}"


def span(lo: float | None, hi: float | None, fmt: Callable[[float | None], str] = number) -> str:
    """'[1,220–1,250]': an interval as its two ends (asymmetric as it is), or '' when unknown."""
    text = interval(lo, hi, fmt)
    return f"[{text}]" if text else ""


def estimate(
    value: float | None,
    lo: float | None,
    hi: float | None,
    fmt: Callable[[float | None], str] = number,
    *,
    missing: str = "no interval",
) -> str:
    """'1,234 [1,220–1,250]': a figure with its 95 % interval, or '1,234 (no interval)'."""
    if not finite(value):
        return NA
    brackets = span(lo, hi, fmt)
    return f"{fmt(value)} {brackets}" if brackets else f"{fmt(value)} ({missing})"


def plus_minus(rel: float | None) -> str:
    """A symmetric relative uncertainty, '±2.0 %', while it stays clear of zero; one as large
    as the figure would cross zero, and is said in words instead."""
    if rel is None or not math.isfinite(rel) or rel < 0:
        return NA
    if rel >= 1:
        return "uncertainty at least the figure itself"
    return f"±{percent(rel)}"


def rho(value: float | None) -> str:
    """A run's precision, the one way it is shown everywhere: 'ρ 1.3 %' — the relative
    half-width of the 95 % interval of its mean latency."""
    return f"ρ {percent(value)}"


RHO_MEANING = "half-width of the mean latency's 95 % interval, relative to the mean"


def eta(value: float | None, *, meaning: bool = True) -> str:
    """The harness efficiency with its meaning (left out where a caption gives it), flagged
    when it is outside its sane range."""
    explained = f" ({ETA_MEANING})" if meaning else ""
    if value is None or not math.isfinite(value):
        return f"η {NA}{explained}"
    text = f"η {number(value)}{explained}"
    if eta_out_of_range(value):
        text += (
            f" — outside its sane range {ETA_RANGE_TEXT}: the host changed speed during the "
            "run, so this is not a harness figure"
        )
    return text


def per_call_label(batch: int) -> str:
    """What a latency measures: 'per call' (one call runs a whole batch)."""
    return "per call" if batch <= 1 else f"per call (batch of {batch})"


def per_item(value_ns: float | None, batch: int) -> str:
    """A per-call latency spread over the items of its batch: '0.512 ms per item'."""
    if value_ns is None or not math.isfinite(value_ns) or batch < 1:
        return NA
    return f"{duration_ns(value_ns / batch)} per item"


def ratio(value: float | None, lo: float | None = None, hi: float | None = None) -> str:
    """A ratio such as '1.84× [1.79–1.90]'."""
    if not finite(value):
        return NA
    brackets = span(lo, hi)
    return f"{number(value)}×" + (f" {brackets}" if brackets else "")


def timestamp(when: str | datetime | None) -> str:
    """An ISO timestamp (or datetime) shown in local time, to the minute."""
    if not when:
        return ""
    if isinstance(when, str):
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            return when
    else:
        moment = when
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


MAX_VALUE_TICKS = 10  # a log axis over at most this many distinct data values is ticked at them


def tick_label(value: float) -> str:
    """An axis tick as a plain number: '1', '32', '0.25', '2,000' (never '1e+03'); the few
    decimals it needs and no more. Scientific only far outside everyday sizes, as ``number``."""
    if not math.isfinite(value):
        return NA
    if value == 0:
        return "0"
    if not SCIENTIFIC_BELOW <= abs(value) < SCIENTIFIC_FROM:
        return f"{value:.2g}"
    for decimals in range(7):
        text = f"{value:,.{decimals}f}"
        if math.isclose(float(text.replace(",", "")), value, rel_tol=1e-6):
            return text
    return number(value)


Ticks = list[tuple[float, str]]


def log_tick_values(
    lo: float, hi: float, values: Sequence[float] = (), *, slack: float = 1.0
) -> tuple[Ticks, Ticks]:
    """(major, minor) ticks of a log axis from ``lo`` to ``hi``, in data units, labelled as
    plain numbers (``tick_label``). Data that are a few distinct ``values`` (batch sizes) are
    ticked at those values: a batch axis reads 1, 8, 32. Otherwise 1-2-5 steps: the powers of
    ten major, the 2s and 5s minor (all major on a span too narrow for two powers of ten).
    Ticks run from ``lo / slack`` to ``hi × slack``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi < lo:
        return [], []
    first, last = lo / slack, hi * slack
    distinct = sorted({float(v) for v in values if math.isfinite(v) and v > 0})
    if 1 <= len(distinct) <= MAX_VALUE_TICKS and _spread_out(distinct):
        return [(v, tick_label(v)) for v in distinct if first <= v <= last], []
    major: Ticks = []
    minor: Ticks = []
    for exponent in range(math.floor(math.log10(first)), math.ceil(math.log10(last)) + 1):
        for step in (1, 2, 5):
            value = float(f"{step}e{exponent}")  # exact decimal: 0.3 is not 0.30000000000000004
            if first <= value <= last:
                (major if step == 1 else minor).append((value, tick_label(value)))
    if len(major) < 2:  # a narrow span: label the 2s and 5s too
        major, minor = sorted(major + minor), []
    if len(major) < 2:  # narrower still: every digit, else the two ends
        major = [
            (value, tick_label(value))
            for exponent in range(math.floor(math.log10(first)), math.ceil(math.log10(last)) + 1)
            for step in range(1, 10)
            if first <= (value := float(f"{step}e{exponent}")) <= last
        ]
        if len(major) < 2:
            major = [(v, tick_label(float(f"{v:.3g}"))) for v in sorted({lo, hi})]
    return major, minor


def _spread_out(values: Sequence[float]) -> bool:
    """Whether ticks at ``values`` stand apart on a log axis (none closer than 1/12 of it)."""
    if len(values) < 2:
        return True
    span = math.log10(values[-1] / values[0])
    gaps = [math.log10(b / a) for a, b in pairwise(values)]
    return min(gaps) >= span / 12


def log_ticks(lo: float, hi: float, values: Sequence[float] = ()) -> list[list[tuple[float, str]]]:
    """``log_tick_values`` for an axis that plots log10(x) (pyqtgraph's log mode), in the
    form ``AxisItem.setTicks`` takes: [major, minor], positions as log10 of the value."""
    major, minor = log_tick_values(lo, hi, values, slack=1.5)
    return [[(math.log10(v), text) for v, text in level] for level in (major, minor)]
