"""The verdict board: for each question a user asks — per second, per joule, per dollar — the
best configuration, its ratio to the baseline with the interval and verdict, and the runner-up.

Built from a ``Comparison`` (its groups, baseline and quality), the same in the CLI, the GUI and
the reports. Rules:

- A configuration whose runs the instrument flagged (``compare.quality_causes``) never wins:
  it is listed once under "not ranked" with why; so is one that ran another model than the
  baseline.
- Figures are ranked apart by basis: measured; estimate (energy from a model, not a sensor);
  hardware only (the amortised-hardware part of $ per million, which needs no power reading:
  a lower bound while the energy part is unknown). A configuration is ranked on an estimate
  only where it has no measured figure.
- A question nobody can answer says why once: its reason is a numbered footnote, shared by
  every question with the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.domain.result import Interval, RunResult
from wattbench.domain.spec import Scenario
from wattbench.engine.compare import Comparison, quality_causes
from wattbench.engine.cost import cost_figures, energy_per_item, estimated_energy_per_item
from wattbench.engine.generation import inverse
from wattbench.engine.metrics import METRICS, ConfigGroup, MetricEstimate, pool, pool_values
from wattbench.engine.ratios import Ratio, ratio_of
from wattbench.engine.training_metrics import mfu_text

log = logging.getLogger(__name__)

MEASURED = "measured"
ESTIMATE = "estimate"
HARDWARE_ONLY = "hardware only"

INFERENCE_QUESTIONS = ("throughput", "latency-p99", "energy", "perf-per-watt", "cost")
GENERATION_QUESTIONS = ("decode-tokens-per-s", "ttft", "tpot", "tokens-per-j", "cost-per-m-tokens")
SERVER_QUESTIONS = ("goodput",)
# training runs: an item is a trained token; the step time is a mean (steps are few: no p99)
TRAINING_QUESTIONS = (
    "train-tokens-per-s", "step-time", "train-energy-per-token", "train-tokens-per-j",
    "cost-per-m-train-tokens", "train-tflops",
)  # fmt: skip
BOARD_METRICS = INFERENCE_QUESTIONS + GENERATION_QUESTIONS + SERVER_QUESTIONS + TRAINING_QUESTIONS
TITLES = {
    "throughput": "Throughput",
    "latency-p99": "p99 latency per call",
    "energy": "Energy per inference",
    "perf-per-watt": "Inferences per joule",
    "cost": "$ per 1M inferences",
    "decode-tokens-per-s": "Decode tokens/s",
    "ttft": "Time to first token",
    "tpot": "Time per output token",
    "tokens-per-j": "Output tokens per joule",
    "cost-per-m-tokens": "$ per 1M output tokens",
    "goodput": "Goodput at the latency SLO",
    "train-tokens-per-s": "Trained tokens/s",
    "step-time": "Step time (mean)",
    "train-energy-per-token": "J per trained token",
    "train-tokens-per-j": "Trained tokens per joule",
    "cost-per-m-train-tokens": "$ per 1M tokens trained",
    "train-tflops": "Achieved model TFLOP/s (MFU)",
}
_ENERGY_QUESTIONS = ("energy", "perf-per-watt", "tokens-per-j", "train-energy-per-token",
                     "train-tokens-per-j")  # fmt: skip
_COST_QUESTIONS = ("cost", "cost-per-m-tokens", "cost-per-m-train-tokens")
SUPERSCRIPTS = "¹²³⁴⁵⁶⁷⁸⁹"


def figure_text(value: Interval, unit: str, *, interval: bool = True) -> str:
    """A board figure with its interval in the unit people read: "1.23 ms [1.20–1.26]",
    "$0.42 [0.40–0.44]", "1,234 items/s"."""
    if unit == "ns":
        text = units.duration_ns(value.value)
        brackets = units.span(value.lo, value.hi, units.duration_ns)
    elif unit in ("J/item", "J/token"):
        per = unit.partition("/")[2]
        text = f"{units.energy_j(value.value)}/{per}"
        brackets = units.span(value.lo, value.hi, units.energy_j)
    elif unit.startswith("USD"):
        text = f"${units.number(value.value)}"
        brackets = units.span(value.lo, value.hi)
    else:
        text = units.with_unit(value.value, unit)
        brackets = units.span(value.lo, value.hi)
    if unit == "tokens/J":  # J per token read too
        text += f" ({units.energy_j(1 / value.value)}/token)"
    return text + (f" {brackets}" if brackets and interval else "")


@dataclass(frozen=True)
class Standing:
    """One configuration's place on one question."""

    label: str
    value: Interval
    ratio: Ratio | None  # to the baseline; None for the baseline itself
    is_baseline: bool
    runs: int  # runs behind the figure
    remark: str = ""  # said beside the figure: the MFU of achieved TFLOP/s

    def value_text(self, unit: str, *, interval: bool = True) -> str:
        text = figure_text(self.value, unit, interval=interval)
        return f"{text} ({self.remark})" if self.remark else text

    def ratio_text(self) -> str:
        """ "1.84× [1.79–1.90] faster", "baseline", or "n/a (why)"."""
        if self.is_baseline:
            return "baseline"
        r = self.ratio
        if r is None or r.value is None:
            why = r.na_reason if r is not None else None
            return f"n/a ({why})" if why else "n/a"
        verdict = r.verdict or "no interval"
        return f"{units.ratio(r.value, r.lo, r.hi)} {verdict}"


