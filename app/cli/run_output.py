"""What ``wattbench run`` prints: the results table with its notes, or the JSON document.

The JSON document (docs/cli-json.md) holds each run as its documented result document plus
``energy_summary``, the device figure the table shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from wattbench import __version__
from wattbench.cli.common import Footnotes, error_text, plural, print_lines, print_table
from wattbench.domain import units
from wattbench.domain.cost import CostProfile
from wattbench.domain.energy import view_figure
from wattbench.domain.errors import WattbenchError
from wattbench.domain.instances import instances_lines
from wattbench.domain.interference import interference_text
from wattbench.domain.result import GenerationSummary, Interval, RunResult, result_document
from wattbench.domain.server import server_lines
from wattbench.domain.training import FLOPS_FORMULA, data_parallel_lines
from wattbench.engine.cost import cost_figures, energy_per_item, usd_per_million_output_tokens
from wattbench.engine.token_energy import token_energy
from wattbench.engine.training_metrics import achieved_tflops, run_mfu, training_metric

JSON_FORMAT = "wattbench.run-output"
JSON_FORMAT_VERSION = 1
HEADERS = (
    "run",
    "status",
    "throughput /s",
    "mean per call",
    "p50 per call",
    "p90 per call",
    "p99 per call",
    "ρ",
    "conv.",
    "flags",
)
# left out, in this order, on a console too narrow for every column (``show ID`` and --json
# have them): the p90 between the p50 and the p99, then the mean beside the p50
DROPPABLE = ("p90 per call", "mean per call")


def _with_interval(value: float | None, lo: float | None, hi: float | None) -> str:
    return units.estimate(value, lo, hi, units.duration_ns)


def _dagger_note(with_interval: bool, without_interval: bool) -> str:
    """The † footnote, saying what the marked cells show."""
    shows = []
    if with_interval:
        shows.append("the estimate with its 95 % interval in brackets")
    if without_interval:
        shows.append("the estimate alone where too few samples give no interval")
    return (
        "† not a headline figure: too few effective samples (METHOD.md: p90 needs n_eff ≥ 64, "
        f"p99 ≥ 662); the cell shows {' or '.join(shows)}"
    )


def energy_mark(r: RunResult, footnotes: Footnotes) -> str:
    """The footnote mark of why the run's device energy was not measured."""
    f = view_figure(r, "device")
    why = r.energy_na_reason or (None if f is not None else "no power sensor for this device")
    return footnotes.mark(f"measured energy n/a: {why}") if why else ""


def energy_text(r: RunResult, footnotes: Footnotes | None = None) -> str:
    """The run device's energy in words: measured, or n/a with why beside a labelled estimate.
    With ``footnotes`` the why is a mark whose reason is printed once below the table."""
    f = view_figure(r, "device")
    why = r.energy_na_reason or (None if f is not None else "no power sensor for this device")
    if footnotes is not None and why:
        why_text = f" ({energy_mark(r, footnotes)})"
    else:
        why_text = f": {why}" if why else ""
    if f is None:
        return f"{units.NA}{why_text}" if footnotes is not None else units.na(why)
    text = (
        f"{units.energy_j(f.energy_per_item_j)}/item, {units.power_w(f.avg_power_w)} [{f.source}]"
    )
    if f.is_estimate:
        text += " (estimate: TDP × load model, not a measurement)"
        if r.energy_na_reason:
            text = f"measured n/a{why_text}; {text}"
    other = [fl for fl in f.flags if fl != "estimate"]
    if other:
        text += f" flags: {', '.join(other)}"
    return text


def _iv_ns(iv: Interval | None) -> str:
    return units.NA if iv is None else _with_interval(iv.value, iv.lo, iv.hi)


def _iv_rate(iv: Interval | None) -> str:
    return units.NA if iv is None else units.estimate(iv.value, iv.lo, iv.hi) + " tokens/s"


