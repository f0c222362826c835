"""The report as data: CSV (one row per run, every figure and flag) and versioned JSON.

Figures are in stored units named in each column (ns, J, items/s); an unknown figure is an
empty CSV cell / JSON null with its reason beside it, never 0. The JSON schema is documented in
docs/report-json.md; bump REPORT_JSON_VERSION on any incompatible change.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
from typing import Any

from wattbench.domain.codec import finite_json, to_document
from wattbench.domain.result import RunResult, result_document
from wattbench.engine.metrics import METRICS
from wattbench.engine.ratios import Ratio
from wattbench.engine.token_energy import token_energy
from wattbench.reports.front import quality_line
from wattbench.reports.model import Cell, ReportModel, RunEntry
from wattbench.reports.sizing import sizing_json
from wattbench.reports.training import TRAINING_COLUMNS, training_fields

log = logging.getLogger(__name__)

REPORT_JSON_FORMAT = "wattbench.report"
REPORT_JSON_VERSION = 1
# Metric → CSV column stem, carrying the stored unit.
METRIC_COLUMNS: dict[str, str] = {
    "throughput": "throughput_items_per_s",
    "latency-p50": "latency_p50_ns",
    "latency-p99": "latency_p99_ns",
    "latency-mean": "latency_mean_ns",
    "energy": "energy_per_item_j",
    "perf-per-watt": "items_per_j",
    "cost": "usd_per_million_items",
    "co2": "co2_g_per_million_items",
}
# the same for the generation metrics, whose columns appear when a report has a generation run
GENERATION_COLUMNS: dict[str, str] = {
    "ttft": "gen_metric_ttft_ns",
    "tpot": "gen_metric_tpot_ns",
    "itl-p50": "gen_metric_itl_p50_ns",
    "itl-p99": "gen_metric_itl_p99_ns",
    "decode-tokens-per-s": "gen_metric_decode_tokens_per_s",
    "prefill-tokens-per-s": "gen_metric_prefill_tokens_per_s",
    "tokens-per-j": "gen_metric_output_tokens_per_j",
    "prefill-energy-per-token": "gen_metric_prefill_j_per_token",
    "decode-energy-per-token": "gen_metric_decode_j_per_token",
    "cost-per-m-tokens": "gen_metric_usd_per_million_output_tokens",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PERCENTILES = (0.5, 0.9, 0.95, 0.99, 0.999)


def _num(v: Any) -> Any:
    """Finite numbers pass; NaN/inf become None (unknown); other values pass unchanged."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def safe_text(s: str) -> str:
    """A user string made inert for spreadsheets: a leading formula character gets a quote."""
    return "'" + s if s.startswith(FORMULA_START) else s


def cell_json(cell: Cell, metric: str) -> dict[str, Any]:
    return {"value": _num(cell.value), "lo": _num(cell.lo), "hi": _num(cell.hi),
            "unit": METRICS[metric].unit, "na_reason": cell.na_reason if cell.value is None
            else None, "note": cell.note or None}  # fmt: skip


def ratio_json(r: Ratio) -> dict[str, Any]:
    return {"value": _num(r.value), "lo": _num(r.lo), "hi": _num(r.hi), "verdict": r.verdict,
            "kind": r.kind, "unreliable": list(r.unreliable), "indicative": r.indicative,
            "method": r.method or None, "runs_per_side_needed": r.reps_needed,
            "settle": r.settle, "too_noisy": r.too_noisy,
            "comparable": r.comparable, "na_reason": r.na_reason}  # fmt: skip


