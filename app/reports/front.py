"""What the report's first page says: run quality counted, the method in one paragraph, and the
tables that describe the machines once and the ratios compactly.

Plain text and ``tables.Table`` values, shared by the HTML and PDF renderings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from wattbench.domain import units
from wattbench.domain.result import RunStatus
from wattbench.engine.board import MEASURED, Answer
from wattbench.engine.compare import run_causes
from wattbench.engine.metrics import COST_METRICS, METRICS
from wattbench.engine.ratios import Ratio
from wattbench.reports.model import ReportModel, compared
from wattbench.reports.tables import BAD_VERDICTS, GOOD_VERDICTS, Table, TCell
from wattbench.reports.textfmt import counted, ratio_text
from wattbench.reports.training import TRAINING_ENERGY, TRAINING_SPEED, item_words

log = logging.getLogger(__name__)

MACHINES_PER_TABLE = 4
RATIO_GROUPS = (
    ("speed", "Speed ratios", ("throughput", "latency-p50", "latency-p99", "latency-mean")),
    ("energy", "Energy and cost ratios", ("energy", "perf-per-watt", "cost", "co2")),
    ("generation", "Token generation ratios", ("ttft", "tpot", "itl-p99", "decode-tokens-per-s",
                                               "prefill-tokens-per-s")),
    ("generation_energy", "Energy per token ratios", ("tokens-per-j", "prefill-energy-per-token",
                                                      "decode-energy-per-token",
                                                      "cost-per-m-tokens")),
    ("training", "Training ratios", TRAINING_SPEED),
    ("training_energy", "Energy and cost per trained token ratios", TRAINING_ENERGY),
)  # fmt: skip


def board_table(model: ReportModel) -> Table:
    """The verdict board: per question the best configuration, its figure, its ratio to the
    baseline and the runner-up; each basis labelled, estimates never ranked with measurements."""
    board = model.board
    t = Table("board", "Verdict board",
              f"Best configuration per question; 'vs baseline' is its ratio to {board.baseline} "
              "with the 95 % interval and verdict.",
              ["Question", "Basis", "Best", "Figure", "vs baseline", "Runner-up"],
              widths=(1.35, 0.75, 1.5, 1.45, 1.55, 2.2))  # fmt: skip
    for a in board.answers:
        _, best, figure, vs, runner = a.cells()
        basis_kind = "" if a.basis == MEASURED else "est"
        row = [TCell(a.title, "base"), TCell(a.basis, basis_kind)]
        if a.winner is None:
            row.append(TCell(best, "na", span=4))
        else:
            kind = "good" if a.winner.is_baseline is False and _good(a) else ""
            row += [TCell(best, kind), TCell(figure), TCell(vs), TCell(runner)]
        t.rows.append(row)
    notes = list(dict.fromkeys(a.note for a in board.answers if a.note))
    t.notes = [*board.footnote_lines(), *notes]
    return t


def _good(a: Answer) -> bool:
    r = a.winner.ratio if a.winner is not None else None
    return r is not None and r.kind in GOOD_VERDICTS


def _short(cause: str) -> str:
    """'contended (other processes used its cores)' -> 'contended' for a count in brackets."""
    return cause.split(" (")[0]


def quality_line(model: ReportModel) -> str:
    """'2 of 8 compared runs unreliable: not converged (1), contended (1).' (which runs, and
    what to do, are the comparison's warnings that follow it)."""
    done = [e for e in model.runs if compared(e)]
    counts: dict[str, int] = {}
    unreliable = 0
    for e in done:
        causes = run_causes(e.run)
        unreliable += bool(causes)
        for c in causes:
            counts[_short(c)] = counts.get(_short(c), 0) + 1
    n = len(done)
    runs = counted(n, "compared run")
    if unreliable:
        counted_causes = ", ".join(f"{c} ({k})" for c, k in counts.items())
        head = f"{unreliable} of {runs} unreliable: {counted_causes}."
    else:
        every = "The compared run is" if n == 1 else f"All {runs} are"
        head = (f"{every} reliable: converged, not contended, on a steady host, not "
                "throttled, harness overhead in range.")  # fmt: skip
    others = len(model.runs) - n
    if others:
        states = sorted({e.run.status.value for e in model.runs if not compared(e)})
        head += f" {counted(others, 'run')} not compared ({', '.join(states)})."
    return head


def method_paragraph(model: ReportModel) -> str:
    """The method in one paragraph (the appendix has it in full)."""
    presets = sorted({e.run.spec.preset for e in model.runs if e.run.status is RunStatus.DONE})
    eps = sorted({e.run.spec.target_epsilon for e in model.runs})
    eps_text = ", ".join(units.percent(x) for x in eps)
    base = model.baseline.group.label
    per, million = item_words(model.metrics)
    cost = (f"$ {million} comes from the cost profiles listed below: amortised "
            "hardware per hour of use plus energy × tariff × PUE (or a cloud price per hour)."
            if model.cost_profiles else
            "No cost profile was given, so $ and CO2 figures are n/a.")  # fmt: skip
    return (
        "Each run executed in its own process: model load, warm-up until steady, then timed "
        f"calls until the 95 % interval of the mean latency was within ±{eps_text} "
        f"(preset {', '.join(presets) or 'n/a'}) or a time limit stopped it (then marked not "
        "converged). Runs of one configuration are replicates and are pooled by geometric "
        f"mean. Every configuration is compared with the baseline ({base}) as a ratio with a "
        "95 % interval — between runs where both sides have two or more, otherwise from the "
        "runs' own intervals (marked indicative); it is faster/better or slower/worse only "
        f"when the whole interval lies beyond ±{model.noise * 100:g} %. Energy uses the "
        f"{model.energy_view} view, gross {per} (idle power included), from hardware "
        "counters; estimates from a power model are labelled and never ranked against "
        f"measurements. {cost} The full method is in the appendix."
    )


def method_notes(model: ReportModel) -> list[tuple[str, str]]:
    """The method in words: stopping rule, comparison, energy and idle handling, cost."""
    presets = sorted({e.run.spec.preset for e in model.runs})
    per, million = item_words(model.metrics)
    notes = [
        ("Measurement and stopping rule",
         "Each run executed in its own worker process: system description, cold load and first "
         "call, warm-up until two consecutive windows agree within 2 %, calibration of the "
         "timing loop's own cost, then measurement. Measurement stops when ρ — the relative "
         "half-width of the 95 % confidence interval of the mean latency, from k = 20 batch "
         "means — is at most the target ε on two consecutive checks and the two halves of the "
         "measurement agree within 2ε, with at least 10 samples and 1 s (2 s on a GPU); "
         "otherwise at T_max, or earlier when ρ has stopped shrinking (flag rho_plateau), and "
         "the run is marked not converged. "
         f"Presets used: {', '.join(presets)}. Percentiles carry order-statistic intervals; "
         "p99 is a headline figure only with an effective sample size n_eff ≥ 662."),
        ("Comparison",
         "Runs of the same configuration (same workload, runtime, device, threads and model "
         "hash) are replicates: with at least 2 on both sides, a ratio's 95 % interval comes "
         "from the spread between runs (Welch t on the log of each run's figure); with a single "
         "run on either side it combines the runs' own intervals and is labelled 'within-run "
         f"only'. Noise threshold: ±{model.noise * 100:g} %. Ratios between workloads that "
         "differ (model, shapes, precision, batch) are marked not like-for-like."),
        ("Energy and idle handling",
         f"Energy figures use the {model.energy_view} view: 'device' counts the device's own "
         "domains (GPU board, or CPU packages + DRAM); 'system' adds every measured domain. "
         f"Energy {per} is gross (idle power included); the above-idle figure "
         "(E − P_idle × T) / N is listed per domain in the energy sources table, with the idle "
         "power measured before the run until its 5 s rolling mean was stable within ±2 %. "
         "Estimates from a TDP × load model are marked ESTIMATE, drawn hatched in grey, and "
         "never ranked against measurements."),
    ]  # fmt: skip
    if model.cost_profiles:
        notes.append(("Cost assumptions",
                      "Owned hardware: purchase price ÷ (years × 8,766 h × utilization) per "
                      "hour of use, plus energy × electricity tariff × PUE; a cloud $/hour "
                      "replaces both. CO2: energy × PUE × carbon intensity. Uncertainties of "
                      "throughput and energy combine in quadrature. The profiles are listed in "
                      "the cost table."))  # fmt: skip
    else:
        notes.append(("Cost assumptions",
                      f"No cost profile was given, so $ and CO2 {million} are n/a. "
                      "Set a cost profile per device (the Cost profiles page of "
                      "`wattbench gui`) to get them."))  # fmt: skip
    return notes


def machine_tables(model: ReportModel) -> list[Table]:
    """What differs between the machines, a few machines per table; one machine: its
    headline description."""
    ms = model.machines
    shared = ms.shared_line()
    if len(ms.machines) == 1:
        m = ms.machines[0]
        t = Table("machines", "Machine", "All runs were measured on this machine.",
                  ["Item", "Value"], widths=(1.0, 3.0))  # fmt: skip
        for name, value in m.fields.items():
            t.rows.append([TCell(name), TCell(value)])
        t.rows.append([TCell("Configurations"), TCell("; ".join(m.used_by))])
        return [t]
    out = []
    for start in range(0, len(ms.machines), MACHINES_PER_TABLE):
        chunk = ms.machines[start : start + MACHINES_PER_TABLE]
        if start == 0:
            title = "Machines: what differs"
            caption = (f"Only what differs between the {len(ms.machines)} machines. "
                       + (f"Shared by all: {shared}." if shared else ""))  # fmt: skip
        else:
            title, caption = "Machines: what differs (continued)", ""
        key = "machines" if start == 0 else f"machines-{start // MACHINES_PER_TABLE + 1}"
        t = Table(key, title, caption, ["", *(m.title for m in chunk)],
                  widths=(1.2, *([2.0] * len(chunk))))  # fmt: skip
        for name in ms.differing:
            if name == "Host":
                continue
            t.rows.append(
                [TCell(name, "base"), *(TCell(m.fields.get(name, "not recorded")) for m in chunk)]
            )
        t.rows.append([TCell("Configurations", "base"),
                       *(TCell("; ".join(m.used_by)) for m in chunk)])  # fmt: skip
        out.append(t)
    return out


def _ratio_cell(r: Ratio) -> TCell:
    if r.value is None:
        return TCell("n/a", "na")
    text = ratio_text(r.value)
    if r.lo is not None and r.hi is not None:
        text += f" [{units.number(r.lo)}–{units.number(r.hi)}]"
    if r.unreliable:  # the engine's words, as every front end shows them
        return TCell(f"{text} {r.verdict}", "flag")
    word = r.interval_verdict or r.verdict or "no verdict"
    if r.indicative:
        word += ", indicative"
    kind = "good" if r.kind in GOOD_VERDICTS else "bad" if r.kind in BAD_VERDICTS else ""
    return TCell(f"{text} {word}", kind)


def ratio_tables(model: ReportModel) -> list[Table]:
    """Each configuration ÷ the baseline, one row per configuration and one column per metric;
    every n/a reason is said once under its table."""
    base = model.baseline.group.label
    out: list[Table] = []
    rows = model.comparison.rows
    for key, title, wanted in RATIO_GROUPS:
        metrics = [m for m in wanted if m in model.metrics
                   and (model.cost_profiles or m not in COST_METRICS)]  # fmt: skip
        if not metrics or not rows:
            continue
        t = Table(f"ratios_{key}", f"{title} to the baseline ({base})",
                  "Each configuration ÷ the baseline with its 95 % interval and verdict.",
                  ["Configuration", *(METRICS[m].label for m in metrics)],
                  widths=(1.6, *([1.3] * len(metrics))))  # fmt: skip
        reasons: dict[str, list[str]] = {}
        for row in rows:
            label = row.group.label + ("" if row.comparable else " (not like-for-like)")
            cells = [TCell(label)]
            for m in metrics:
                r = row.ratios[m]
                cells.append(_ratio_cell(r))
                if r.value is None:
                    reasons.setdefault(r.na_reason or "not available", []).append(
                        f"{row.group.label} ({METRICS[m].label})"
                    )
            t.rows.append(cells)
        t.notes = [f"n/a — {why}: {', '.join(who)}." for why, who in reasons.items()]
        out.append(t)
    return out


def unreliable_note(tables: Sequence[Table]) -> str:
    """Said once under the ratio tables when a cell reads unreliable."""
    if any(c.kind == "flag" for t in tables for row in t.rows for c in row):
        return (
            "'unreliable': a run on either side is not converged, contended, on an "
            "unsteady host, throttled or has its harness overhead out of range — see Run "
            "quality."
        )
    return ""
