"""Comparing runs: ratios to a baseline with 95 % intervals and verdicts (METHOD.md).

Runs are grouped into configurations and pooled (``metrics``), every group gets its ratio to
the baseline's with an interval and a verdict (``ratios``), and workloads that differ are
warned about. The unit of replication is the process run.

Quality: a run flagged not converged, contended, host-unsteady or throttled, or whose η is out
of its sane range, makes every ratio it takes part in "unreliable: <why>" (``quality_causes``
is the one list of those causes); the reasons open the comparison's warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattbench.domain.cost import CostProfile
from wattbench.domain.energy import check_energy_view
from wattbench.domain.errors import BadInputError
from wattbench.domain.interference import contention_text
from wattbench.domain.quality import ETA_RANGE_TEXT, eta_out_of_range
from wattbench.domain.result import (
    FLAG_CONTENDED,
    FLAG_HOST_UNSTEADY,
    FLAG_LOSS_FLAT,
    FLAG_NOT_CONVERGED,
    FLAG_THROTTLED,
    RunResult,
    RunStatus,
)
from wattbench.domain.spec import Scenario
from wattbench.engine.metrics import (
    DEFAULT_METRICS,
    DEFAULT_NOISE,
    METRICS,
    WORKLOAD_FIELDS,
    ConfigGroup,
    config_labels,
    model_hash,
    pool,
)
from wattbench.engine.ratios import Ratio, ratio_of, verdict_sentence, workload_phrase

log = logging.getLogger(__name__)

# the run flags that make a verdict unreliable, in the words the verdicts use
UNRELIABLE_FLAGS: dict[str, str] = {
    FLAG_NOT_CONVERGED: "not converged",
    FLAG_CONTENDED: "contended (other processes used its cores)",
    FLAG_HOST_UNSTEADY: "host unsteady",
    FLAG_THROTTLED: "throttled",
    FLAG_LOSS_FLAT: "the loss did not fall (the training step may not train)",
}
ETA_CAUSE = f"η out of its sane range {ETA_RANGE_TEXT}"

# -- quality -----------------------------------------------------------------------------------


def run_causes(run: RunResult) -> tuple[str, ...]:
    """Why one run's figures cannot carry a verdict (empty when nothing is wrong)."""
    causes = [text for flag, text in UNRELIABLE_FLAGS.items() if flag in run.flags]
    if eta_out_of_range(run.phases.harness_efficiency):
        causes.append(ETA_CAUSE)
    return tuple(causes)


def quality_causes(runs: Sequence[RunResult]) -> tuple[str, ...]:
    """The causes of a configuration's runs, each with how many runs it touches when not all:
    ("not converged", "host unsteady (1 of 3 runs)")."""
    counts: dict[str, int] = {}
    for run in runs:
        for cause in run_causes(run):
            counts[cause] = counts.get(cause, 0) + 1
    return tuple(
        cause if n == len(runs) else f"{cause} ({n} of {len(runs)} runs)"
        for cause, n in counts.items()
    )


def _figures(runs: Sequence[RunResult]) -> str:
    """The figures behind the causes: η out of range, the share others took of the cores."""
    shown = [
        f"η {e:.3g}"
        for e in (r.phases.harness_efficiency for r in runs)
        if e is not None and eta_out_of_range(e)
    ]
    shown += [
        contention_text(r.interference)
        for r in runs
        if FLAG_CONTENDED in r.flags
        and r.interference is not None
        and r.interference.foreign_share is not None
    ]
    return f" — {'; '.join(shown)}" if shown else ""


def quality_warning(group: ConfigGroup, causes: Sequence[str], *, baseline: bool) -> str:
    """The sentence that opens a comparison whose verdicts this group makes unreliable."""
    ids = [r.id[:8] for r in group.runs if run_causes(r)]
    who = f"The baseline {group.label}" if baseline else group.label
    runs = f"run {ids[0]}" if len(ids) == 1 else f"runs {', '.join(ids)}"
    return (
        f"{who} ({runs}): {', '.join(causes)}{_figures(group.runs)}. Every verdict "
        "involving it reads unreliable; measure it again while the machine is otherwise idle."
    )