def run_row(e: RunEntry, energy_view: str) -> dict[str, Any]:
    """Every figure and flag of one run, flat, in stored units."""
    r: RunResult = e.run
    s = r.spec
    row: dict[str, Any] = {
        "run_id": r.id, "status": r.status.value, "reason": r.reason or "",
        "error_kind": r.error_kind or "", "created_at": r.created_at,
        "finished_at": r.finished_at or "", "wattbench_version": r.wattbench_version,
        "configuration": e.group_label or "", "host": e.host,
        "model_ref": s.model, "model_name": r.model.name if r.model else "",
        "model_sha256": r.model.sha256 if r.model else "", "scenario": s.scenario.value,
        "device": s.device, "runtime": s.runtime, "precision": s.precision,
        "batch_size": s.batch_size, "threads": s.threads, "preset": s.preset,
        "target_epsilon": s.target_epsilon, "t_max_s": s.measurement_t_max_s,
        "tags": ";".join(s.tags), "notes": r.notes, "converged": r.converged,
        "flags": ";".join(r.flags), "energy_view": energy_view,
    }  # fmt: skip
    for m, col in (METRIC_COLUMNS | GENERATION_COLUMNS | TRAINING_COLUMNS).items():
        if m not in e.cells:
            continue
        c = e.cells[m]
        row[col] = _num(c.value)
        row[col + "_lo"] = _num(c.lo)
        row[col + "_hi"] = _num(c.hi)
        row[col + "_na_reason"] = (c.na_reason or "") if c.value is None else ""
        row[col + "_note"] = c.note
    lat = r.latency
    for f in ("n", "mean_ns", "sd_ns", "cv", "median_ns", "iqr_ns", "mad_ns", "min_ns", "max_ns",
              "mean_lo_ns", "mean_hi_ns", "rho", "r1", "n_eff", "outliers_low", "outliers_high",
              "drift"):  # fmt: skip
        row["latency_" + f] = _num(getattr(lat, f)) if lat else None
    for p in PERCENTILES:
        pe = lat.percentile(p) if lat else None
        name = "latency_p" + f"{p * 100:g}".replace(".", "_")
        row[name + "_value_ns"] = _num(pe.value_ns) if pe else None
        row[name + "_nearest_rank_ns"] = _num(pe.nearest_rank_ns) if pe else None
        row[name + "_lo_ns"] = _num(pe.lo_ns) if pe else None
        row[name + "_hi_ns"] = _num(pe.hi_ns) if pe else None
        row[name + "_headline"] = pe.headline if pe else None
    for k, v in dataclasses.asdict(r.phases).items():
        row["phase_" + k] = _num(v) if isinstance(v, float | int) else v
    if r.generation is not None:
        g = r.generation
        for k in ("ttft_ns", "tpot_ns", "decode_tokens_per_s", "e2e_tokens_per_s",
                  "e2e_latency_ns", "prefill_tokens_per_s"):  # fmt: skip
            iv = getattr(g, k)
            if iv is not None:
                row[f"gen_{k}"], row[f"gen_{k}_lo"], row[f"gen_{k}_hi"] = iv.value, iv.lo, iv.hi
        row["gen_sequences"] = g.sequences
        for pe in g.itl_ns:
            row[f"gen_itl_{pe.name}_ns"] = pe.value_ns
        te, why = token_energy(g, energy_view)
        row["gen_token_energy_na_reason"] = why
        if te is not None:
            for k, v in dataclasses.asdict(te).items():
                row[f"gen_{k}"] = v
    row.update(training_fields(r))
    if r.memory is not None:
        for k, v in dataclasses.asdict(r.memory).items():
            row["memory_" + k] = ";".join(v) if isinstance(v, list | tuple) else v
    row["energy_na_reason"] = r.energy_na_reason or ""
    for fig in r.energy:
        pre = f"energy_{fig.domain}_"
        for k, v in dataclasses.asdict(fig).items():
            if k != "domain":
                row[pre + k] = ";".join(v) if isinstance(v, list | tuple) else _num(v)
        row[pre + "is_estimate"] = fig.is_estimate
    return row


def csv_text(model: ReportModel) -> str:
    """One row per run; the union of every run's columns, in first-seen order."""
    rows = [run_row(e, model.energy_view) for e in model.runs]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else safe_text(v) if isinstance(v, str) else v)
                    for k, v in row.items()})  # fmt: skip
    return buf.getvalue()


def report_json(model: ReportModel) -> dict[str, Any]:
    """The documented JSON document (docs/report-json.md)."""
    ratios = {row.group.label: row for row in model.comparison.rows}
    configurations = []
    for g in model.groups:
        row = ratios.get(g.group.label)
        configurations.append({
            "label": g.group.label, "is_baseline": g.is_baseline, "run_ids": list(g.group.run_ids),
            "replicates": g.group.replicates, "host": g.host, "spec": to_document(g.group.spec),
            "model_sha256": g.group.model_sha256,
            "figures": {m: {**cell_json(g.cells[m], m), "method": g.methods[m] or None}
                        for m in model.metrics},
            "ratios_to_baseline": ({m: ratio_json(row.ratios[m]) for m in model.metrics}
                                   if row is not None else None),
            "comparable": row.comparable if row is not None else True,
            "differences": list(row.differences) if row is not None else [],
        })  # fmt: skip
    return {
        "format": REPORT_JSON_FORMAT,
        "version": REPORT_JSON_VERSION,
        "title": model.title,
        "generated_at": model.generated_at,
        "wattbench_version": model.wattbench_version,
        "energy_view": model.energy_view,
        "noise_threshold": model.noise,
        "metrics": {m: {"label": METRICS[m].label, "unit": METRICS[m].unit,
                        "higher_is_better": METRICS[m].higher_is_better} for m in model.metrics},
        "baseline": model.baseline.group.label,
        "summary": list(model.summary),
        "quality": quality_line(model),
        "board": to_document(model.board),
        "verdicts": list(model.sentences),
        "warnings": list(model.warnings),
        "configurations": configurations,
        "runs": [{"configuration": e.group_label, "host": e.host,
                  "figures": {m: cell_json(e.cells[m], m) for m in model.metrics},
                  "result": result_document(e.run)} for e in model.runs],
        "systems": [{"title": s.title, "used_by": list(s.used_by),
                     "items": [list(kv) for kv in s.items]} for s in model.systems],
        "machines": {"machines": [{"title": m.title, "used_by": list(m.used_by),
                                   "fields": dict(m.fields)} for m in model.machines.machines],
                     "differing": list(model.machines.differing),
                     "shared": dict(model.machines.shared)},
        "cost_profiles": {d: to_document(p) for d, p in model.cost_profiles.items()},
        **sizing_json(model.sizing),
    }  # fmt: skip


def json_text(model: ReportModel) -> str:
    return json.dumps(finite_json(report_json(model)), indent=2, ensure_ascii=False,
                      allow_nan=False, default=str) + "\n"  # fmt: skip