@dataclass(frozen=True)
class Answer:
    """One question on one basis: the winner and the runner-up, or why there is none."""

    question: str  # a metric name from METRICS
    title: str
    unit: str
    higher_is_better: bool
    basis: str  # MEASURED, ESTIMATE or HARDWARE_ONLY: ranked apart
    winner: Standing | None
    runner_up: Standing | None
    lead: Ratio | None  # winner / runner-up, with interval and verdict
    na_reasons: tuple[str, ...]  # why no configuration could be ranked, most common first
    note: str = ""  # what the basis means for this answer
    mark: str = ""  # the footnote mark of na_reason ("¹"), shared by answers with one reason

    @property
    def na_reason(self) -> str | None:
        """Why there is no winner, in one short line: the most common reason, others counted."""
        if not self.na_reasons:
            return None
        others = len(self.na_reasons) - 1
        more = f" (and {others} other reason{'s' if others > 1 else ''})" if others else ""
        return self.na_reasons[0] + more

    @property
    def heading(self) -> str:
        """The question as shown: "Energy per inference", "… (estimate)"."""
        return self.title if self.basis == MEASURED else f"{self.title} ({self.basis})"

    def lead_text(self) -> str:
        """How far the best is ahead of the runner-up: "1.84× [1.79–1.90] faster"."""
        r = self.lead
        if r is None or r.value is None:
            return ""
        return f"{units.ratio(r.value, r.lo, r.hi)} {r.verdict or 'no interval'}"

    def cells(self) -> tuple[str, str, str, str, str]:
        """question, best, figure, vs baseline, runner-up (with the best's lead over it)."""
        if self.winner is None:
            return (self.heading, f"{units.NA}{self.mark}", "", "", "")
        w = self.winner
        runner = "—"
        if self.runner_up is not None:
            ru = self.runner_up
            runner = f"{ru.label}: {ru.value_text(self.unit)}"
            lead = self.lead_text()
            if lead:
                runner += f" (best is {lead})"
        return (self.heading, w.label, w.value_text(self.unit), w.ratio_text(), runner)


@dataclass(frozen=True)
class Board:
    baseline: str
    answers: tuple[Answer, ...]
    not_ranked: tuple[str, ...]  # "cpu · torch t1: unreliable — not converged"
    footnotes: tuple[str, ...]  # "¹ no measured device energy for cpu", one per reason

    def answer(self, question: str, basis: str = MEASURED) -> Answer:
        for a in self.answers:
            if a.question == question and a.basis == basis:
                return a
        raise KeyError((question, basis))

    def footnote_lines(self) -> list[str]:
        """What is said once under the board: the reasons, then who was not ranked."""
        lines = list(self.footnotes)
        if self.not_ranked:
            lines.append("Not ranked: " + "; ".join(self.not_ranked) + ".")
        return lines


# -- figures by basis ------------------------------------------------------------------------

RunFigure = Callable[[RunResult], Interval | None]


def _scaled(iv: Interval, factor: float) -> Interval:
    return Interval(
        iv.value * factor,
        None if iv.lo is None else iv.lo * factor,
        None if iv.hi is None else iv.hi * factor,
    )


def _per_output_token(run: RunResult, iv: Interval) -> Interval:
    tokens = run.generation.new_tokens if run.generation is not None else 1
    return _scaled(iv, 1 / max(tokens, 1))


