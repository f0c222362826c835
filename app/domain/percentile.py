"""A percentile of a latency-like figure with its interval (the run's latency summary, the
generation scenario's inter-token latency, a server run's TTFT and TPOT)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PercentileEstimate:
    p: float  # 0.99 for p99
    value_ns: float  # linear interpolation
    nearest_rank_ns: float  # MLPerf-comparable
    lo_ns: float | None  # order-statistic 95 % interval, None when n is too small
    hi_ns: float | None
    headline: bool  # n_eff large enough to show it as a headline number

    @property
    def name(self) -> str:
        return "p" + f"{self.p * 100:g}"