# -- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    group: ConfigGroup
    ratios: Mapping[str, Ratio]
    comparable: bool
    differences: tuple[str, ...]  # what differs from the baseline's workload
    unreliable: tuple[str, ...] = ()  # why its verdicts read unreliable (empty: they do not)


@dataclass(frozen=True)
class Comparison:
    baseline: ConfigGroup
    groups: tuple[ConfigGroup, ...]  # all groups, baseline included, in order of appearance
    rows: tuple[ComparisonRow, ...]  # one per non-baseline group
    warnings: tuple[str, ...]
    noise: float
    energy_view: str
    metrics: tuple[str, ...]

    def row(self, label: str) -> ComparisonRow:
        for row in self.rows:
            if row.group.label == label:
                return row
        raise KeyError(label)

    def ratio(self, label: str, metric: str) -> Ratio:
        return self.row(label).ratios[metric]

    def verdict(
        self,
        row: ComparisonRow,
        metric: str,
        label: str | None = None,
        baseline_label: str | None = None,
    ) -> str:
        """The short verdict sentence of one ratio, with the labels the caller shows."""
        return verdict_sentence(
            row.ratios[metric],
            label or row.group.label,
            baseline_label or self.baseline.label,
            energy_view=self.energy_view,
        )

    def sentences(self) -> list[str]:
        """One verdict sentence per row and metric (CLI and reports)."""
        out = []
        for row in self.rows:
            workload = workload_phrase(self.baseline.runs[0]) if row.comparable else None
            for m in self.metrics:
                out.append(
                    verdict_sentence(
                        row.ratios[m],
                        row.group.label,
                        self.baseline.label,
                        energy_view=self.energy_view,
                        workload=workload,
                        differences=row.differences,
                    )
                )
        return out


def _differences(base: RunResult, other: RunResult) -> tuple[str, ...]:
    wa, wb = base.spec.workload_key(), other.spec.workload_key()
    diffs = [name for name, x, y in zip(WORKLOAD_FIELDS, wa, wb, strict=True) if x != y]
    sa, sb = model_hash(base), model_hash(other)
    if sa is not None and sb is not None and sa != sb and "model" not in diffs:
        diffs.append("model file (sha256)")
    elif sa is not None and sb is not None and sa != sb:
        diffs[diffs.index("model")] = "model (and its sha256)"
    return tuple(diffs)


