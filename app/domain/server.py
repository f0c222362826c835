"""What a server-scenario run measured: Poisson load on concurrent streams, and the search for
the highest rate that meets a latency SLO.

The per-request latency (completion − scheduled arrival, queueing included, as MLPerf
LoadGen counts it) is the run's ``latency`` summary; this part holds what only a server run
has: the offered and achieved rates, what the load generator itself cost, and the SLO search.
A generative model's request is a whole sequence (prefill, then decode steps): its TTFT (first
token − scheduled arrival, queueing included) and TPOT ((last − first token) ÷ (new tokens − 1))
percentiles are kept here too, and the SLO may limit either instead of the latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattbench.domain import units
from wattbench.domain.percentile import PercentileEstimate

# a request whose stream was free but that was issued this long after its scheduled arrival
# was late: the load generator, not the server, delayed it
LATE_NS = 1_000_000
# the run did not serve every request that arrived: it was offered more than it can serve
FLAG_OVERLOADED = "server_overloaded"


@dataclass(frozen=True)
class SloProbe:
    """One load run of an SLO search, at one target rate."""

    rate_per_s: float  # target arrival rate (Poisson)
    achieved_per_s: float  # completed requests ÷ the load window
    requests: int  # completed
    dropped: int  # arrived but never served (the probe stopped first)
    # the SLO percentile of the per-request figure the SLO limits (latency, TTFT or TPOT;
    # NaN: too few requests)
    latency_ns: float
    lo_ns: float | None  # its order-statistic 95 % interval
    hi_ns: float | None
    n_eff: float
    met: bool  # latency_ns ≤ the SLO and nothing dropped
    stopped_early: bool = False  # already violating the SLO beyond doubt: stopped before its end
    duration_s: float = 0.0


@dataclass(frozen=True)
class ServerSummary:
    """The server scenario's own figures (the latency percentiles are the run's ``latency``)."""

    target_rate_per_s: float  # the rate of the load run the figures describe
    streams: int  # concurrent streams serving one queue (threads sharing the loaded model)
    seed: int  # the arrival schedule's seed
    requests: int  # completed
    dropped: int  # arrived within the window but not served before the drain deadline
    late: int  # issued more than LATE_NS after arrival although a stream was free
    queued: int  # waited for a free stream
    offered_rate_per_s: float  # arrivals ÷ the arrival window
    achieved_rate_per_s: float  # completions ÷ the load window
    duration_s: float  # the load window: first arrival to last completion
    service_mean_ns: float  # issue → completion, the server's own time per request
    issue_lag_p50_ns: float  # actual issue − scheduled arrival, requests that found a stream free
    issue_lag_p99_ns: float
    # the load generator's CPU time (stream threads outside the model call, and its monitor)
    # ÷ the load window: the share of one core it took from the server
    generator_cpu_share: float
    generator_cpu_per_request_ns: float
    slo_percentile: float | None = None  # the SLO: this percentile of latency ≤ slo_ms
    slo_ms: float | None = None
    slo_met: bool | None = None  # of the run the figures describe
    # the highest rate found to meet the SLO, as completed requests per second (None: no SLO)
    goodput_per_s: float | None = None
    search: tuple[SloProbe, ...] = ()  # the search's probes, in the order they ran
    search_s: float | None = None
    note: str = ""  # how the search ended, when it did not converge
    slo_metric: str = "latency"  # what the SLO limits: latency, ttft or tpot
    new_tokens: int | None = None  # generation requests: tokens per request (None: one call)
    ttft_ns: tuple[PercentileEstimate, ...] = ()  # per request, queueing included
    tpot_ns: tuple[PercentileEstimate, ...] = ()


def _rate(value: float | None) -> str:
    return units.with_unit(value, "/s")


_METRIC_WORDS = {"latency": "", "ttft": " TTFT", "tpot": " TPOT"}


def slo_text(percentile: float | None, slo_ms: float | None, metric: str = "latency") -> str:
    """'p99 ≤ 100 ms' (end-to-end latency), 'p90 TPOT ≤ 100 ms'."""
    if percentile is None or slo_ms is None:
        return ""
    word = _METRIC_WORDS.get(metric, f" {metric}")
    return f"p{percentile * 100:g}{word} ≤ {units.duration_ns(slo_ms * 1e6)}"


def _percentiles(pes: tuple[PercentileEstimate, ...]) -> str:
    return ", ".join(
        f"{pe.name} {units.estimate(pe.value_ns, pe.lo_ns, pe.hi_ns, units.duration_ns)}"
        + ("" if pe.headline else " †")
        for pe in pes
    )


def server_lines(s: ServerSummary) -> list[str]:
    """A server run's own figures in words (run and show output, reports)."""
    lines = [
        f"server: {s.streams} stream{'s' if s.streams != 1 else ''}, Poisson arrivals at "
        f"{_rate(s.target_rate_per_s)} (offered {_rate(s.offered_rate_per_s)}), achieved "
        f"{_rate(s.achieved_rate_per_s)} over {units.duration_s(s.duration_s)}; "
        f"{units.count(s.requests)} requests, {units.count(s.queued)} queued, "
        f"{units.count(s.dropped)} dropped, {units.count(s.late)} late; service "
        f"{units.duration_ns(s.service_mean_ns)} mean; latency counts from the scheduled "
        "arrival (queueing included)",
        f"load generator: issue lag p50 {units.duration_ns(s.issue_lag_p50_ns)}, p99 "
        f"{units.duration_ns(s.issue_lag_p99_ns)}; CPU {units.percent(s.generator_cpu_share)} "
        f"of a core ({units.duration_ns(s.generator_cpu_per_request_ns)} per request)",
    ]
    if s.new_tokens is not None:
        lines.append(
            f"generation: {s.new_tokens} new tokens per request; TTFT (from the scheduled "
            f"arrival) {_percentiles(s.ttft_ns) or 'n/a'}; TPOT {_percentiles(s.tpot_ns) or 'n/a'}"
        )
    slo = slo_text(s.slo_percentile, s.slo_ms, s.slo_metric)
    if slo:
        probes = ", ".join(
            f"{p.rate_per_s:.4g}/s {'met' if p.met else 'missed'}"
            + (f" ({units.duration_ns(p.latency_ns)})" if units.finite(p.latency_ns) else "")
            for p in s.search
        )
        if s.goodput_per_s:
            head = f"SLO {slo}: goodput {_rate(s.goodput_per_s)} at {_rate(s.target_rate_per_s)}"
        else:
            head = f"SLO {slo}: no rate tried met it"
        lines.append(
            f"{head}; search of {len(s.search)} probes in {units.duration_s(s.search_s)}: "
            f"{probes}" + (f"; {s.note}" if s.note else "")
        )
    return lines
