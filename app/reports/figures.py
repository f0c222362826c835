"""The report's charts: bars, CDFs, power, batch curves, Pareto, from ``reports.series``.

A chart that has nothing to show is not drawn; `build_charts` says why in `ChartSet.skipped`, so
the report can tell the reader instead of showing an empty frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from wattbench.engine.metrics import METRICS
from wattbench.reports.charts import (
    Chart,
    bar_chart,
    batch_chart,
    cdf_chart,
    pareto_chart,
    timeline_chart,
)
from wattbench.reports.model import ReportModel
from wattbench.reports.series import (
    batch_series,
    latency_samples,
    metric_bars,
    pareto_points,
    power_series,
)
from wattbench.reports.training import is_training

log = logging.getLogger(__name__)

BAR_METRICS: tuple[str, ...] = ("throughput", "latency-p99", "energy", "perf-per-watt", "cost")
GENERATION_BARS: tuple[str, ...] = ("ttft", "decode-tokens-per-s", "tokens-per-j")  # when shown
TRAINING_BARS: tuple[str, ...] = (
    "train-tokens-per-s", "step-time", "train-energy-per-token", "train-tokens-per-j",
    "cost-per-m-train-tokens", "train-tflops",
)  # fmt: skip


@dataclass
class ChartSet:
    charts: list[Chart] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (chart title, why)


def build_charts(model: ReportModel, *, png_dpi: int = 250) -> ChartSet:
    """Every chart the report shows, in reading order."""
    out = ChartSet()
    bars_of = TRAINING_BARS if is_training(model.metrics) else BAR_METRICS
    for metric in bars_of + tuple(m for m in GENERATION_BARS if m in model.metrics):
        info = METRICS[metric]
        bars = metric_bars(model.comparison, metric, scale=model.units[metric].scale)
        title = info.label if info.label[:2] in ("p5", "p9") else info.label.capitalize()
        if all(b.value is None for b in bars):
            reasons = "; ".join(dict.fromkeys(b.na_reason or "not available" for b in bars))
            out.skipped.append((title, f"no configuration has this figure ({reasons})"))
            continue
        out.charts.append(
            bar_chart(
                f"bar_{metric}",
                title,
                model.units[metric].unit,
                bars,
                higher_is_better=info.higher_is_better,
                png_dpi=png_dpi,
            )
        )
    cdfs = latency_samples(model.comparison)
    if cdfs:
        out.charts.append(cdf_chart(cdfs, png_dpi=png_dpi))
    else:
        out.skipped.append(("Latency distribution", "no run has its raw latencies stored"))
    power, _ = power_series(model.comparison)
    if power:
        out.charts.append(timeline_chart(power, png_dpi=png_dpi))
    else:
        out.skipped.append(("Power timeline", "no run has a sampled power trace"))
    batch = batch_series(model.comparison)
    if batch:
        out.charts.append(batch_chart(batch, png_dpi=png_dpi))
    else:
        out.skipped.append(
            ("Throughput vs batch size", "no configuration was measured at two or more batch sizes")
        )
    energy = model.units.get("energy")  # a training report has its own energy per token
    points = [] if energy is None else pareto_points(model.comparison, energy_scale=energy.scale)
    if energy is not None and len(points) >= 2:
        out.charts.append(pareto_chart(points, energy.unit, png_dpi=png_dpi))
    else:
        out.skipped.append(
            ("Pareto view", "fewer than two configurations have both throughput and p99 latency")
        )
    log.debug("built %d charts, skipped %d", len(out.charts), len(out.skipped))
    return out
