"""Generation requests in the server scenario: one request is one sequence.

A request resets the model's KV cache, runs the prompt's prefill (the clock read after it is
the request's first token) and new tokens − 1 decode steps; the load generator records its
scheduled arrival and its completion. Per request

    TTFT = first token − scheduled arrival (queueing included, as a client sees it)
    TPOT = (completion − first token) ÷ (new tokens − 1)

and the SLO may limit either instead of the end-to-end latency (``judge_for``). On one
stream served first come, first served, a request's decode steps never wait for another's, so
TPOT does not grow with the load: an SLO on TPOT that the model meets at all holds until the
stream cannot keep up, and its goodput is the stream's capacity (a probe offered more than
that still counts as met while its queue drains within the drain time and nothing is dropped,
so the search's rate may lie above the capacity; its achieved rate, the goodput, does not).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from wattbench.domain.percentile import PercentileEstimate
from wattbench.engine.generation import ITL_PERCENTILES, itl_percentiles
from wattbench.engine.loadgen import Judge, LoadRun, Serve, clock, latency


class Sequences(Protocol):
    """What a request needs of a generative model (``GenerativeModel``'s generation part)."""

    def prefill(self) -> None: ...

    def decode_step(self) -> None: ...

    def reset(self) -> None: ...


def sequence_serve(model: Sequences, new_tokens: int) -> Serve:
    """One request: reset, prefill, then new_tokens − 1 decode steps; returns the clock read
    after the prefill (the first token)."""
    steps = range(new_tokens - 1)

    def serve() -> int:
        model.reset()
        model.prefill()
        first = clock()
        for _ in steps:
            model.decode_step()
        return first

    return serve


def ttft(arrival: np.ndarray, first: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Time to first token from the scheduled arrival."""
    return first - arrival


def tpot_judge(new_tokens: int) -> Judge:
    """Time per output token after the first: (completion − first token) ÷ (new tokens − 1)."""
    if new_tokens < 2:
        raise ValueError(f"TPOT needs at least 2 new tokens (got {new_tokens})")

    def tpot(arrival: np.ndarray, first: np.ndarray, done: np.ndarray) -> np.ndarray:
        return (done - first) / (new_tokens - 1)

    return tpot


def judge_for(metric: str, new_tokens: int) -> Judge:
    """The per-request figure an SLO on ``metric`` (latency, ttft, tpot) is judged on."""
    if metric == "ttft":
        return ttft
    if metric == "tpot":
        return tpot_judge(new_tokens)
    if metric == "latency":
        return latency
    raise ValueError(f"unknown SLO metric {metric!r}")


def token_percentiles(
    run: LoadRun, new_tokens: int, extra: float | None = None
) -> tuple[tuple[PercentileEstimate, ...], tuple[PercentileEstimate, ...]]:
    """TTFT and TPOT percentiles of the completed requests (p50, p90, p99 and ``extra``, the
    SLO's), with order-statistic intervals on their n_eff."""
    ps = tuple(sorted({*ITL_PERCENTILES, *(() if extra is None else (extra,))}))
    return (
        itl_percentiles(run.values(ttft), ps),
        itl_percentiles(run.values(tpot_judge(new_tokens)), ps),
    )
