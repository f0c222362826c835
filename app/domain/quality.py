"""What a run's own figures say about how far it can be trusted, as plain values.

η, the harness efficiency (throughput over the measurement window ÷ the throughput of a bare
loop run right after it, in the same process), is close to 1 when the harness costs little and
the host kept its speed. Outside ``ETA_SANE_RANGE`` it does not describe the harness: the host
itself ran faster or slower between the two loops (a shared machine, CPU steal, clocks), and the
run's figures may not repeat.
"""

from __future__ import annotations

import math

ETA_SANE_RANGE = (0.90, 1.10)
ETA_RANGE_TEXT = f"{ETA_SANE_RANGE[0]:.2f}–{ETA_SANE_RANGE[1]:.2f}"
ETA_MEANING = "harness efficiency: throughput while measured ÷ a bare loop's, ideally 1"


def eta_out_of_range(eta: float | None) -> bool:
    """True for a recorded η outside ``ETA_SANE_RANGE`` (an unknown η is not flagged)."""
    if eta is None:
        return False
    return not (math.isfinite(eta) and ETA_SANE_RANGE[0] <= eta <= ETA_SANE_RANGE[1])
