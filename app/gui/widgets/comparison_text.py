"""The compare view's words: short configuration labels, the verdicts panel, report names."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

from wattbench.gui import theme
from wattbench.gui.widgets.bar_charts import display_labels
from wattbench.service.workbench import ComparisonView

log = logging.getLogger(__name__)

REPORT_SUFFIXES = (".html", ".pdf", ".csv", ".json")


def short_labels(view: ComparisonView) -> dict[str, str]:
    """Each configuration's label as the charts and sentences show it."""
    labels = [g.label for g in view.comparison.groups]
    return dict(zip(labels, display_labels(labels), strict=True))


def shorten(text: str, names: Mapping[str, str]) -> str:
    """Replace the engine's full configuration labels in a message by the short ones."""
    for full in sorted(names, key=len, reverse=True):
        text = text.replace(full, names[full])
    return text


def verdict_html(view: ComparisonView) -> str:
    """The verdicts panel: the baseline, then each configuration's sentences, coloured."""
    comp = view.comparison
    names = short_labels(view)
    base = html.escape(names[comp.baseline.label])
    lines = [
        f"<p style='margin:0'><b>Baseline:</b> {base} "
        f"({comp.baseline.replicates} run{'s' if comp.baseline.replicates != 1 else ''})"
        f" · energy view: {html.escape(comp.energy_view)}"
        f" · equivalence band ±{comp.noise * 100:g} %</p>"
    ]
    if not comp.rows:
        lines.append(
            "<p>All runs are replicates of the baseline's configuration: "
            "there is nothing to compare them with.</p>"
        )
    for row in comp.rows:
        items = []
        for metric in comp.metrics:
            ratio = row.ratios[metric]
            # the engine's verdict as it is; unreliable ones are not coloured as a result
            colour = theme.verdict_colour(ratio.kind) or ""
            text = html.escape(
                comp.verdict(row, metric, names[row.group.label], names[comp.baseline.label])
            )
            style = f" style='color:{colour}'" if colour else ""
            items.append(f"<li{style}>{text}</li>")
        lines.append(
            f"<p style='margin:4px 0 0 0'><b>{html.escape(names[row.group.label])}</b>"
            f"</p><ul style='margin:0'>{''.join(items)}</ul>"
        )
    return "".join(lines)


def na_reason(view: ComparisonView, question: str) -> str | None:
    """The board's one line on why a question has no answer (None when it has one, or when
    the board does not ask it)."""
    if view.board is None:
        return None
    answers = [a for a in view.board.answers if a.question == question]
    if not answers or any(a.winner is not None for a in answers):
        return None
    return next((a.na_reason for a in answers if a.na_reason), None)


def with_report_suffix(path: str, chosen_filter: str) -> str:
    """Add the suffix of the chosen filter when the name has none of the known ones."""
    if path.lower().endswith(REPORT_SUFFIXES):
        return path
    for suffix in REPORT_SUFFIXES:
        if f"*{suffix}" in chosen_filter:
            return path + suffix
    return path + ".html"
