"""The search for the highest arrival rate that meets a latency SLO (the server's goodput).

A plain function over a ``probe(rate) -> SloProbe``: bracketing (double the rate while the SLO
holds, halve it while it does not), then bisection between the highest rate that met it and
the lowest that did not, until they are within ``rel_tol`` of each other, the probes run out
or the time budget does. A probe is a whole load run (``engine.server``); tests give it a
synthetic server whose capacity is known.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from wattbench.domain.server import SloProbe

REL_TOL = 0.02  # the bracket is narrowed until hi/lo − 1 ≤ this
MAX_PROBES = 14
MIN_RATE_FRACTION = 1 / 1024  # below start × this, no rate meets the SLO


@dataclass(frozen=True)
class SloSearch:
    """How a search ended: ``best`` is the probe at the highest rate that met the SLO."""

    probes: tuple[SloProbe, ...]
    best: SloProbe | None  # None: no rate tried met the SLO
    lo_per_s: float | None  # highest rate that met it
    hi_per_s: float | None  # lowest rate that did not (None: never bracketed from above)
    converged: bool  # the bracket closed to rel_tol
    duration_s: float
    note: str = ""

    @property
    def goodput_per_s(self) -> float:
        """Completed requests per second at the best rate (0 when none met the SLO)."""
        return self.best.achieved_per_s if self.best is not None else 0.0


def search_rate(
    probe: Callable[[float], SloProbe],
    start_per_s: float,
    *,
    rel_tol: float = REL_TOL,
    max_probes: int = MAX_PROBES,
    budget_s: float = math.inf,
    ceiling_per_s: float | None = None,
) -> SloSearch:
    """The highest rate meeting the SLO, by bracketing from ``start_per_s`` and bisection.

    ``ceiling_per_s`` (e.g. the streams' capacity from the measured call time) caps the
    first step up: a rate above it cannot be sustained, so the bracket closes sooner. A probe
    that starts after ``budget_s`` is not run.
    """
    if not start_per_s > 0 or not math.isfinite(start_per_s):
        raise ValueError(f"the starting rate must be positive (got {start_per_s})")
    t0 = time.monotonic()
    probes: list[SloProbe] = []
    lo: SloProbe | None = None
    hi: SloProbe | None = None

    def out_of_time() -> bool:
        return len(probes) >= max_probes or time.monotonic() - t0 >= budget_s

    def run(rate: float) -> SloProbe:
        p = probe(rate)
        probes.append(p)
        return p

    rate = start_per_s
    note = ""
    # bracketing
    while not out_of_time():
        p = run(rate)
        if p.met:
            lo = p
            if hi is not None:
                break
            nxt = rate * 2
            if ceiling_per_s is not None and rate < ceiling_per_s:
                nxt = min(nxt, ceiling_per_s)
            rate = nxt
        else:
            hi = p
            if lo is not None:
                break
            rate /= 2
            if rate < start_per_s * MIN_RATE_FRACTION:
                note = f"no rate down to {rate:.3g}/s met the SLO"
                break
    # bisection
    while lo is not None and hi is not None and not _closed(lo, hi, rel_tol):
        if out_of_time():
            break
        p = run((lo.rate_per_s + hi.rate_per_s) / 2)
        if p.met:
            lo = p
        else:
            hi = p
    converged = lo is not None and hi is not None and _closed(lo, hi, rel_tol)
    if not converged and not note:
        if lo is None or hi is None:
            note = "the SLO was not bracketed"
        else:
            note = f"the bracket {lo.rate_per_s:.4g}–{hi.rate_per_s:.4g}/s did not close"
        why = f"{len(probes)} probes" if len(probes) >= max_probes else "the time budget"
        note += f" within {why}"
    return SloSearch(
        probes=tuple(probes),
        best=lo,
        lo_per_s=None if lo is None else lo.rate_per_s,
        hi_per_s=None if hi is None else hi.rate_per_s,
        converged=converged,
        duration_s=time.monotonic() - t0,
        note=note,
    )


def _closed(lo: SloProbe, hi: SloProbe, rel_tol: float) -> bool:
    return hi.rate_per_s <= lo.rate_per_s * (1 + rel_tol)