def token_energy_text(g: GenerationSummary, view: str = "device") -> str:
    """J per prompt / decoded token (gross and above idle) and output tokens per joule."""
    te, why = token_energy(g, view)
    if te is None:
        return units.na(why)
    text = (
        f"prefill {units.energy_j(te.prefill_j_per_token)}/token, decode "
        f"{units.energy_j(te.decode_j_per_token)}/token"
    )
    if te.prefill_above_idle_j_per_token is not None:
        text += (
            f" (above idle: prefill {units.energy_j(te.prefill_above_idle_j_per_token)}, "
            f"decode {units.energy_j(te.decode_above_idle_j_per_token)})"
        )
    text += f", {units.number(te.tokens_per_j)} output tokens/J"
    if te.estimate:
        text += f" (estimate: {te.note})" if te.note else " (estimate)"
    else:
        text += f" (measured, {te.method})"
    return text


def _usd(iv: Interval | None) -> str:
    return units.NA if iv is None else f"${units.number(iv.value)}"


def inference_cost(run: RunResult, p: CostProfile) -> dict[str, str]:
    """$ per million inferences of a run on a cost profile, in words: the measured figure, or
    the part that needs no energy reading (hardware: a lower bound) with why the rest is
    missing; and apart from it the figure an energy estimate gives, labelled as one."""
    measured = cost_figures(run, p, allow_estimate=False)
    if measured.usd_per_million is not None:
        usd, counts = _usd(measured.usd_per_million), measured.basis
        if measured.energy_usd_per_million is not None:
            counts += " (measured energy)"
    elif measured.capital_usd_per_million is not None:
        usd = f"≥ {_usd(measured.capital_usd_per_million)}"
        counts = f"hardware only (energy n/a: {energy_per_item(run, 'device')[1]})"
    else:
        usd, counts = units.NA, measured.usd_na_reason or ""
    estimate = "—"
    with_estimate = cost_figures(run, p, allow_estimate=True)
    if with_estimate.usd_is_estimate:
        estimate = (
            f"{_usd(with_estimate.usd_per_million)} (estimate: energy from "
            f"{with_estimate.energy_source or 'a model'})"
        )
    return {"usd_per_million": usd, "counts": counts, "estimate": estimate}


def inference_cost_text(run: RunResult, p: CostProfile, footnotes: Footnotes | None = None) -> str:
    """inference_cost in one line; with ``footnotes``, a missing energy's reason is the mark
    the energy line already printed, not the reason again."""
    c = inference_cost(run, p)
    counts = c["counts"]
    if footnotes is not None and counts.startswith("hardware only"):
        counts = f"hardware only, a lower bound (measured energy n/a {energy_mark(run, footnotes)})"
    what = "tokens trained" if run.training is not None else "inferences"
    text = f"{c['usd_per_million']} per million {what}: {counts}"
    return text + (f"; with estimated energy {c['estimate']}" if c["estimate"] != "—" else "")


def token_cost_text(r: RunResult, profile: CostProfile) -> str:
    """$ per million output tokens from a cost profile, labelled as the cost figures are."""
    iv, why, estimate = usd_per_million_output_tokens(r, profile)
    if iv is None:
        return units.na(why)
    name = f"profile {profile.name!r}" if profile.name else f"the {profile.device} profile"
    text = f"{units.estimate(iv.value, iv.lo, iv.hi)} USD per million output tokens ({name}"
    return text + (", estimate: the energy part rests on a TDP × load model)" if estimate else ")")


def generation_lines(r: RunResult, profile: CostProfile | None = None) -> list[str]:
    """A generation run's figures in words (run and show output); none for other runs.
    With the cost profile of the run's device, also its $ per million output tokens."""
    g = r.generation
    if g is None:
        return []
    seqs = f"{plural(g.sequences, 'concurrent sequence')}"
    lines = [
        f"generation ({g.prompt_tokens}-token prompt, {g.new_tokens} new tokens, {seqs}): "
        f"TTFT {_iv_ns(g.ttft_ns)}, TPOT {_iv_ns(g.tpot_ns)}, end-to-end "
        f"{_iv_ns(g.e2e_latency_ns)} per sequence",
        f"tokens/s: decode {_iv_rate(g.decode_tokens_per_s)}, prefill "
        f"{_iv_rate(g.prefill_tokens_per_s)}, end-to-end {_iv_rate(g.e2e_tokens_per_s)}",
    ]
    if g.itl_ns:
        itl = ", ".join(
            f"{pe.name} {_with_interval(pe.value_ns, pe.lo_ns, pe.hi_ns)}"
            + ("" if pe.headline else " (not a headline)")
            for pe in g.itl_ns
        )
        lines.append(f"inter-token latency: {itl} over {units.count(g.itl_steps)} decode steps")
    lines.append(f"energy per token: {token_energy_text(g)}")
    if profile is not None:
        lines.append(f"cost: {token_cost_text(r, profile)}")
    if g.unconverged:
        lines.append(f"not within epsilon: {', '.join(g.unconverged)}")
    return lines


