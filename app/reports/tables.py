"""The report's tables as plain text cells, shared by the HTML and PDF renderings.

Cells hold unescaped text plus a kind ("na", "est", "good", "bad", "base", "flag", or a claim's
verdict: "confirmed", "refuted", "inconclusive", "unreliable"); each renderer
escapes the text for its own format. Unknown figures read "n/a — reason", never 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from wattbench.domain import units
from wattbench.domain.quality import ETA_MEANING, ETA_RANGE_TEXT, eta_out_of_range
from wattbench.domain.result import Interval, RunStatus
from wattbench.engine.metrics import COST_METRICS, METRICS
from wattbench.reports.model import Cell, ReportModel, RunEntry, display_unit
from wattbench.reports.textfmt import NA, interval_text, na, percent_text, sig
from wattbench.reports.training import (
    STEP_CAPTION,
    TRAINING_ENERGY,
    TRAINING_SPEED,
    flops_text,
    is_training,
    loss_text,
    mfu_cell,
    step_text,
)

log = logging.getLogger(__name__)

SPEED_METRICS = ("throughput", "latency-p50", "latency-p99", "latency-mean")
ENERGY_METRICS = ("energy", "perf-per-watt", "cost", "co2")
GENERATION_SPEED = ("ttft", "tpot", "itl-p50", "itl-p99", "decode-tokens-per-s",
                    "prefill-tokens-per-s")  # fmt: skip
GENERATION_ENERGY = ("tokens-per-j", "prefill-energy-per-token", "decode-energy-per-token",
                     "cost-per-m-tokens")  # fmt: skip
# the tables of the report's comparison section, in reading order
COMPARISON_TABLES = ("speed", "energy", "generation_speed", "generation_energy")
# the per-run tables of the appendix, in reading order
APPENDIX_TABLES = ("runs", "generation", "training", "stopping", "startup", "sensors")
GOOD_VERDICTS = ("faster", "better")
BAD_VERDICTS = ("slower", "worse")


@dataclass(frozen=True)
class TCell:
    text: str
    kind: str = ""  # "", "na", "est", "good", "bad", "base", "flag", "mono", or a claim's verdict
    span: int = 1  # columns this cell covers (the row then has fewer cells)


@dataclass
class Table:
    key: str
    title: str
    caption: str
    header: list[str]
    rows: list[list[TCell]] = field(default_factory=list)
    widths: tuple[float, ...] = ()  # relative column widths (PDF); empty = equal
    notes: list[str] = field(default_factory=list)  # said once under the table (n/a reasons)


def figure_cell(cell: Cell, scale: float) -> TCell:
    """'1,234 (95 % CI 1,220–1,250)' in display units, or the n/a reason, or the estimate."""
    if cell.value is None:
        if cell.note.startswith("ESTIMATE"):
            return TCell(cell.note, "est")
        return TCell(na(cell.na_reason), "na")
    text = sig(cell.value * scale)
    iv = interval_text(None if cell.lo is None else cell.lo * scale,
                       None if cell.hi is None else cell.hi * scale)  # fmt: skip
    text += f" [{iv}]" if iv else " (no interval)"
    if cell.note:
        text += f" — {cell.note}"
    return TCell(text)


def _metric_header(model: ReportModel, metric: str) -> str:
    return f"{METRICS[metric].label} ({model.units[metric].unit})"


def figures_table(model: ReportModel, key: str, metrics: Sequence[str], title: str) -> Table:
    header = ["Configuration", "Runs", *(_metric_header(model, m) for m in metrics)]
    t = Table(key, title, "Pooled figures per configuration with 95 % intervals in brackets "
              "(geometric mean across replicate runs; a single run's own interval otherwise).",
              header, widths=(2.2, 0.6, *([1.6] * len(metrics))))  # fmt: skip
    reasons: dict[str, list[str]] = {}
    for g in model.groups:
        label = g.group.label + (" [baseline]" if g.is_baseline else "")
        row = [TCell(label, "base" if g.is_baseline else ""), TCell(str(g.group.replicates))]
        for m in metrics:
            cell = figure_cell(g.cells[m], model.units[m].scale)
            if cell.kind == "na":  # the reason once under the table, not in every cell
                why = g.cells[m].na_reason or "not available"
                reasons.setdefault(why, []).append(f"{g.group.label} ({METRICS[m].label})")
                cell = TCell(NA, "na")
            row.append(cell)
        t.rows.append(row)
    t.notes = [f"n/a — {why}: {', '.join(who)}." for why, who in reasons.items()]
    return t


def generation_figures_tables(model: ReportModel) -> tuple[Table | None, Table | None]:
    """Generation speed, and energy per token with $ per million output tokens, pooled per
    configuration; (None, None) when no run generated tokens."""
    if "ttft" not in model.metrics:
        return None, None
    speed = figures_table(model, "generation_speed", GENERATION_SPEED,
                          "Token generation per configuration")  # fmt: skip
    metrics = GENERATION_ENERGY if model.cost_profiles else GENERATION_ENERGY[:-1]
    title = f"Energy per token per configuration ({model.energy_view} view)"
    energy = figures_table(model, "generation_energy", metrics, title)
    energy.caption += (" Prefill and decode energy split the run's energy by the power sampled "
                       "in each phase (by time, marked ESTIMATE, when the sensor is too coarse "
                       "for a prefill); tokens/J counts output tokens.")  # fmt: skip
    return speed, energy


def energy_table(model: ReportModel) -> Table:
    """Energy (and cost, when cost profiles were given) per configuration: per inference, or
    per trained token for training runs."""
    training = is_training(model.metrics)
    metrics = TRAINING_ENERGY if training else ENERGY_METRICS
    if model.cost_profiles:
        return figures_table(
            model,
            "energy",
            metrics,
            f"Energy and cost per configuration ({model.energy_view} view)",
        )
    t = figures_table(model, "energy", [m for m in metrics if m not in COST_METRICS],
                      f"Energy per configuration ({model.energy_view} view)")  # fmt: skip
    what = "$ per million tokens trained is" if training else "$ and CO2 per million inferences are"
    t.caption += f" No cost profile was given: {what} n/a."
    return t


def run_status_text(e: RunEntry) -> str:
    r = e.run
    if r.status is RunStatus.DONE:
        rho = f" ({units.rho(r.latency.rho)})" if r.latency else ""
        return f"done, converged{rho}" if r.converged else f"done, NOT converged{rho}"
    return f"{r.status.value}: {r.reason or 'no reason recorded'}"


NOTE_PREVIEW_CHARS = 90


def note_preview(note: str) -> str:
    """A run's note in the runs table: whole when short, else its start (the notes follow)."""
    flat = " ".join(note.split())
    if len(flat) <= NOTE_PREVIEW_CHARS:
        return flat or "—"
    return flat[: NOTE_PREVIEW_CHARS - 1] + "… (in full under Notes)"


