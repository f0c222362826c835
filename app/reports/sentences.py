"""The report's plain sentences: one per configuration, its main ratios to the baseline."""

from __future__ import annotations

from wattbench.domain.result import RunResult
from wattbench.engine.compare import Comparison
from wattbench.engine.metrics import COST_METRICS, METRICS
from wattbench.engine.ratios import Ratio

# Metrics whose ratios make the one-line summary of each configuration.
SUMMARY_METRICS: tuple[str, ...] = ("throughput", "perf-per-watt", "cost")
# the same for training runs: an item is a trained token
TRAINING_SUMMARY: tuple[str, ...] = (
    "train-tokens-per-s", "train-tokens-per-j", "cost-per-m-train-tokens",
)  # fmt: skip


def summary_metrics(comparison: Comparison) -> tuple[str, ...]:
    return TRAINING_SUMMARY if "train-tokens-per-s" in comparison.metrics else SUMMARY_METRICS


def model_name(run: RunResult) -> str:
    if run.model is not None and run.model.name:
        return run.model.name
    return run.spec.model


def _r(x: float) -> str:
    return f"{x:.3f}" if abs(x - 1) < 0.05 else f"{x:.2f}" if x < 10 else f"{x:.3g}"


def summary_lines(comparison: Comparison, *, with_cost: bool) -> tuple[str, ...]:
    """One sentence per configuration with its main ratios to the baseline, then one line per
    ratio that is n/a for the same reason, naming the configurations: the reason is said once,
    not in every sentence. Without cost profiles, cost is not mentioned at all."""
    lines: list[str] = []
    missing: dict[tuple[str, str], list[str]] = {}
    for row in comparison.rows:
        for m in summary_metrics(comparison):
            r = row.ratios.get(m)
            if r is not None and r.value is None and (with_cost or m not in COST_METRICS):
                missing.setdefault((m, r.na_reason or "not available"), []).append(row.group.label)
        sentence = summary_sentence(comparison, row.group.label)
        if sentence:
            lines.append(sentence)
    for (m, reason), labels in missing.items():
        who = "every configuration" if len(labels) == len(comparison.rows) else ", ".join(labels)
        lines.append(f"No {METRICS[m].label} ratio for {who} — {reason}.")
    return tuple(lines)


def summary_sentence(comparison: Comparison, group_label: str) -> str:
    """One plain sentence per configuration: throughput, inferences per joule and cost ratios
    that exist ('' when none does).

    E.g. "On ResNet-50 at batch 32, cuda:0 delivers 0.80× the throughput of cpu (95 % CI
    0.78–0.82, slower) and 1.9× its inferences per joule (95 % CI 1.8–2.0, better)."
    """
    row = comparison.row(group_label)
    base = comparison.baseline
    b_spec, a_spec = row.group.spec, base.spec
    name = model_name(row.group.runs[0])
    if b_spec.batch_size == a_spec.batch_size:
        where = f"On {name} at batch {b_spec.batch_size}, "
    else:
        where = f"On {name} (batch {b_spec.batch_size} vs {a_spec.batch_size}), "
    parts: list[str] = []
    for m in summary_metrics(comparison):
        ratio = row.ratios.get(m)
        if ratio is not None and ratio.value is not None:
            parts.append(_clause(ratio, base.label if not parts else None))
    if not parts:
        return ""
    text = where + f"{group_label} " + _join(parts) + "."
    if row.unreliable:
        text += f" Unreliable: {'; '.join(row.unreliable)}."
    if not row.comparable:
        text += f" Not like-for-like: the workloads differ in {', '.join(row.differences)}."
    return text


def _clause(ratio: Ratio, base_label: str | None) -> str:
    """'delivers 0.80× the throughput of A (95 % CI …)', or the shorter follow-up form."""
    info = METRICS[ratio.metric]
    assert ratio.value is not None
    own = "its" if base_label is None else "the"
    verbs = {
        "throughput": f"delivers {_r(ratio.value)}× {own} throughput",
        "perf-per-watt": f"{_r(ratio.value)}× {own} inferences per joule",
        "cost": f"{_r(ratio.value)}× {own} cost per million inferences",
    }
    text = verbs.get(ratio.metric, f"{_r(ratio.value)}× {own} {info.label}")
    if base_label is not None:
        text += f" of {base_label}"
    if ratio.lo is not None and ratio.hi is not None:
        verdict = "unreliable" if ratio.unreliable else ratio.verdict  # why: once, after
        text += f" (95 % CI {_r(ratio.lo)}–{_r(ratio.hi)}, {verdict})"
    else:
        text += f" (no interval: {ratio.na_reason})" if ratio.na_reason else " (no interval)"
    return text


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    if len(parts) == 2:
        return f"{parts[0]} and {parts[1]}"
    return ", ".join(parts[:-1]) + f" and {parts[-1]}"