def _estimate_figure(
    question: str, view: str, profiles: Mapping[str, CostProfile], basis: str
) -> RunFigure:
    """A run's figure on a basis other than measured: None when the run has a measured figure
    (it is ranked there) or none on this basis."""

    def figure(run: RunResult) -> Interval | None:
        if question in _ENERGY_QUESTIONS:
            if basis != ESTIMATE or energy_per_item(run, view)[0] is not None:
                return None
            est = estimated_energy_per_item(run, view)[0]
            if est is None:
                return None
            if question in ("energy", "train-energy-per-token"):
                return est
            tokens = run.generation.new_tokens if run.generation is not None else 1
            return inverse(est, float(tokens if question == "tokens-per-j" else 1))
        profile = profiles.get(run.spec.device)
        if profile is None:
            return None
        measured = cost_figures(run, profile, energy_view=view, allow_estimate=False)
        if measured.usd_per_million is not None:
            return None
        if basis == ESTIMATE:
            est_cost = cost_figures(run, profile, energy_view=view, allow_estimate=True)
            iv = est_cost.usd_per_million if est_cost.usd_is_estimate else None
        else:
            iv = measured.capital_usd_per_million
        if iv is None:
            return None
        return _per_output_token(run, iv) if question == "cost-per-m-tokens" else iv

    return figure


def _pooled(group: ConfigGroup, figure: RunFigure, basis: str) -> MetricEstimate:
    values = [v for v in (figure(r) for r in group.runs) if v is not None]
    return pool_values(values, [f"no {basis} figure"], len(group.runs))


_BASIS_NOTES = {
    ESTIMATE: "energy from a model (TDP), not a sensor: an estimate, ranked apart",
    HARDWARE_ONLY: "the amortised hardware alone, without the unknown energy part: a lower bound",
}


# -- the board -------------------------------------------------------------------------------


P99_NOT_HEADLINE = (
    "p99 is not a headline figure of these runs: too few effective samples (METHOD.md: n_eff ≥ 662)"
)


def _p99_headline(run: RunResult) -> bool:
    pe = run.latency.percentile(0.99) if run.latency is not None else None
    return pe is not None and pe.headline


def board_questions(comparison: Comparison) -> tuple[str, ...]:
    """The questions for the baseline's workload: generation ones for a generation run, training
    ones for a training run, goodput
    first for a server run; p99 latency where it is a headline — one request at a time, per
    request of a server run, or the baseline's runs have enough effective samples for it
    (METHOD.md)."""
    base = comparison.baseline
    if base.spec.scenario is Scenario.GENERATION:
        return GENERATION_QUESTIONS
    if base.spec.scenario is Scenario.TRAINING:
        return TRAINING_QUESTIONS
    server = SERVER_QUESTIONS if base.spec.scenario is Scenario.SERVER else ()
    if base.spec.scenario is not Scenario.OFFLINE or all(_p99_headline(r) for r in base.runs):
        return server + INFERENCE_QUESTIONS
    return server + tuple(q for q in INFERENCE_QUESTIONS if q != "latency-p99")


def _excluded(comparison: Comparison) -> dict[str, str]:
    """Configurations that may not win, by label, with why."""
    out: dict[str, str] = {}
    for g in comparison.groups:
        causes = quality_causes(g.runs)
        if causes:
            out[g.label] = f"unreliable — {', '.join(causes)}"
            continue
        row = next((r for r in comparison.rows if r.group is g), None)
        if row is not None and any(d.startswith("model") for d in row.differences):
            out[g.label] = "another model than the baseline's"
    return out


@dataclass
class _Reasons:
    texts: list[str]

    def mark(self, reason: str) -> str:
        if reason not in self.texts:
            self.texts.append(reason)
        i = self.texts.index(reason)
        return SUPERSCRIPTS[i] if i < len(SUPERSCRIPTS) else f"[{i + 1}]"


def _na_reasons(estimates: Sequence[MetricEstimate], excluded: bool) -> tuple[str, ...]:
    """The configurations' reasons, the most common first."""
    counts: dict[str, int] = {}
    for e in estimates:
        if e.na_reason:
            counts[e.na_reason] = counts.get(e.na_reason, 0) + 1
    if not counts:
        return (
            ("every configuration with a figure was not ranked",)
            if excluded
            else ("no configuration has this figure",)
        )
    return tuple(sorted(counts, key=lambda r: -counts[r]))