def runs_table(model: ReportModel) -> Table:
    t = Table("runs", "Every run", "All runs in the report, including those not compared.",
              ["Run", "Configuration", "Status", "Host", "Quality flags", "Tags", "Notes"],
              widths=(0.9, 2.2, 1.5, 1.1, 1.2, 1.0, 1.9))  # fmt: skip
    for e in model.runs:
        r = e.run
        t.rows.append([
            TCell(r.id[:8], "mono"),
            TCell(e.group_label or r.spec.label()),
            TCell(run_status_text(e), "" if r.status is RunStatus.DONE and r.converged else "na"),
            TCell(e.host),
            TCell(", ".join(r.flags) or "none", "flag" if r.flags else ""),
            TCell(", ".join(r.spec.tags) or "—"),
            TCell(note_preview(r.notes)),
        ])  # fmt: skip
    return t


def sensors_table(model: ReportModel) -> Table:
    per = "train-energy-per-token" if is_training(model.metrics) else "energy"
    u = display_unit(per, [f.energy_per_item_j for e in model.runs for f in e.run.energy])
    t = Table("sensors", "Energy sources per run",
              "Each energy figure with where it comes from (source), what it covers (scope), how "
              "it was obtained (method) and its flags. Estimates are marked and never ranked "
              "against measurements.",
              ["Run", "Domain", "Source", "Scope", "Method", "Avg power (W)", "Idle power (W)",
               f"Energy (gross / above idle, {u.unit})", "Flags"],
              widths=(0.75, 0.85, 1.35, 1.05, 1.3, 0.65, 0.65, 1.5, 1.25))  # fmt: skip
    for e in model.runs:
        r = e.run
        if not r.energy:
            if r.status is RunStatus.DONE:
                t.rows.append([TCell(r.id[:8], "mono"), TCell(na(r.energy_na_reason or
                               "no energy figure recorded"), "na", span=8)])  # fmt: skip
            continue
        for f in r.energy:
            kind = "est" if f.is_estimate else ""
            method = f.method + (" — ESTIMATE" if f.is_estimate else "")
            idle = sig(f.idle_power_w) if f.idle_power_w is not None else na("not measured")
            above = (
                sig(f.energy_per_item_above_idle_j * u.scale)
                if f.energy_per_item_above_idle_j is not None
                else na("no idle baseline")
            )
            unc = (f" {units.plus_minus(f.rel_uncertainty)}" if f.rel_uncertainty is not None
                   else "")  # fmt: skip
            t.rows.append([
                TCell(r.id[:8], "mono"), TCell(f.domain), TCell(f.source, kind), TCell(f.scope),
                TCell(method, kind), TCell(sig(f.avg_power_w)), TCell(idle),
                TCell(f"{sig(f.energy_per_item_j * u.scale)}{unc} / {above}", kind),
                TCell(", ".join(f.flags) or "none", "flag" if f.flags else ""),
            ])  # fmt: skip
    return t