def training_lines(r: RunResult) -> list[str]:
    """A training run's step, FLOPs, MFU and loss in words (run and show output); a
    data-parallel run's figures per device and per node too, MFU per device."""
    t, thr = r.training, r.throughput_items_per_s
    if t is None or thr is None or r.latency is None:
        return []
    lat = r.latency
    ckpt = ", activation checkpointing" if t.activation_checkpointing else ""
    step = _with_interval(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns)
    # model FLOP/s of one device: with N data-parallel ranks, its share of the node's tokens/s
    per_device, _ = training_metric(r, "train-tokens-per-s-per-device", "device", None)
    device = achieved_tflops(r, per_device or thr)
    achieved = units.estimate(device.value, device.lo, device.hi)
    _, words = run_mfu(r, achieved_tflops(r, thr).value)
    ranks = f" × {t.data_parallel} ranks" if t.data_parallel > 1 else ""
    per = " per device" if t.data_parallel > 1 else ""
    lines = [
        f"training step: {t.micro_batch} sequence(s) × {t.grad_accum} micro-batch(es) × "
        f"{t.seq_len} tokens{ranks} = {units.count(t.tokens_per_step)} tokens ({t.optimizer}, "
        f"{r.spec.precision}{ckpt}); step time {step}; "
        f"{units.estimate(thr.value, thr.lo, thr.hi)} tokens/s (an item is a trained token)",
        f"model FLOPs: {units.number(t.flops_per_token / 1e9, 4)} GFLOP per token, "
        f"{FLOPS_FORMULA} with N = {units.count(t.parameters)}, L = {t.layers}, "
        f"d = {t.width}, s = {t.seq_len}",
        f"achieved {achieved} TFLOP/s{per} on {t.device_name or r.spec.device}; {words}",
        *data_parallel_lines(t, thr.value, r.phases.measure_s or 0.0),
    ]
    if t.loss_first is not None and t.loss_last is not None:
        verdict = "falls: the step trains" if t.loss_decreased else "did not fall: it may not train"
        lines.append(
            f"loss on the fixed batch: {t.loss_first:.4g} → {t.loss_last:.4g} over "
            f"{units.count(t.steps)} steps ({verdict})"
        )
    return lines


def micro_batch_search_text(tries: Sequence[tuple[int, bool]]) -> str:
    """'micro-batch search: 8 fits, 16 fits, 32 out of memory, 24 fits … → 28 sequences'."""
    steps = ", ".join(f"{n} {'fits' if ok else 'out of memory'}" for n, ok in tries)
    best = max((n for n, ok in tries if ok), default=None)
    return f"micro-batch search: {steps} → {best} sequences (the largest that fit)"


def _cells(i: int, r: RunResult, label: str) -> tuple[list[str], set[bool]]:
    """A result row, and for each percentile in it that is not a headline number whether it
    shows an interval."""
    cells = [f"{i}. {label}", r.status.value]
    if not r.ok or r.latency is None:
        return cells + ["-"] * (len(HEADERS) - 2), set()
    lat, thr = r.latency, r.throughput_items_per_s
    thr_text = units.NA if thr is None else units.estimate(thr.value, thr.lo, thr.hi)
    pcts, daggers = [], set()
    for p in (0.5, 0.9, 0.99):
        pe = lat.percentile(p)
        if pe is None:
            pcts.append(units.NA)
            continue
        if not pe.headline:
            daggers.add(units.finite(pe.lo_ns) and units.finite(pe.hi_ns))
        pcts.append(_with_interval(pe.value_ns, pe.lo_ns, pe.hi_ns) + ("" if pe.headline else " †"))
    cells += [
        thr_text,
        _with_interval(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns),
        *pcts,
        units.rho(lat.rho),
        "yes" if r.converged else "no",
        ", ".join(r.flags) or "-",
    ]
    return cells, daggers


