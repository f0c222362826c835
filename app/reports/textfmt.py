"""Numbers and strings for report readers: significant digits, intervals, ratios, n/a, escaping."""

from __future__ import annotations

import html
import logging
import math

from wattbench.domain import units

log = logging.getLogger(__name__)

NA = "n/a"


def esc(value: object) -> str:
    """HTML/XML-escape any value (quotes included), control characters and direction marks
    written out (``units.printable``): every user string goes through here."""
    return html.escape(units.printable(value), quote=True)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def sig(value: float, digits: int = 3) -> str:
    """`digits` significant digits, the way every front end writes numbers (``units.number``)."""
    return units.number(value, digits)


def counted(n: int, word: str) -> str:
    """'1 run', '8 runs'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def na(reason: str | None) -> str:
    return f"{NA} — {reason}" if reason else NA


def value_text(value: float | None, unit: str = "", na_reason: str | None = None) -> str:
    """'1,234 inferences/s', or 'n/a — reason' (never 0 for a missing figure)."""
    if not finite(value):
        return na(na_reason)
    assert value is not None
    return f"{sig(value)} {unit}".strip()


def interval_text(lo: float | None, hi: float | None) -> str:
    """'1,220–1,250' or '' when the interval is unknown."""
    if not (finite(lo) and finite(hi)):
        return ""
    assert lo is not None and hi is not None
    return f"{sig(lo)}–{sig(hi)}"


def ratio_text(value: float | None, digits: int = 3) -> str:
    if not finite(value):
        return NA
    assert value is not None
    return f"{sig(value, digits)}×"


def percent_text(fraction: float | None, digits: int = 2) -> str:
    if not finite(fraction):
        return NA
    assert fraction is not None
    return f"{sig(fraction * 100, digits)} %"