def stopping_table(model: ReportModel) -> Table:
    t = Table("stopping", "Stopping rule per run",
              "Target ε is the relative half-width of the 95 % CI of the mean latency at which "
              "measurement stops (two consecutive checks, the halves of the run within 2ε); "
              "T_max stops it otherwise, or earlier a ρ that stopped shrinking.",
              ["Run", "Preset", "Target ε", "Reached ρ", "T_max", "Samples (n / n_eff)",
               "Measured for", "Warm-up", "Block size"],
              widths=(0.9, 0.7, 0.6, 0.7, 0.6, 1.1, 0.8, 1.2, 0.6))  # fmt: skip
    for e in model.runs:
        r = e.run
        if r.status is not RunStatus.DONE:
            continue
        s, ph, lat = r.spec, r.phases, r.latency
        t.rows.append([
            TCell(r.id[:8], "mono"), TCell(s.preset), TCell(percent_text(s.target_epsilon)),
            TCell(units.rho(lat.rho) if lat else na("no latency"), "" if r.converged else "na"),
            TCell(f"{sig(s.measurement_t_max_s)} s"),
            TCell(f"{lat.n:,} / {lat.n_eff:,.0f}" if lat else na("no latency")),
            TCell(f"{sig(ph.measure_s)} s" if ph.measure_s else na("not recorded")),
            TCell(f"{ph.warmup_iterations} iterations, {sig(ph.warmup_s) if ph.warmup_s else 0} s"
                  + ("" if ph.warmup_steady else " (unsteady)")),
            TCell(str(ph.block_size)),
        ])  # fmt: skip
    return t


