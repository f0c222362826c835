"""Numbers for people: units, intervals and "n/a — reason", never a silent 0."""

from __future__ import annotations

import logging
import math
from datetime import datetime

log = logging.getLogger(__name__)

NA = "n/a"


def na(reason: str | None) -> str:
    """The text shown instead of a number that could not be measured."""
    return f"{NA} — {reason}" if reason else NA


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sig(value: float, digits: int = 3) -> str:
    """A float with `digits` significant digits, without scientific notation for usual sizes."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= 6 or magnitude < -4:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def duration_ns(value_ns: float | None) -> str:
    """A latency in the unit that reads best (ns, µs, ms, s)."""
    if not _finite(value_ns):
        return NA
    assert value_ns is not None
    v = abs(value_ns)
    if v < 1e3:
        return f"{sig(value_ns)} ns"
    if v < 1e6:
        return f"{sig(value_ns / 1e3)} µs"
    if v < 1e9:
        return f"{sig(value_ns / 1e6)} ms"
    return f"{sig(value_ns / 1e9)} s"


def duration_s(value_s: float | None) -> str:
    if not _finite(value_s):
        return NA
    assert value_s is not None
    if value_s < 60:
        return f"{value_s:.1f} s"
    minutes, seconds = divmod(round(value_s), 60)
    return f"{minutes} min {seconds:02d} s"


def energy_j(value_j: float | None) -> str:
    """An energy in J, mJ or µJ."""
    if not _finite(value_j):
        return NA
    assert value_j is not None
    v = abs(value_j)
    if v >= 1:
        return f"{sig(value_j)} J"
    if v >= 1e-3:
        return f"{sig(value_j * 1e3)} mJ"
    return f"{sig(value_j * 1e6)} µJ"


def power_w(value_w: float | None) -> str:
    if not _finite(value_w):
        return NA
    assert value_w is not None
    return f"{sig(value_w)} W"


def rate(value: float | None, unit: str) -> str:
    if not _finite(value):
        return NA
    assert value is not None
    return f"{sig(value)} {unit}"


def percent(fraction: float | None, digits: int = 2) -> str:
    if not _finite(fraction):
        return NA
    assert fraction is not None
    return f"{sig(fraction * 100, digits)} %"


def interval(lo: float | None, hi: float | None, fmt: str = "{:.3g}") -> str:
    """'[lo, hi]' or an empty string when the interval is unknown."""
    if not (_finite(lo) and _finite(hi)):
        return ""
    return "[" + fmt.format(lo) + ", " + fmt.format(hi) + "]"


def ratio(value: float | None, lo: float | None, hi: float | None) -> str:
    """A ratio such as '1.84× [1.79, 1.90]'."""
    if not _finite(value):
        return NA
    assert value is not None
    text = f"{value:.3g}×"
    span = interval(lo, hi)
    return f"{text} {span}" if span else text


def timestamp(iso: str | None) -> str:
    """An ISO timestamp shown in local time, to the minute."""
    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def parse_int_list(text: str, *, what: str, minimum: int = 1) -> list[int]:
    """Parse '1, 8, 32' (also '1 8 32'); raise ValueError with a message for the user."""
    items = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    if not items:
        raise ValueError(f"Give at least one {what}.")
    out: list[int] = []
    for item in items:
        try:
            number = int(item)
        except ValueError:
            raise ValueError(f"{what.capitalize()} {item!r} is not a whole number.") from None
        if number < minimum:
            raise ValueError(f"{what.capitalize()} must be at least {minimum} (got {number}).")
        if number not in out:
            out.append(number)
    return out


def parse_threads(text: str) -> list[int | None]:
    """'' or 'default' means the runtime's default; otherwise a list of thread counts."""
    cleaned = text.strip().lower()
    if cleaned in ("", "default", "auto"):
        return [None]
    return list(parse_int_list(text, what="thread count"))


def parse_pairs(text: str, *, what: str) -> list[tuple[str, str]]:
    """Parse 'a=1, b=2' into pairs; raise ValueError with a message for the user."""
    out: list[tuple[str, str]] = []
    for part in [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]:
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{what.capitalize()} {part!r} must look like name=value.")
        out.append((name.strip(), value.strip()))
    return out


def log_ticks(lo: float, hi: float) -> list[list[tuple[float, str]]]:
    """Ticks for data plotted as log10(x): 1-2-5 steps labelled in plain numbers."""
    major: list[tuple[float, str]] = []
    minor: list[tuple[float, str]] = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for step in (1, 2, 5):
            value = step * 10.0**exponent
            if lo / 1.5 <= value <= hi * 1.5:
                (major if step == 1 else minor).append((math.log10(value), sig(value, 1)))
    if len(major) < 2:  # a narrow span: label the 2s and 5s too
        major, minor = sorted(major + minor), []
    return [major, minor]