def _bases(question: str) -> tuple[str, ...]:
    if question in _ENERGY_QUESTIONS:
        return (MEASURED, ESTIMATE)
    if question in _COST_QUESTIONS:
        return (MEASURED, ESTIMATE, HARDWARE_ONLY)
    return (MEASURED,)


def _estimate(
    g: ConfigGroup, q: str, basis: str, view: str, profiles: Mapping[str, CostProfile]
) -> MetricEstimate:
    """A configuration's pooled figure for a question on a basis."""
    if basis != MEASURED:
        return _pooled(g, _estimate_figure(q, view, profiles, basis), basis)
    if q == "latency-p99" and not all(_p99_headline(r) for r in g.runs):
        return MetricEstimate(None, P99_NOT_HEADLINE, 0)
    if q in g.estimates:
        return g.estimates[q]
    return pool(g.runs, q, view, profiles)


def verdict_board(comparison: Comparison, cost_profiles: Mapping[str, CostProfile]) -> Board:
    """The board of a comparison (cost questions with the profiles by device)."""
    excluded = _excluded(comparison)
    view = comparison.energy_view
    reasons = _Reasons([])
    answers: list[Answer] = []
    for q in board_questions(comparison):
        for basis in _bases(q):
            ests = {g.label: _estimate(g, q, basis, view, cost_profiles) for g in comparison.groups}
            answer = _answer(comparison, q, basis, ests, excluded, reasons)
            if answer is not None:
                answers.append(answer)
    board = Board(
        comparison.baseline.label,
        tuple(answers),
        tuple(f"{label}: {why}" for label, why in excluded.items()),
        tuple(f"{reasons.mark(t)} {t}" for t in reasons.texts),
    )
    log.debug("board of %d answers", len(board.answers))
    return board


def _answer(
    comparison: Comparison,
    q: str,
    basis: str,
    ests: Mapping[str, MetricEstimate],
    excluded: Mapping[str, str],
    reasons: _Reasons,
) -> Answer | None:
    """One question on one basis; None for an estimate basis nobody has a figure on."""
    info = METRICS[q]
    ranked = [
        g for g in comparison.groups if g.label not in excluded and ests[g.label].value is not None
    ]
    ranked.sort(key=lambda g: _value(ests[g.label]), reverse=info.higher_is_better)
    if not ranked:
        if basis != MEASURED:
            return None
        why = _na_reasons(list(ests.values()), bool(excluded))
        answer = Answer(
            q, TITLES[q], info.unit, info.higher_is_better, basis, None, None, None, why
        )
        return replace(answer, mark=reasons.mark(answer.na_reason or ""))
    base = comparison.baseline
    base_est = ests[base.label]

    def standing(g: ConfigGroup) -> Standing:
        e = ests[g.label]
        assert e.value is not None
        remark = mfu_text(g.runs[0], e.value.value) if q == "train-tflops" else ""
        if g is base:
            return Standing(g.label, e.value, None, True, e.replicates, remark)
        row = next(r for r in comparison.rows if r.group is g)
        ratio = ratio_of(
            base_est, e, q, noise=comparison.noise, comparable=row.comparable,
            unreliable=row.unreliable,
        )  # fmt: skip
        return Standing(g.label, e.value, ratio, False, e.replicates, remark)

    winner = standing(ranked[0])
    runner = standing(ranked[1]) if len(ranked) > 1 else None
    lead = None
    if runner is not None:
        lead = ratio_of(
            ests[ranked[1].label], ests[ranked[0].label], q, noise=comparison.noise,
            comparable=_like_for_like(comparison, ranked[0], ranked[1]),
        )  # fmt: skip
    return Answer(
        q, TITLES[q], info.unit, info.higher_is_better, basis, winner, runner, lead, (),
        note=_BASIS_NOTES.get(basis, ""),
    )  # fmt: skip


def _value(e: MetricEstimate) -> float:
    return e.value.value if e.value is not None else float("nan")


def _like_for_like(comparison: Comparison, a: ConfigGroup, b: ConfigGroup) -> bool:
    def comparable(g: ConfigGroup) -> bool:
        row = next((r for r in comparison.rows if r.group is g), None)
        return row is None or row.comparable

    return comparable(a) and comparable(b)