def cost_table(model: ReportModel) -> Table | None:
    if not model.cost_profiles:
        return None
    t = Table("cost", "Cost assumptions", "Per-device cost profiles used for $ and CO2 figures; "
              "blank: not set (never taken as 0).",
              ["Device", "Profile", "Purchase", "Amortization", "Utilization", "Electricity",
               "PUE", "Carbon", "Cloud"],
              widths=(0.9, 0.9, 1.0, 1.15, 1.0, 1.1, 0.6, 1.1, 0.9))  # fmt: skip
    for dev, p in model.cost_profiles.items():

        def opt(v: float | None, unit: str) -> str:
            return "not set" if v is None else f"{sig(v)} {unit}".strip()

        t.rows.append([TCell(dev), TCell(p.name or "—"), TCell(opt(p.purchase_price_usd, "USD")),
                       TCell(opt(p.amortization_years, "years")),
                       TCell(percent_text(p.utilization)),
                       TCell(opt(p.electricity_usd_per_kwh, "USD/kWh")), TCell(sig(p.pue)),
                       TCell(opt(p.carbon_g_per_kwh, "gCO2/kWh")),
                       TCell(opt(p.cloud_usd_per_hour, "USD/h"))])  # fmt: skip
    return t


def _iv_text(iv: Interval, scale: float, unit: str) -> str:
    lo = None if iv.lo is None else iv.lo * scale
    hi = None if iv.hi is None else iv.hi * scale
    ci = interval_text(lo, hi)
    return f"{sig(iv.value * scale)} {unit}".strip() + (f" [{ci}]" if ci else " (no interval)")


def generation_table(model: ReportModel) -> Table | None:
    """Token generation figures per run; None when no run generated tokens."""
    runs = [e for e in model.runs if e.run.generation is not None]
    if not runs:
        return None
    t = Table("generation", "Token generation per run",
              "Time to first token, time per output token = (latency − TTFT) / (tokens − 1), "
              "and tokens per second, with 95 % intervals.",
              ["Run", "Configuration", "Prompt / new tokens × sequences", "TTFT", "TPOT",
               "ITL p99", "Decode tokens/s", "Prefill tokens/s", "End-to-end tokens/s"],
              widths=(0.9, 1.8, 1.0, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2))  # fmt: skip
    for e in runs:
        g = e.run.generation
        assert g is not None
        itl = g.itl(0.99)
        t.rows.append([
            TCell(e.run.id[:8], "mono"), TCell(e.group_label or e.run.spec.label()),
            TCell(f"{g.prompt_tokens} / {g.new_tokens} × {g.sequences}"),
            TCell(_iv_text(g.ttft_ns, 1e-6, "ms")), TCell(_iv_text(g.tpot_ns, 1e-6, "ms")),
            TCell(na("not recorded"), "na") if itl is None else
            TCell(_iv_text(Interval(itl.value_ns, itl.lo_ns, itl.hi_ns), 1e-6, "ms")),
            TCell(_iv_text(g.decode_tokens_per_s, 1, "")),
            TCell(na("not recorded"), "na") if g.prefill_tokens_per_s is None else
            TCell(_iv_text(g.prefill_tokens_per_s, 1, "")),
            TCell(_iv_text(g.e2e_tokens_per_s, 1, "")),
        ])  # fmt: skip
    return t


def _bytes_text(n: int | None, why: str) -> TCell:
    return TCell(na(why), "na") if n is None else TCell(f"{sig(n / 2**20)} MiB")


