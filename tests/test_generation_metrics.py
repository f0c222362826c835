"""Generation measured the way serving measures it, and its energy and cost per token.

The timing loop runs on a replayed clock (a scripted decode-step trace), the energy split on a
replayed power trace with known phases, the cost on a given profile: fake input to the real
code. One real quick run of the built-in GPT decoder checks the identities end to end, through
the store and the CLI.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wattbench.backends.sensors.base import Domain
from wattbench.cli.main import main
from wattbench.cli.run_output import json_document
from wattbench.db.store import open_store
from wattbench.domain import codec
from wattbench.domain.cost import CostProfile
from wattbench.domain.result import (
    GenerationSummary,
    Interval,
    RunResult,
    RunStatus,
    result_document,
)
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.energy.figures import DomainSeries, compute_report
from wattbench.engine import generation, runner, timing, token_energy
from wattbench.engine.compare import compare_runs
from wattbench.engine.cost import usd_per_million_output_tokens
from wattbench.engine.metrics import metric_name, metric_value

# -- the decode-step trace, replayed through the real timing loop -----------------------------


class ReplayedDecoder:
    """A decoder whose prefill and decode steps take scripted times on a replayed clock."""

    def __init__(self, prefill_ns: list[int], steps_ns: np.ndarray) -> None:
        self.now = 1_000_000
        self.prefill_ns, self.steps_ns = prefill_ns, steps_ns
        self.call, self.step = -1, 0

    def clock(self) -> int:
        return self.now

    def reset(self) -> None:
        self.call += 1
        self.step = 0
        self.now += 7_000  # the untimed reset takes time too

    def prefill(self) -> None:
        self.now += self.prefill_ns[self.call]

    def decode_step(self) -> None:
        self.now += int(self.steps_ns[self.call, self.step])
        self.step += 1


def test_itl_percentiles_from_a_replayed_decode_step_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(7)
    calls, steps = 200, 15
    trace = rng.lognormal(np.log(2e6), 0.3, size=(calls, steps)).astype(np.int64)
    trace[::4, 3] = 40_000_000  # a few slow steps: the tail the percentiles must see
    prefill = [int(x) for x in rng.integers(5_000_000, 9_000_000, calls)]
    model = ReplayedDecoder(prefill, trace)
    monkeypatch.setattr(timing, "clock", model.clock)
    starts, lats, ttfts = (np.zeros(calls, dtype=np.int64) for _ in range(3))
    store = generation.StepStore(steps)
    done = timing.loop_generation(
        model, range(steps), starts, lats, ttfts, 0, calls, 1 << 62, store.marks, store.keep
    )
    assert done == calls
    kept = store.arrays()
    np.testing.assert_array_equal(kept["decode_step_ns"], trace)  # every step, as replayed
    np.testing.assert_array_equal(ttfts, prefill)
    np.testing.assert_array_equal(ttfts + trace.sum(axis=1), lats)  # TTFT + Σ ITL = e2e

    g = generation.generation_summary(
        lats, ttfts, kept["decode_step_ns"], prompt_tokens=32, new_tokens=steps + 1,
        sequences=4, epsilon=0.01,
    )  # fmt: skip
    flat = trace.ravel().astype(np.float64)
    for p in (0.5, 0.9, 0.99):
        pe = g.itl(p)
        assert pe is not None and pe.value_ns == pytest.approx(np.percentile(flat, p * 100))
        assert pe.lo_ns is not None and pe.lo_ns <= pe.value_ns
    assert g.itl(0.99).value_ns > 3 * g.itl(0.5).value_ns  # type: ignore[union-attr]
    assert g.itl_steps == calls * steps
    # TTFT + (n − 1)·TPOT = end-to-end latency, by construction
    assert g.e2e_latency_ns is not None
    assert g.ttft_ns.value + steps * g.tpot_ns.value == pytest.approx(
        g.e2e_latency_ns.value, rel=1e-12
    )
    assert g.tpot_ns.value == pytest.approx(flat.mean(), rel=1e-12)
    assert g.decode_tokens_per_s.value == pytest.approx(4 * 1e9 / flat.mean())
    assert g.prefill_tokens_per_s is not None
    assert g.prefill_tokens_per_s.value == pytest.approx(32 * 4 * 1e9 / np.mean(prefill))


def test_step_store_stays_bounded_and_covers_the_whole_run() -> None:
    store = generation.StepStore(steps=10, max_values=100)  # 10 calls fit
    for call in range(1000):
        store.marks[:] = [1000 + call * (k + 1) for k in range(10)]  # steps of `call` ns
        store.keep(call, 1000)
    kept = store.arrays()
    assert kept["decode_step_ns"].size <= 100
    calls = kept["decode_step_calls"]
    assert calls[0] == 0 and calls[-1] > 999 - store.stride  # the whole run, not its start
    assert np.all(np.diff(calls) == store.stride)
    np.testing.assert_array_equal(kept["decode_step_ns"], np.repeat(calls[:, None], 10, axis=1))


def test_old_generation_documents_still_decode() -> None:
    old = {
        "prompt_tokens": 8, "new_tokens": 4,
        "ttft_ns": {"value": 1.0, "lo": None, "hi": None},
        "tpot_ns": {"value": 2.0, "lo": None, "hi": None},
        "decode_tokens_per_s": {"value": 3.0, "lo": None, "hi": None},
        "e2e_tokens_per_s": {"value": 4.0, "lo": None, "hi": None},
    }  # fmt: skip
    g = codec.from_document(old, GenerationSummary)
    assert g.itl_ns == () and g.phase_energy == () and g.e2e_latency_ns is None
    assert token_energy.token_energy(g)[0] is None


# -- energy per token from a replayed power trace -------------------------------------------

CALLS, PREFILL_NS, DECODE_NS, GAP_NS = 20, 50_000_000, 200_000_000, 5_000_000
PREFILL_W, DECODE_W, GAP_W, IDLE_W = 100.0, 40.0, 10.0, 8.0


def _phases() -> dict[str, np.ndarray]:
    starts = 1_000_000_000 + np.arange(CALLS, dtype=np.int64) * (PREFILL_NS + DECODE_NS + GAP_NS)
    return {
        "starts_ns": starts,
        "ttft_ns": np.full(CALLS, PREFILL_NS, dtype=np.int64),
        "latencies_ns": np.full(CALLS, PREFILL_NS + DECODE_NS, dtype=np.int64),
    }


def _power_at(t: np.ndarray, arrays: dict[str, np.ndarray]) -> np.ndarray:
    rel = (t - arrays["starts_ns"][0]) % (PREFILL_NS + DECODE_NS + GAP_NS)
    return np.where(rel < PREFILL_NS, PREFILL_W, np.where(rel < PREFILL_NS + DECODE_NS,
                    DECODE_W, GAP_W))  # fmt: skip


def _series(kind: str, period_ns: int, arrays: dict[str, np.ndarray]) -> DomainSeries:
    t0 = int(arrays["starts_ns"][0]) - 50_000_000
    t1 = int(arrays["starts_ns"][-1] + arrays["latencies_ns"][-1]) + 50_000_000
    t = np.arange(t0, t1, period_ns, dtype=np.int64)
    domain = Domain("test:pkg", "package-0", "cpu", "test.package-0", "cpu-package", kind,
                    "J" if kind == "energy" else "W", period_ns / 1e9)  # fmt: skip
    if kind == "energy":  # a counter: exact energy up to each reading, on a 1 µs grid
        fine = np.arange(t0, t1, 1000, dtype=np.int64)
        cum = np.concatenate(([0.0], np.cumsum(_power_at(fine[:-1], arrays) * 1e-6)))
        values = np.interp(t, fine, cum)
    else:  # a gauge sampling the power at its reads
        values = _power_at(t, arrays)
    return DomainSeries(domain, t, values.astype(np.float64))


def _gen_run(arrays: dict[str, np.ndarray], series: DomainSeries, **gen: Any) -> RunResult:
    window = (
        int(arrays["starts_ns"][0]),
        int(arrays["starts_ns"][-1] + arrays["latencies_ns"][-1]),
    )
    report = compute_report([series], *window, CALLS * 2, None, run_device="cpu",
                            sample_period_s=series.domain.update_period_s)  # fmt: skip
    energy = tuple(dataclasses.replace(f, idle_power_w=IDLE_W) for f in report.figures)
    g = GenerationSummary(8, 5, Interval(5e7), Interval(5e7), Interval(40.0), Interval(20.0),
                          sequences=2, calls=CALLS, **gen)  # fmt: skip
    spec = RunSpec(model="builtin:gpt-small", scenario=Scenario.GENERATION, prompt_tokens=8,
                   new_tokens=5, batch_size=2)  # fmt: skip
    return RunResult(spec=spec, status=RunStatus.DONE, energy=energy, generation=g,
                     arrays=arrays, throughput_items_per_s=Interval(7.84, 7.8, 7.88))  # fmt: skip


@pytest.mark.parametrize("kind", ["power", "energy"])
def test_energy_per_token_from_a_replayed_power_trace_adds_up(kind: str) -> None:
    arrays = _phases()
    series = _series(kind, 1_000_000, arrays)  # 1 ms samples: 50 per prefill
    run = token_energy.with_phase_energy(_gen_run(arrays, series), [series], 0.001)
    g = run.generation
    assert g is not None
    split = next(p for p in g.phase_energy if p.view == "device")
    total = next(f for f in run.energy if f.domain == "device").energy_j
    assert not split.estimate and split.method != token_energy.METHOD_TIME_SHARE
    assert split.prefill_j + split.decode_j == pytest.approx(total, rel=1e-12)
    # the phases' own energy, plus the gaps' energy shared pro rata
    pre, dec = CALLS * PREFILL_W * PREFILL_NS / 1e9, CALLS * DECODE_W * DECODE_NS / 1e9
    assert split.prefill_j == pytest.approx(total * pre / (pre + dec), rel=0.02)
    assert split.prefill_tokens == 8 * 2 * CALLS and split.decode_tokens == 4 * 2 * CALLS
    te, _ = token_energy.token_energy(g)
    assert te is not None and not te.estimate
    back = (
        te.prefill_j_per_token * split.prefill_tokens + te.decode_j_per_token * split.decode_tokens
    )
    assert back == pytest.approx(total, rel=1e-12)  # J/token × tokens = the run's energy
    assert te.tokens_per_j == pytest.approx(5 * 2 * CALLS / total)
    above = (te.prefill_above_idle_j_per_token or 0) * split.prefill_tokens + (
        te.decode_above_idle_j_per_token or 0
    ) * split.decode_tokens
    assert above == pytest.approx(total - IDLE_W * (run.energy[0].duration_s), rel=1e-9)
    # 5 J of prefill over 16 prompt tokens, 8 J of decode over 8 tokens (plus the gaps' share)
    assert te.prefill_j_per_token == pytest.approx(5.0 / 16 * total / (pre + dec), rel=0.02)
    assert te.decode_j_per_token == pytest.approx(8.0 / 8 * total / (pre + dec), rel=0.02)
    iv, why = metric_value(run, "decode-energy-per-token")
    assert iv is not None and iv.value == pytest.approx(te.decode_j_per_token), why


def test_a_sensor_too_coarse_for_a_prefill_splits_by_time_and_says_estimate() -> None:
    arrays = _phases()
    series = _series("power", 100_000_000, arrays)  # 100 ms samples: coarser than a prefill
    run = token_energy.with_phase_energy(_gen_run(arrays, series), [series], 0.1)
    assert run.generation is not None
    split = run.generation.phase_energy[0]
    assert split.estimate and split.method == token_energy.METHOD_TIME_SHARE
    assert split.prefill_j / split.energy_j == pytest.approx(PREFILL_NS / (PREFILL_NS + DECODE_NS))
    assert "split by time" in split.note
    iv, why = metric_value(run, "decode-energy-per-token")
    assert iv is None and why is not None and "estimate" in why  # never ranked
    assert metric_value(run, "tokens-per-j")[0] is not None  # the energy itself is measured


def test_usd_per_million_output_tokens_from_a_profile() -> None:
    arrays = _phases()
    series = _series("power", 1_000_000, arrays)
    run = _gen_run(arrays, series)
    cloud = CostProfile("cpu", cloud_usd_per_hour=3.6)
    iv, why, est = usd_per_million_output_tokens(run, cloud)
    # 7.84 sequences/s × 5 tokens: 1e6 tokens take 1e6 / 39.2 s at 3.6 $/h = 0.001 $/s
    assert iv is not None and not est, why
    assert iv.value == pytest.approx(1e6 / (7.84 * 5) * 0.001)
    assert iv.lo is not None and iv.lo < iv.value
    owned = CostProfile("cpu", purchase_price_usd=8766.0, amortization_years=1.0,
                        electricity_usd_per_kwh=0.36)  # fmt: skip
    iv2, _, _ = usd_per_million_output_tokens(run, owned)
    joules = next(f for f in run.energy if f.domain == "device").energy_per_item_j
    capital = 1e6 / 7.84 / 3600.0  # 1 $/h
    energy = joules * 1e6 / 3.6e6 * 0.36
    assert iv2 is not None and iv2.value == pytest.approx((capital + energy) / 5)
    assert metric_value(run, "cost-per-m-tokens", cost_profiles={"cpu": cloud})[0] == iv


def test_compare_ranks_generation_metrics() -> None:
    arrays = _phases()
    series = _series("power", 1_000_000, arrays)
    a = _gen_run(arrays, series)
    assert a.generation is not None
    fast = dataclasses.replace(a.generation, decode_tokens_per_s=Interval(80.0, 78.0, 82.0))
    slow = dataclasses.replace(a.generation, decode_tokens_per_s=Interval(40.0, 39.0, 41.0))
    b = a.with_(id="b" * 32, spec=dataclasses.replace(a.spec, threads=2), generation=fast)
    a = a.with_(generation=slow)
    c = compare_runs([a, b], metrics=[metric_name("decode_tokens_per_s"), "ttft"])
    (row,) = c.rows
    ratio = row.ratios["decode-tokens-per-s"]
    assert ratio.value == pytest.approx(2.0) and ratio.verdict is not None
    assert "decodes 2.00× the tokens per second of" in " ".join(c.sentences())
    plain = a.with_(generation=None)
    assert metric_value(plain, "ttft") == (None, "not a generation run")


# -- a real quick run, through the store and the CLI -----------------------------------------


@pytest.fixture(scope="module")
def real_run() -> RunResult:
    spec = RunSpec(model="builtin:gpt-small", scenario=Scenario.GENERATION, new_tokens=4,
                   prompt_tokens=8, preset="quick", t_max_s=1.5, threads=1, idle_baseline=False,
                   memory_pass=False, time_limit_s=120.0)  # fmt: skip
    r = runner.run_one(spec)
    assert r.status is RunStatus.DONE, r.reason
    return r


def test_ttft_plus_tpot_is_the_end_to_end_latency_on_a_real_run(real_run: RunResult) -> None:
    g = real_run.generation
    assert g is not None and g.e2e_latency_ns is not None and g.calls == real_run.latency.n  # type: ignore[union-attr]
    assert g.ttft_ns.value + (g.new_tokens - 1) * g.tpot_ns.value == pytest.approx(
        g.e2e_latency_ns.value, rel=1e-9
    )
    steps, calls = real_run.arrays["decode_step_ns"], real_run.arrays["decode_step_calls"]
    assert steps.shape == (g.calls, g.new_tokens - 1) and g.itl_steps == steps.size
    lats, ttfts = real_run.arrays["latencies_ns"], real_run.arrays["ttft_ns"]
    np.testing.assert_array_equal(ttfts[calls] + steps.sum(axis=1), lats[calls])  # exactly
    assert all(g.itl(p) is not None for p in (0.5, 0.9, 0.99))
    if g.phase_energy:  # the machine's sensor or the TDP estimate, split per phase
        split = g.phase_energy[0]
        assert split.prefill_j + split.decode_j == pytest.approx(split.energy_j, rel=1e-12)
    else:
        assert g.phase_energy_na_reason


def test_show_json_and_compare_through_the_cli(
    real_run: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert real_run.generation is not None
    other = real_run.with_(id="f" * 32, spec=dataclasses.replace(real_run.spec, threads=2))
    db = str(tmp_path / "gen.sqlite")
    with open_store(db) as s:
        s.save_run(real_run)
        s.save_run(other)
        s.save_cost_profile(CostProfile("cpu", cloud_usd_per_hour=3.6))
    assert main(["--db", db, "show", real_run.id]) == 0
    out = capsys.readouterr().out
    assert "TTFT" in out and "inter-token latency: p50" in out and "energy per token" in out
    assert "USD per million output tokens (the cpu profile)" in out
    assert main(["--db", db, "compare", real_run.id, other.id, "--metric",
                 "decode_tokens_per_s", "--metric", "itl-p99", "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    est = doc["groups"][0]["estimates"]["decode-tokens-per-s"]
    assert est["value"]["value"] == pytest.approx(real_run.generation.decode_tokens_per_s.value)
    assert doc["rows"][0]["ratios"]["decode-tokens-per-s"]["value"] == pytest.approx(1.0)
    back = codec.from_document(result_document(real_run), RunResult)
    assert back.generation == real_run.generation  # the JSON document keeps every field
    (run_doc,) = json_document([real_run], 0)["runs"]  # `wattbench run --json`
    assert run_doc["generation"]["itl_ns"][0]["p"] == 0.5
    summary = run_doc["energy_summary"]
    assert (summary["token_energy"] is None) == bool(summary["token_energy_na_reason"])
    assert summary["token_energy_text"]


def test_reports_show_generation_figures_when_runs_generate(tmp_path: Path) -> None:
    from wattbench.reports import write_report
    from wattbench.reports.model import build_report
    from wattbench.reports.tables import all_tables

    arrays = _phases()
    series = _series("power", 1_000_000, arrays)
    a = token_energy.with_phase_energy(_gen_run(arrays, series), [series], 0.001)
    b = a.with_(id="b" * 32, spec=dataclasses.replace(a.spec, threads=2))
    profiles = {"cpu": CostProfile("cpu", cloud_usd_per_hour=3.6)}
    model = build_report([a, b], cost_profiles=profiles)
    tables = all_tables(model)
    speed, energy = tables["generation_speed"], tables["generation_energy"]
    assert speed is not None and energy is not None
    assert "decode tokens per second (tokens/s)" in speed.header
    assert "p99 inter-token latency (ms)" in speed.header
    cells = [c.text for row in energy.rows for c in row]
    assert not any(c.startswith("n/a") for c in cells), cells  # measured split, cost profile
    html = write_report([a, b], tmp_path / "r.html", cost_profiles=profiles).read_text("utf-8")
    assert "Token generation per configuration" in html and "Energy per token" in html
    plain = build_report([a.with_(generation=None), b.with_(generation=None)])
    assert all_tables(plain)["generation_speed"] is None  # no generation: no such table


# -- through the service, on the fake decoder and wall meter of tests/plugins ---------------------


def test_a_generation_sweep_through_the_service_with_a_measured_meter(
    fake_plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wattbench.service.plan import check_plan, plan_runs
    from wattbench.service.queue import RunQueue
    from wattbench.service.request import RunRequest
    from wattbench.service.workbench import Workbench

    monkeypatch.setenv("WATTBENCH_FAKE_ITEM_US", "8000")  # 8 ms a step, 128 ms a prefill
    plan = plan_runs(RunRequest(
        model="builtin:gpt-small", runtimes=("fake",), scenario=Scenario.GENERATION,
        precisions=("fp32", "fp16"), prompt_tokens=128, new_tokens=6, repeats=1, preset="quick",
        t_max_s=1.5, idle_baseline=False, memory_pass=False, time_limit_s=120.0, sample_hz=200.0,
    ))  # fmt: skip
    check_plan(plan)
    with Workbench.open(str(tmp_path / "gen.sqlite")) as wb:
        queue = RunQueue(recorder=wb)
        queue.submit(plan.specs)
        done = queue.run_all()
        assert all(it.result is not None and it.result.ok for it in done), [
            it.reason for it in done
        ]
        fp32 = next(it for it in done if it.spec.precision == "fp32")
        stored = wb.get_run(fp32.run_id)
        view = wb.compare([it.run_id for it in done], baseline_id=fp32.run_id,
                          metrics=("decode-tokens-per-s", "tokens-per-j"))  # fmt: skip
    g = stored.generation
    assert g is not None and g.sequences == 1 and g.new_tokens == 6
    assert g.tpot_ns.value >= 8e6 and g.ttft_ns.value >= 128e6  # what the fake spins, at least
    split = next(p for p in g.phase_energy if p.view == "device")
    assert split.source == "fakeplug.power" and not split.estimate  # 26 samples per prefill
    assert split.prefill_j + split.decode_j == pytest.approx(split.energy_j, rel=1e-12)
    # a steady 42 W: the energy follows the time, prefill J/token = 42 W × TTFT / 128 tokens
    te, _ = token_energy.token_energy(g)
    assert te is not None and te.prefill_j_per_token == pytest.approx(
        42.0 * g.ttft_ns.value / 1e9 / 128, rel=0.1
    )
    base = view.comparison.baseline.estimate("decode-tokens-per-s").value
    assert base is not None and base.value == pytest.approx(g.decode_tokens_per_s.value)
    other = view.comparison.rows[0].group.estimate("decode-tokens-per-s").value
    ratio = view.comparison.rows[0].ratios["decode-tokens-per-s"]
    assert other is not None and ratio.value == pytest.approx(other.value / base.value)
    assert view.comparison.rows[0].ratios["tokens-per-j"].value is not None
