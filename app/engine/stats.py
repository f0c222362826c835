"""Statistics of one run: t quantiles, batch-means intervals, percentiles with their intervals,
and the whole-run summary (``convergence`` decides when to stop and flags the run).

Pure numpy (METHOD.md "When to stop" and "Post-checks"); scipy is never imported here, the
t quantiles come from a small table plus a Cornish-Fisher expansion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import (
    Interval,
    LatencySummary,
    PercentileEstimate,
)

MIN_SAMPLES = 2  # the fewest latencies a summary (a mean and its spread) can be made of

log = logging.getLogger(__name__)

T_975_19 = 2.093  # t quantile used by the k = 20 batch-means rule (METHOD.md)
Z_975 = 1.959963984540054
BATCHES = 20

# Two-sided 95 % t quantiles (0.975 one-sided) for 1..30 degrees of freedom.
_T975_TABLE = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip

# quality_flags thresholds (see its docstring)
DRIFT_MIN = 0.02
DRIFT_SIGMAS = 3.0
CV_MAX = 0.20
R1_MAX = 0.5
OUTLIER_FRACTION_MAX = 0.02
HEADLINE_MIN_N_EFF = 30
TAIL_TOLERANCE = 0.05
LOADGEN_CONFIDENCE = 0.99


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _t_upper_tail(t: float, df: float) -> float:
    return 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))


def t_975(df: float) -> float:
    """0.975 quantile of Student's t with df degrees of freedom (df may be fractional: Welch).

    Table for integer df ≤ 30, numerical inversion of the t distribution for fractional
    df < 30, Cornish-Fisher expansion above (error < 1e-6). df < 1 is treated as 1; infinite
    df gives the normal quantile.
    """
    if math.isnan(df):
        raise ValueError("degrees of freedom is NaN")
    if math.isinf(df):
        return Z_975
    df = max(1.0, df)
    if df <= 30:
        if df == math.floor(df):
            return _T975_TABLE[int(df) - 1]
        lo, hi = Z_975, _T975_TABLE[0]
        for _ in range(60):
            mid = (lo + hi) / 2
            if _t_upper_tail(mid, df) > 0.025:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2
    z = Z_975
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@lru_cache(maxsize=64)
def loadgen_min_queries(p: float, confidence: float = LOADGEN_CONFIDENCE) -> int:
    """LoadGen's single-stream early-stopping minimum for percentile p (one over-latency query).

    Smallest n = h + 1 with I_p(h, 2) = p^h·(1 + h(1−p)) ≤ 1 − confidence (tolerance 0), the
    formula of loadgen/early_stopping.cc. Gives p50: 11, p90: 64, p95: 130, p99: 662,
    p99.9: 6,636.
    """
    if not 0 < p < 1:
        raise BadInputError(f"Percentile must be between 0 and 1 exclusive (got {p}).")
    target = math.log(1 - confidence)
    log_p = math.log(p)

    def log_odds(h: int) -> float:
        return h * log_p + math.log1p(h * (1 - p))

    lo, hi = 0, 1
    while log_odds(hi) > target:  # monotone decreasing in h
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if log_odds(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi + 1


def headline_min_n_eff(p: float) -> int:
    """n_eff a percentile needs to be shown as a headline number: max(30, LoadGen minimum)."""
    return max(HEADLINE_MIN_N_EFF, loadgen_min_queries(p))


# -- mean and its interval ---------------------------------------------------------------


def batch_means(latencies_ns: np.ndarray, k: int = BATCHES) -> tuple[float, float, float]:
    """(mean_ns, half_width_ns, rho) of the 95 % CI of the mean from k contiguous batch means.

    The batches are the first k·⌊n/k⌋ samples (the < k left over are ignored for the spread,
    not for the mean); h = t_{0.975,k−1}·sd(ȳ)/√k, rho = h / mean. n < k gives rho = inf.
    """
    x = np.asarray(latencies_ns)
    n = int(x.size)
    if n == 0:
        return math.nan, math.inf, math.inf
    mean = float(x.mean(dtype=np.float64))
    if n < k or k < 2:
        return mean, math.inf, math.inf
    b = n // k
    ybar = x[: k * b].reshape(k, b).mean(axis=1, dtype=np.float64)
    t = T_975_19 if k == BATCHES else t_975(k - 1)
    h = t * float(ybar.std(ddof=1)) / math.sqrt(k)
    rho = h / mean if mean > 0 else math.inf
    return mean, h, rho


def mean_half_width(latencies_ns: np.ndarray, k: int = BATCHES) -> tuple[float, float, float]:
    """(mean_ns, half_width_ns, rho) of the mean's 95 % CI as a run reports it: from k batch
    means (``batch_means``), or with fewer than k samples a t-interval on n_eff samples."""
    x = np.asarray(latencies_ns, dtype=np.float64).ravel()
    n = int(x.size)
    if n >= k or n < MIN_SAMPLES:
        return batch_means(x, k)
    mean = float(x.mean())
    h = t_975(n - 1) * float(x.std(ddof=1)) / math.sqrt(effective_n(n, lag1_autocorr(x)))
    return mean, h, (h / mean if mean > 0 else math.inf)


def lag1_autocorr(x: np.ndarray) -> float:
    """Lag-1 autocorrelation r₁ in [−1, 1]; 0.0 when undefined (n < 3 or constant data)."""
    a = np.asarray(x, dtype=np.float64)
    if a.size < 3:
        return 0.0
    d = a - a.mean()
    # einsum, not np.dot: BLAS dot wakes OpenBLAS's thread pool, which on a busy machine (or
    # next to the model being measured) costs 100× the arithmetic
    denom = float(np.einsum("i,i->", d, d))
    if denom <= 0:
        return 0.0
    r = float(np.einsum("i,i->", d[:-1], d[1:])) / denom
    return min(1.0, max(-1.0, r))


def effective_n(n: int, r1: float) -> float:
    """n(1−r₁)/(1+r₁), clamped to [1, n]: negative r₁ never claims more samples than taken."""
    if n <= 0:
        return 0.0
    r = min(0.999, max(-0.999, r1))
    return float(min(n, max(1.0, n * (1 - r) / (1 + r))))


def mean_interval(values: np.ndarray) -> Interval:
    """Mean of a small sample with its 95 % t-interval (e.g. per-iteration TTFT values).

    One value: no interval (lo/hi None). Empty: ValueError.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("mean_interval needs at least one value")
    m = float(v.mean())
    if v.size == 1:
        return Interval(m, None, None)
    h = t_975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Interval(m, m - h, m + h)