def compare_runs(
    runs: Sequence[RunResult],
    baseline_id: str | None = None,
    metrics: Sequence[str] | None = None,
    energy_view: str = "device",
    cost_profiles: Mapping[str, CostProfile] | None = None,
    noise: float | None = None,
) -> Comparison:
    """Group runs into configurations, pool replicates, and give every ratio to the baseline.

    baseline_id: a run id or unambiguous prefix (default: the first finished run); its whole
    configuration is the baseline. metrics: names from METRICS (default: all). noise: the
    noise threshold δ (default 1 %): faster/slower only when the whole 95 % interval of the
    ratio lies outside [1 − δ, 1 + δ]. cost_profiles: by device. Runs that did not finish are
    left out with a warning; workload mismatches and unknown model hashes are warned about.
    """
    metrics = DEFAULT_METRICS if metrics is None else tuple(metrics)
    noise = DEFAULT_NOISE if noise is None else float(noise)
    if not metrics:
        raise BadInputError("Choose at least one metric to compare.")
    if not 0 <= noise < 1:
        raise BadInputError(f"The noise threshold must be between 0 and 1 (got {noise}).")
    check_energy_view(energy_view)
    for m in metrics:
        if m not in METRICS:
            raise BadInputError(f"Unknown metric {m!r}: choose from {', '.join(METRICS)}.")
    warnings: list[str] = []
    done: list[RunResult] = []
    seen_ids: set[str] = set()
    for run in runs:
        if run.id in seen_ids:
            warnings.append(f"Run {run.id[:8]} was given twice; counted once.")
            continue
        seen_ids.add(run.id)
        if run.status is RunStatus.DONE:
            done.append(run)
        else:
            why = f": {run.reason}" if run.reason else ""
            warnings.append(
                f"Run {run.id[:8]} ({run.spec.label()}) is {run.status.value}{why}; not compared."
            )
    if baseline_id is not None:
        match = [r for r in runs if r.id == baseline_id or r.id.startswith(baseline_id)]
        if not match:
            raise BadInputError(f"Baseline run {baseline_id!r} is not among the runs compared.")
        if len({r.id for r in match}) > 1:
            raise BadInputError(f"Baseline id {baseline_id!r} is ambiguous: give more characters.")
        if match[0].status is not RunStatus.DONE:
            raise BadInputError(
                f"Baseline run {baseline_id!r} is {match[0].status.value}: choose a finished run."
            )
        baseline_run = match[0]
    elif done:
        baseline_run = done[0]
    else:
        raise BadInputError("None of these runs finished: there is nothing to compare.")

    training = {run.spec.scenario is Scenario.TRAINING for run in done}
    if len(training) > 1:
        raise BadInputError(
            "Training runs and inference runs measure different work (a trained token is not "
            "an inference): compare training runs with training runs only."
        )
    grouped: dict[tuple[Any, ...], list[RunResult]] = {}
    for run in done:
        grouped.setdefault((run.spec.config_key(), model_hash(run)), []).append(run)
    keys = list(grouped)
    labels = config_labels([grouped[k][0] for k in keys])
    groups = tuple(
        ConfigGroup(
            key=k,
            label=label,
            run_ids=tuple(r.id for r in grouped[k]),
            runs=tuple(grouped[k]),
            estimates={m: pool(grouped[k], m, energy_view, cost_profiles) for m in metrics},
        )
        for k, label in zip(keys, labels, strict=True)
    )
    base_key = (baseline_run.spec.config_key(), model_hash(baseline_run))
    baseline = next(g for g in groups if g.key == base_key)

    causes = {g.key: quality_causes(g.runs) for g in groups}
    quality = [
        quality_warning(g, causes[g.key], baseline=g is baseline) for g in groups if causes[g.key]
    ]
    base_causes = causes[baseline.key]
    rows = []
    for g in groups:
        if g is baseline:
            continue
        diffs = _differences(baseline.runs[0], g.runs[0])
        comparable = not diffs
        if diffs:
            warnings.append(
                f"{g.label} differs from the baseline {baseline.label} in "
                f"{', '.join(diffs)}: its ratios are not like-for-like."
            )
        if (model_hash(baseline.runs[0]) is None) != (model_hash(g.runs[0]) is None):
            warnings.append(
                f"The model hash of {g.label if model_hash(g.runs[0]) is None else baseline.label} "
                "is unknown: the model's identity cannot be checked."
            )
        unreliable = tuple(
            f"{side} {', '.join(why)}"
            for side, why in (("baseline", base_causes), ("this configuration", causes[g.key]))
            if why
        )
        ratios = {
            m: ratio_of(
                baseline.estimates[m],
                g.estimates[m],
                m,
                noise=noise,
                comparable=comparable,
                unreliable=unreliable,
            )
            for m in metrics
        }
        rows.append(ComparisonRow(g, ratios, comparable, diffs, unreliable))
    if any(r.indicative for row in rows for r in row.ratios.values()):
        quality.append(
            "Some configurations have a single run: their verdicts are indicative, since a run's "
            "own interval says nothing of what changes between runs. Run each at least twice, "
            "interleaved, for a verdict."
        )
    log.debug("compared %d runs in %d groups", len(done), len(groups))
    return Comparison(
        baseline,
        groups,
        tuple(rows),
        (*quality, *warnings),
        noise,
        energy_view,
        tuple(metrics),
    )
