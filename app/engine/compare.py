"""Comparing runs: ratios to a baseline with 95 % intervals and verdicts (METHOD.md).

Runs are grouped into configurations and pooled (``metrics``), every group gets its ratio to
the baseline's with an interval and a verdict (``ratios``), and workloads that differ are
warned about. The unit of replication is the process run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattbench.domain.cost import CostProfile
from wattbench.domain.energy import check_energy_view
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult, RunStatus
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

# -- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    group: ConfigGroup
    ratios: Mapping[str, Ratio]
    comparable: bool
    differences: tuple[str, ...]  # what differs from the baseline's workload


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
        ratios = {
            m: ratio_of(
                baseline.estimates[m], g.estimates[m], m, noise=noise, comparable=comparable
            )
            for m in metrics
        }
        rows.append(ComparisonRow(g, ratios, comparable, diffs))
    log.debug("compared %d runs in %d groups", len(done), len(groups))
    return Comparison(
        baseline, groups, tuple(rows), tuple(warnings), noise, energy_view, tuple(metrics)
    )
