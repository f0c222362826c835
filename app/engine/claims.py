"""Checking a claim on stored runs: "B ≥ 0.8 × A on tokens/s" is confirmed, refuted or
inconclusive by where the 95 % interval of the ratio B/A lies against the factor.

- ≥ f: confirmed when the whole interval lies at or above f, refuted when it lies below;
  ≤ f the other way round; an interval that straddles f is inconclusive, with how many runs
  per side would settle it: n ≈ 2 z² σ² / ln(r/f)², σ the spread between runs (or, with one run
  a side, each run's own interval as a lower bound).
- A side whose runs the instrument flagged (``compare.quality_causes``) gives "unreliable":
  a claim is never confirmed or refuted on such runs.
- Each side must be one configuration (replicates pooled as in a comparison).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wattbench.domain.claim import Claim
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult, RunStatus
from wattbench.engine.compare import compare_runs, quality_causes
from wattbench.engine.metrics import METRICS, ConfigGroup, metric_name
from wattbench.engine.ratios import MAX_SETTLE_RUNS, Ratio
from wattbench.engine.stats import Z_975, t_975

CONFIRMED, REFUTED, INCONCLUSIVE, UNRELIABLE = "confirmed", "refuted", "inconclusive", "unreliable"
ALIASES = {
    "tokens/s": "decode-tokens-per-s",
    "tokens-per-s": "decode-tokens-per-s",
    "perf-per-w": "perf-per-watt",
    "inferences-per-j": "perf-per-watt",
    "usd-per-m": "cost",
    "cost-per-m": "cost",
    "tokens/s-per-gpu": "train-tokens-per-s-per-card",
    "tokens/s-per-card": "train-tokens-per-s-per-card",
    "tokens/s-per-device": "train-tokens-per-s-per-device",
}
# what "tokens/s" means for training runs: trained tokens per second, per card (a vendor's
# "per GPU" counts an MI250, two dies, as one GPU; a single-die device is its own card)
TRAINING_ALIASES = {"decode-tokens-per-s": "train-tokens-per-s-per-card"}


def claim_metric(name: str) -> str:
    """A metric of METRICS from what people write (tokens/s, perf_per_watt …)."""
    key = "-".join(metric_name(name).split())  # "tokens/s per GPU" → "tokens/s-per-gpu"
    key = ALIASES.get(key, key)
    if key not in METRICS:
        raise BadInputError(
            f"Unknown metric {name!r} for a claim: choose from {', '.join(METRICS)} (or tokens/s).",
            field="metric",
        )
    return key


@dataclass(frozen=True)
class SideResult:
    label: str  # the configuration's label
    run_ids: tuple[str, ...]
    causes: tuple[str, ...]  # why its runs are unreliable (empty: they are not)


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    metric: str
    verdict: str  # CONFIRMED, REFUTED, INCONCLUSIVE or UNRELIABLE (or "n/a")
    ratio: Ratio  # B / A with its interval
    a: SideResult
    b: SideResult
    why: str  # one sentence: where the interval lies, or why there is no verdict
    runs_needed: int | None = None  # per side, for an inconclusive verdict
    indicative: str | None = None  # "one run each": the interval is within-run only


def _one_group(groups: Sequence[ConfigGroup], runs: Sequence[RunResult], side: str) -> ConfigGroup:
    ids = {r.id for r in runs}
    mine = [g for g in groups if ids & set(g.run_ids)]
    if len(mine) != 1:
        labels = "; ".join(g.label for g in mine)
        raise BadInputError(
            f"Side {side} matches {len(mine)} configurations ({labels}): narrow it (device, "
            "runtime, model, tag or run ids) to one configuration.",
            field=side.lower(),
        )
    return mine[0]


def _runs_needed(ratio: Ratio, a: ConfigGroup, b: ConfigGroup, metric: str, f: float) -> int | None:
    """Runs per side that would put the interval clear of the factor (None: the figure sits
    on it, or more than MAX_SETTLE_RUNS would be needed)."""
    assert ratio.value is not None
    margin = abs(math.log(ratio.value / f))
    ea, eb = a.estimate(metric), b.estimate(metric)
    sds = [e.log_sd for e in (ea, eb) if e.log_sd]
    if sds:
        sigma = math.sqrt(sum(s * s for s in sds) / len(sds))
    else:
        rels = [e.value.rel_half_width for e in (ea, eb) if e.value and e.value.rel_half_width]
        sigma = math.sqrt(sum(r * r for r in rels) / max(len(rels), 1)) / Z_975
    if margin <= 0 or sigma <= 0:
        return None
    have = min(ea.replicates, eb.replicates)
    for n in range(max(2, have + 1), MAX_SETTLE_RUNS + 1):
        if t_975(2 * n - 2) * sigma * math.sqrt(2 / n) < margin:
            return n
    return None


def check_claim(
    claim: Claim,
    runs_a: Sequence[RunResult],
    runs_b: Sequence[RunResult],
    *,
    energy_view: str = "device",
    cost_profiles: Mapping[str, CostProfile] | None = None,
) -> ClaimResult:
    """Evaluate a claim on the finished runs of its two sides."""
    metric = claim_metric(claim.metric)
    done_a = [r for r in runs_a if r.status is RunStatus.DONE]
    done_b = [r for r in runs_b if r.status is RunStatus.DONE]
    if all(r.training is not None for r in (*done_a, *done_b)):
        metric = TRAINING_ALIASES.get(metric, metric)
    for side, done, given in (("A", done_a, claim.a), ("B", done_b, claim.b)):
        if not done:
            raise BadInputError(
                f"No finished run matches side {side} ({given.describe()}): measure it, or "
                "widen the side.",
                field=side.lower(),
            )
    if {r.id for r in done_a} & {r.id for r in done_b}:
        raise BadInputError("The two sides of the claim share runs: make them disjoint.")
    comparison = compare_runs(
        [*done_a, *done_b],
        baseline_id=done_a[0].id,
        metrics=(metric,),
        energy_view=energy_view,
        cost_profiles=cost_profiles,
    )
    ga = _one_group(comparison.groups, done_a, "A")
    gb = _one_group(comparison.groups, done_b, "B")
    if ga is gb:
        raise BadInputError("Both sides are the same configuration: a claim compares two.")
    ratio = comparison.row(gb.label).ratios[metric]
    a = SideResult(ga.label, ga.run_ids, quality_causes(ga.runs))
    b = SideResult(gb.label, gb.run_ids, quality_causes(gb.runs))
    return _judge(claim, metric, ratio, a, b, ga, gb)


def _judge(
    claim: Claim,
    metric: str,
    ratio: Ratio,
    a: SideResult,
    b: SideResult,
    ga: ConfigGroup,
    gb: ConfigGroup,
) -> ClaimResult:
    f = claim.factor
    if ratio.value is None:
        return ClaimResult(claim, metric, "n/a", ratio, a, b, f"no ratio: {ratio.na_reason}")
    if a.causes or b.causes:
        why = "; ".join(
            f"{side} ({s.label}): {', '.join(s.causes)}" for side, s in (("A", a), ("B", b))
            if s.causes
        )  # fmt: skip
        return ClaimResult(
            claim, metric, UNRELIABLE, ratio, a, b,
            f"no verdict on runs the instrument flagged — {why}; measure them again while the "
            "machine is otherwise idle",
        )  # fmt: skip
    if ratio.lo is None or ratio.hi is None:
        return ClaimResult(
            claim, metric, INCONCLUSIVE, ratio, a, b,
            f"the ratio has no interval ({ratio.na_reason or 'too few runs'}): run each side "
            "at least twice",
        )  # fmt: skip
    above = claim.relation == "≥"
    lo, hi = ratio.lo, ratio.hi
    if (lo >= f) if above else (hi <= f):
        verdict, where = (
            CONFIRMED,
            f"the whole interval lies {'at or above' if above else 'at or below'} {f:g}",
        )
    elif (hi < f) if above else (lo > f):
        verdict, where = REFUTED, f"the whole interval lies {'below' if above else 'above'} {f:g}"
    else:
        verdict, where = INCONCLUSIVE, f"the interval straddles {f:g}"
    needed = _runs_needed(ratio, ga, gb, metric, f) if verdict == INCONCLUSIVE else None
    if verdict == INCONCLUSIVE:
        where += (
            f"; about {needed} runs per side, interleaved, would settle it"
            if needed
            else f"; more than {MAX_SETTLE_RUNS} runs per side would be needed to settle it"
        )
    return ClaimResult(claim, metric, verdict, ratio, a, b, where, needed, ratio.indicative)