def _notes(
    i: int, r: RunResult, footnotes: Footnotes, profile: CostProfile | None = None
) -> list[str]:
    if not r.ok or r.latency is None:
        return [f"{i}. {r.status.value}: {r.reason}"]
    notes = [f"{i}. energy: {energy_text(r, footnotes)}"]
    notes += [f"{i}. {line}" for line in generation_lines(r, profile)]
    if profile is not None and r.generation is None:
        notes.append(f"{i}. cost: {inference_cost_text(r, profile, footnotes)}")
    notes += [f"{i}. {line}" for line in (instances_lines(r.instances) if r.instances else [])]
    notes += [f"{i}. {line}" for line in (server_lines(r.server) if r.server else [])]
    notes += [f"{i}. {line}" for line in training_lines(r)]
    if r.training is not None and r.training.micro_batch_tries:
        notes.append(f"{i}. {micro_batch_search_text(r.training.micro_batch_tries)}")
    batch = r.spec.batch_size
    if batch > 1 and r.training is None:
        mean = r.latency.mean_ns
        notes.append(
            f"{i}. latency {units.per_call_label(batch)}: mean {units.duration_ns(mean)}, "
            f"that is {units.per_item(mean, batch)}"
        )
    ph = r.phases
    notes.append(
        f"{i}. phases: worker start {units.duration_s(ph.worker_start_s)}, load "
        f"{units.duration_s(ph.cold_load_s)}, warm-up {units.duration_s(ph.warmup_s)}, "
        f"measuring {units.duration_s(ph.measure_s)}, total {units.duration_s(ph.total_s)}"
        + (f"; {units.eta(ph.harness_efficiency)}" if ph.harness_efficiency is not None else "")
    )
    notes.append(f"{i}. interference: {interference_text(r.interference)}")
    if r.notes:
        notes.append(f"{i}. {r.notes}")
    return notes


def print_results(
    results: Sequence[RunResult], profiles: Mapping[str, CostProfile] | None = None
) -> None:
    """The runs' table and notes; with the cost profiles by device, each run's $ per million
    (the hardware part alone, a lower bound, where the energy is unknown)."""
    models = {r.spec.model_label for r in results}
    title = f"wattbench run: {next(iter(models))}" if len(models) == 1 else "wattbench run"
    rows, notes, daggers, footnotes = [], [], set(), Footnotes()
    for i, r in enumerate(results, 1):
        label = r.spec.label()
        if len(models) == 1:
            label = label.removeprefix(r.spec.model_label + " · ")
        cells, marked = _cells(i, r, label)
        rows.append(cells)
        daggers |= marked
        notes += _notes(i, r, footnotes, (profiles or {}).get(r.spec.device))
    print_table(HEADERS, rows, title=title, lines=len(results) > 1, droppable=DROPPABLE)
    if daggers:
        notes.append(_dagger_note(True in daggers, False in daggers))
    print_lines(notes + footnotes.lines())


def energy_summary(r: RunResult) -> dict[str, Any]:
    """The device energy figure shown in the table, for JSON readers too; for a generation run
    also its energy per token (``token_energy``: null with ``token_energy_na_reason``)."""
    out: dict[str, Any] = {"text": energy_text(r), "na_reason": r.energy_na_reason}
    if r.generation is not None:
        te, why = token_energy(r.generation)
        out["token_energy"] = None if te is None else dataclasses.asdict(te)
        out["token_energy_na_reason"] = why or None
        out["token_energy_text"] = token_energy_text(r.generation)
    return out


def json_document(
    results: Sequence[RunResult],
    exit_code: int,
    *,
    error: WattbenchError | None = None,
    store: dict[str, Any] | None = None,
) -> dict[str, Any]:
    runs = [result_document(r) | {"energy_summary": energy_summary(r)} for r in results]
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "wattbench_version": __version__,
        "exit_code": exit_code,
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "message": error_text(error),
            "exit_code": error.exit_code,
        },
        "store": store or {"saved": 0, "warning": None},
        "runs": runs,
    }