def throughput_interval(items: int, busy_ns: int, rho: float) -> Interval:
    """items/s over busy_ns; its interval mirrors the mean-latency interval ±rho.

    Throughput ∝ 1/mean latency, so [X/(1+ρ), X/(1−ρ)]. No interval when ρ is not finite or ≥ 1.
    """
    if busy_ns <= 0:
        raise ValueError(f"busy time must be positive (got {busy_ns} ns)")
    if items < 0:
        raise ValueError(f"item count must not be negative (got {items})")
    x = items / (busy_ns / 1e9)
    if not math.isfinite(rho) or rho < 0 or rho >= 1:
        return Interval(x, None, None)
    return Interval(x, x / (1 + rho), x / (1 - rho))


# -- percentiles -------------------------------------------------------------------------


def _needed_indices(
    n: int, p: float, n_eff: float
) -> tuple[int, int, float, int, int | None, int | None]:
    """0-based indices: (floor of linear h, its neighbour, frac, nearest rank, lo, hi)."""
    h = (n - 1) * p
    i0 = math.floor(h)
    i1 = min(i0 + 1, n - 1)
    nearest = min(math.floor(n * p), n - 1)  # LoadGen: sorted[count × percentile]
    spread = Z_975 * math.sqrt(n * p * (1 - p) * n / max(n_eff, 1.0))
    lo_rank = math.floor(n * p - spread)  # 1-based ranks, rounded outward
    hi_rank = math.ceil(n * p + spread) + 1
    lo = lo_rank - 1 if lo_rank >= 1 else None
    hi = hi_rank - 1 if hi_rank <= n else None
    return i0, i1, h - i0, nearest, lo, hi


def _estimates_from(
    get: dict[int, float], n: int, ps: Sequence[float], n_eff: float
) -> tuple[PercentileEstimate, ...]:
    out = []
    for p in ps:
        i0, i1, frac, nearest, lo, hi = _needed_indices(n, p, n_eff)
        value = get[i0] + frac * (get[i1] - get[i0])
        out.append(
            PercentileEstimate(
                p=float(p),
                value_ns=float(value),
                nearest_rank_ns=float(get[nearest]),
                lo_ns=None if lo is None else float(get[lo]),
                hi_ns=None if hi is None else float(get[hi]),
                headline=n_eff >= headline_min_n_eff(p),
            )
        )
    return tuple(out)