def startup_table(model: ReportModel) -> Table:
    """Cold start, harness overhead and memory per finished run."""
    t = Table("startup", "Cold start, harness and memory per run",
              "Model load and first call are timed apart from the measurement; "
              f"η is the {ETA_MEANING}, flagged outside {ETA_RANGE_TEXT}; memory comes from "
              "a separate pass.",
              ["Run", "Model load", "First call", "Harness overhead (η)", "Peak host RSS",
               "Torch allocated peak", "GPU process peak"],
              widths=(0.9, 0.9, 0.9, 1.3, 1.1, 1.1, 1.1))  # fmt: skip
    for e in model.runs:
        r = e.run
        if r.status is not RunStatus.DONE:
            continue
        ph, mem = r.phases, r.memory
        over = (percent_text(ph.harness_overhead_fraction)
                if ph.harness_overhead_fraction is not None else "n/a")  # fmt: skip
        eta = units.eta(ph.harness_efficiency, meaning=False)
        why = "no memory pass" if mem is None else "not measurable here"
        t.rows.append([
            TCell(r.id[:8], "mono"),
            TCell(f"{sig(ph.cold_load_s)} s" if ph.cold_load_s is not None else na("not recorded")),
            TCell(f"{sig(ph.first_call_ns * 1e-6)} ms" if ph.first_call_ns is not None
                  else na("not recorded")),
            TCell(f"{over} ({eta})", "flag" if eta_out_of_range(ph.harness_efficiency) else ""),
            _bytes_text(mem.peak_rss_bytes if mem else None, why),
            _bytes_text(mem.torch_allocated_peak_bytes if mem else None, why),
            _bytes_text(mem.gpu_process_peak_bytes if mem else None, why),
        ])  # fmt: skip
    return t


def training_table(model: ReportModel) -> Table | None:
    """Each training run's step, model FLOPs per token, achieved TFLOP/s with MFU and loss;
    None when no run trained."""
    runs = [e for e in model.runs if e.run.training is not None]
    if not runs:
        return None
    t = Table("training", "Training step per run", STEP_CAPTION,
              ["Run", "Configuration", "Step (tokens per step)", "Model FLOPs per token",
               "Achieved TFLOP/s", "MFU", "Loss first → last"],
              widths=(0.8, 1.6, 1.5, 1.7, 1.1, 2.2, 1.5))  # fmt: skip
    for e in runs:
        tr = e.run.training
        assert tr is not None
        tflops, mfu = mfu_cell(e.run)
        t.rows.append([
            TCell(e.run.id[:8], "mono"), TCell(e.group_label or e.run.spec.label()),
            TCell(step_text(tr)), TCell(flops_text(tr)),
            TCell(tflops, "na" if tflops.startswith(NA) else ""),
            TCell(mfu, "na" if mfu.startswith(NA) else ""), TCell(loss_text(tr)),
        ])  # fmt: skip
    return t


def said_once(t: Table | None) -> Table | None:
    """A per-run table whose 'n/a — reason' cells read 'n/a', each reason said once under it
    with the columns it concerns."""
    if t is None:
        return None
    reasons: dict[str, list[str]] = {}
    for row in t.rows:
        col = 0
        for i, c in enumerate(row):
            prefix = f"{NA} — "
            if c.kind == "na" and c.span == 1 and c.text.startswith(prefix):
                cols = reasons.setdefault(c.text[len(prefix) :], [])
                if t.header[col] not in cols:
                    cols.append(t.header[col])
                row[i] = TCell(NA, "na")
            col += c.span
    t.notes += [f"{NA} — {why}: {', '.join(cols)}." for why, cols in reasons.items()]
    return t


def all_tables(model: ReportModel) -> dict[str, Table | None]:
    gen_speed, gen_energy = generation_figures_tables(model)
    training = is_training(model.metrics)
    speed = (
        figures_table(model, "speed", TRAINING_SPEED, "Training speed per configuration")
        if training
        else figures_table(model, "speed", SPEED_METRICS, "Speed per configuration")
    )
    return {
        "speed": speed,
        "energy": energy_table(model),
        "generation": said_once(generation_table(model)),
        "training": said_once(training_table(model)),
        "generation_speed": gen_speed,
        "generation_energy": gen_energy,
        "runs": runs_table(model),
        "startup": said_once(startup_table(model)),
        "stopping": said_once(stopping_table(model)),
        "sensors": sensors_table(model),
        "cost": cost_table(model),
    }  # fmt: skip