def check_percentiles(ps: Sequence[float]) -> None:
    for p in ps:
        if not 0 < p < 1:
            raise BadInputError(f"Percentiles must be between 0 and 1 exclusive (got {p}).")


def _indices_for(n: int, ps: Sequence[float], n_eff: float) -> list[int]:
    idx: set[int] = set()
    for p in ps:
        i0, i1, _, nearest, lo, hi = _needed_indices(n, p, n_eff)
        idx.update(i for i in (i0, i1, nearest, lo, hi) if i is not None)
    return sorted(idx)


def percentile_estimates(
    latencies_ns: np.ndarray, ps: Sequence[float], n_eff: float
) -> tuple[PercentileEstimate, ...]:
    """Linear-interpolation and nearest-rank percentiles with order-statistic 95 % intervals.

    Interval ranks (1-based) np ∓ 1.96·√(np(1−p)·n/n_eff), rounded outward (upper rank + 1, as
    X₍ₖ₎ ≥ q_p needs at most k−1 samples below q_p); a bound whose rank falls outside the sample
    is None. headline is True when n_eff ≥ max(30, LoadGen minimum) — see loadgen_min_queries.
    With n_eff from the latencies' r₁ (METHOD.md) the interval covers ~95 % for iid data and
    more under positive autocorrelation (≈ 97 % for p50 at r₁ = 0.5, ≈ 100 % for p99: the
    indicator x ≤ q_p of a far tail is much less correlated than the latencies themselves).
    Uses a partial sort: O(n) for a few percentiles.
    """
    check_percentiles(ps)
    x = np.asarray(latencies_ns, dtype=np.float64).ravel()
    n = int(x.size)
    if n == 0 or not ps:
        return ()
    idx = _indices_for(n, ps, n_eff)
    part = np.partition(x, idx)
    return _estimates_from({i: float(part[i]) for i in idx}, n, ps, n_eff)


def _sorted_at(s: np.ndarray, p: float) -> float:
    h = (s.size - 1) * p
    i0 = math.floor(h)
    i1 = min(i0 + 1, s.size - 1)
    return float(s[i0] + (h - i0) * (s[i1] - s[i0]))


# -- whole-run summary -------------------------------------------------------------------


def summarize(latencies_ns: np.ndarray, percentiles: Sequence[float]) -> LatencySummary:
    """All derived latency statistics of one run (METHOD.md "What a run stores").

    The mean's interval comes from 20 batch means; with fewer than 20 samples from a t-interval
    on n_eff samples instead. MAD is the raw median absolute deviation (not scaled by 1.4826).
    Outliers lie outside Tukey's fences (Q1 − 1.5·IQR, Q3 + 1.5·IQR): counted, never dropped.
    Needs at least 2 samples (ValueError otherwise: the caller reports latency as unknown).
    """
    check_percentiles(percentiles)
    x = np.asarray(latencies_ns, dtype=np.float64).ravel()
    n = int(x.size)
    if n < MIN_SAMPLES:
        raise ValueError(f"summarize needs at least {MIN_SAMPLES} latencies (got {n})")
    mean = float(x.mean())
    sd = float(x.std(ddof=1))
    s = np.sort(x)
    q1, median, q3 = _sorted_at(s, 0.25), _sorted_at(s, 0.5), _sorted_at(s, 0.75)
    iqr = q3 - q1
    mad = float(np.median(np.abs(x - median)))
    out_low = int(np.searchsorted(s, q1 - 1.5 * iqr, side="left"))
    out_high = int(n - np.searchsorted(s, q3 + 1.5 * iqr, side="right"))
    r1 = lag1_autocorr(x)
    n_eff = effective_n(n, r1)
    _, h, rho = mean_half_width(x)
    half = n // 2
    drift = (float(x[half:].mean()) - float(x[:half].mean())) / mean if mean > 0 else 0.0
    if percentiles:
        idx = _indices_for(n, percentiles, n_eff)
        pct = _estimates_from({i: float(s[i]) for i in idx}, n, percentiles, n_eff)
    else:
        pct = ()
    return LatencySummary(
        n=n,
        mean_ns=mean,
        sd_ns=sd,
        cv=sd / mean if mean > 0 else math.inf,
        median_ns=median,
        iqr_ns=iqr,
        mad_ns=mad,
        min_ns=float(s[0]),
        max_ns=float(s[-1]),
        mean_lo_ns=mean - h,
        mean_hi_ns=mean + h,
        rho=rho,
        r1=r1,
        n_eff=n_eff,
        outliers_low=out_low,
        outliers_high=out_high,
        drift=drift,
        percentiles=pct,
    )
