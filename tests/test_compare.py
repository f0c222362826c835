"""Comparing runs: ratio intervals (coverage simulations), pooling, verdicts, warnings, n/a."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import (
    EnergyFigure,
    Interval,
    ModelInfo,
    RunResult,
    RunStatus,
)
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.compare import compare_runs
from wattbench.engine.metrics import (
    DEFAULT_METRICS,
    GENERATION_METRICS,
    METHOD_BETWEEN_RUNS,
    METHOD_WITHIN_RUN,
    METRICS,
    SERVER_METRICS,
    metric_value,
)
from wattbench.engine.ratios import Ratio, verdict_sentence
from wattbench.engine.stats import summarize, throughput_interval
from wattbench.engine.training_metrics import TRAINING_METRICS

from tests.store_fixtures import MODEL, make_result

RESNET = ModelInfo(
    ref="onnx-zoo:resnet50",
    name="ResNet-50",
    family="onnx-zoo",
    format="onnx",
    sha256="c" * 64,
    inputs=(("data", (32, 3, 224, 224), "float32"),),
)


def simple_run(
    throughput: float,
    rel: float | None = 0.005,
    *,
    device: str = "cpu",
    runtime: str = "torch",
    model: ModelInfo = MODEL,
    **spec_kw: Any,
) -> RunResult:
    """A finished run whose throughput is `throughput` ± rel (no latency, no energy)."""
    spec = RunSpec(model=model.ref, device=device, runtime=runtime, **spec_kw)
    thr = (
        Interval(throughput)
        if rel is None
        else Interval(throughput, throughput * (1 - rel), throughput * (1 + rel))
    )
    return RunResult(spec=spec, status=RunStatus.DONE, model=model, throughput_items_per_s=thr)


def stream_run(
    rng: np.random.Generator, true_latency_ns: float, device: str, n: int, phi: float = 0.3
) -> RunResult:
    """A run measured from a synthetic AR(1) latency stream, summarized by the real code."""
    from scipy.signal import lfilter

    e = rng.standard_normal(n) * math.sqrt(1 - phi**2)
    e[0] = rng.standard_normal()
    z = lfilter([1.0], [1.0, -phi], e)
    sigma = 0.1
    lat = true_latency_ns * np.exp(sigma * z - sigma**2 / 2)  # mean exactly true_latency_ns
    summary = summarize(lat, (0.5, 0.99))
    thr = throughput_interval(n, int(lat.sum()), summary.rho)
    spec = RunSpec(model=MODEL.ref, device=device)
    return RunResult(
        spec=spec, status=RunStatus.DONE, model=MODEL, latency=summary, throughput_items_per_s=thr
    )


# -- the ratio's interval: coverage of the true ratio -----------------------------------------


def test_within_run_ratio_interval_covers_true_ratio_about_95_percent() -> None:
    """R = 1 per side: interval from the two runs' own batch-means intervals."""
    rng = np.random.default_rng(2024)
    reps, covered = 400, 0
    true_a, true_b = 1_000_000.0, 800_000.0  # latency ns: B has 1.25× the throughput
    true_ratio = true_a / true_b
    for _ in range(reps):
        a = stream_run(rng, true_a, "cpu", 2000)
        b = stream_run(rng, true_b, "cuda:0", 2000)
        r = compare_runs([a, b], metrics=["throughput"]).rows[0].ratios["throughput"]
        assert r.method == METHOD_WITHIN_RUN and r.lo is not None and r.hi is not None
        covered += r.lo <= true_ratio <= r.hi
    assert 0.92 <= covered / reps <= 0.985, covered / reps


def test_between_run_ratio_interval_covers_true_ratio_about_95_percent() -> None:
    """R = 3 per side with a run-to-run offset larger than the within-run noise: Welch on logs."""
    rng = np.random.default_rng(7)
    reps, covered = 1000, 0
    true_ratio = 0.8
    tau = 0.03  # run-to-run sd of log throughput (clocks, placement...)
    for _ in range(reps):
        runs = [
            simple_run(1000.0 * math.exp(tau * rng.standard_normal()), device="cpu")
            for _ in range(3)
        ] + [
            simple_run(800.0 * math.exp(tau * rng.standard_normal()), device="cuda:0")
            for _ in range(3)
        ]
        r = compare_runs(runs, metrics=["throughput"]).rows[0].ratios["throughput"]
        assert r.method == METHOD_BETWEEN_RUNS and r.lo is not None and r.hi is not None
        covered += r.lo <= true_ratio <= r.hi
    assert 0.93 <= covered / reps <= 0.97, covered / reps


def test_a_a_comparisons_rarely_claim_a_difference() -> None:
    """METHOD.md target 3: the same configuration against itself gives faster/slower ≤ 5 %."""
    rng = np.random.default_rng(99)
    reps = 300
    verdicts: dict[str, int] = {}
    for _ in range(reps):
        a = stream_run(rng, 1_000_000.0, "cpu", 4000)
        b = stream_run(rng, 1_000_000.0, "cuda:0", 4000)  # another device label, same truth
        v = compare_runs([a, b], metrics=["throughput"]).rows[0].ratios["throughput"].kind
        assert v is not None
        verdicts[v] = verdicts.get(v, 0) + 1
    claimed = verdicts.get("faster", 0) + verdicts.get("slower", 0)
    assert claimed / reps <= 0.05, verdicts
    assert verdicts.get("equivalent", 0) > 0  # most A/A intervals lie inside [0.99, 1.01]


# -- pooling replicates ------------------------------------------------------------------------


def test_replicates_are_pooled_and_welch_matches_scipy() -> None:
    from scipy import stats

    a_vals, b_vals = [100.0, 102.0, 98.0], [120.0, 118.0, 125.0]
    runs = [simple_run(v, repeat=i) for i, v in enumerate(a_vals)]
    runs += [simple_run(v, device="cuda:0", repeat=i) for i, v in enumerate(b_vals)]
    c = compare_runs(runs, metrics=["throughput"])
    assert [g.replicates for g in c.groups] == [3, 3]
    assert c.baseline.label == "cpu · torch"
    est = c.baseline.estimate("throughput")
    assert est.value is not None
    assert est.value.value == pytest.approx(float(np.exp(np.mean(np.log(a_vals)))))
    assert est.method == "geometric mean of 3 runs"
    sd = float(np.std(np.log(a_vals), ddof=1))
    h = float(stats.t.ppf(0.975, 2)) * sd / math.sqrt(3)
    assert (est.value.lo, est.value.hi) == pytest.approx(
        (est.value.value * math.exp(-h), est.value.value * math.exp(h))
    )
    r = c.ratio("cuda:0 · torch", "throughput")
    welch = stats.ttest_ind(np.log(b_vals), np.log(a_vals), equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert r.value == pytest.approx(math.exp(np.mean(np.log(b_vals)) - np.mean(np.log(a_vals))))
    assert (r.lo, r.hi) == pytest.approx((math.exp(ci.low), math.exp(ci.high)), rel=1e-5)
    assert r.method == METHOD_BETWEEN_RUNS and r.verdict == "faster"


def test_baseline_by_id_prefix_and_replicates_of_the_baseline() -> None:
    runs = [simple_run(100.0), simple_run(200.0, device="cuda:0"), simple_run(101.0)]
    c = compare_runs(runs, baseline_id=runs[1].id[:10], metrics=["throughput"])
    assert c.baseline.label == "cuda:0 · torch" and c.baseline.replicates == 1
    (row,) = c.rows
    assert row.group.replicates == 2 and set(row.group.run_ids) == {runs[0].id, runs[2].id}
    # one side pooled, the other a single run: interval from each side's own interval
    assert row.ratios["throughput"].method == METHOD_WITHIN_RUN


def test_runs_that_did_not_finish_or_repeat_are_left_out_with_a_warning() -> None:
    ok = simple_run(100.0)
    failed = simple_run(50.0, device="cuda:0").with_(status=RunStatus.FAILED, reason="OOM")
    c = compare_runs([ok, failed, ok], metrics=["throughput"])
    assert len(c.groups) == 1 and c.rows == ()
    assert any("failed: OOM" in w for w in c.warnings)
    assert any("given twice" in w for w in c.warnings)
    with pytest.raises(BadInputError, match="failed"):
        compare_runs([ok, failed], baseline_id=failed.id)
    with pytest.raises(BadInputError, match="nothing to compare"):
        compare_runs([failed])
    with pytest.raises(BadInputError, match="not among"):
        compare_runs([ok], baseline_id="zzzz")
    with pytest.raises(BadInputError, match="Unknown metric"):
        compare_runs([ok], metrics=["speed"])
    with pytest.raises(BadInputError, match="noise"):
        compare_runs([ok], noise=1.5)
    with pytest.raises(BadInputError, match="energy view"):
        compare_runs([ok], energy_view="wall")


def test_ambiguous_baseline_prefix() -> None:
    a = simple_run(100.0).with_(id="abc1" + "0" * 28)
    b = simple_run(120.0, device="cuda:0").with_(id="abc2" + "0" * 28)
    with pytest.raises(BadInputError, match="ambiguous"):
        compare_runs([a, b], baseline_id="abc")


# -- verdicts ----------------------------------------------------------------------------------


def _ratio(metric: str, rel_b: float | None, b: float, a: float = 100.0, **kw: Any) -> Ratio:
    runs = [simple_run(a, 0.002), simple_run(b, rel_b, device="cuda:0")]
    return compare_runs(runs, metrics=[metric], **kw).rows[0].ratios[metric]


def test_verdicts_follow_the_noise_threshold() -> None:
    assert _ratio("throughput", 0.002, 110.0).kind == "faster"
    assert _ratio("throughput", 0.002, 90.0).kind == "slower"
    assert _ratio("throughput", 0.002, 100.2).kind == "equivalent"
    r = _ratio("throughput", 0.02, 101.0)
    assert r.kind == "inconclusive" and r.reps_needed is not None and r.reps_needed >= 2
    # reps_needed = ⌈4 z² σ² / δ²⌉ with σ the per-run sd (h / 1.96), averaged over the sides
    sigma = math.sqrt(((0.02 / 1.959964) ** 2 + (0.002 / 1.959964) ** 2) / 2)
    assert r.reps_needed == math.ceil(4 * 1.959964**2 * sigma**2 / 0.01**2)
    # a wider noise threshold turns a 3 % gain into "equivalent"
    assert _ratio("throughput", 0.002, 103.0, noise=0.05).kind == "equivalent"
    assert _ratio("throughput", 0.002, 103.0).kind == "faster"


def test_lower_is_better_metrics_read_the_right_way() -> None:
    a = make_result(seed=1, mean_ns=1_000_000.0)
    b = make_result(seed=2, mean_ns=500_000.0, spec_overrides={"device": "cuda:0"})
    c = compare_runs([a, b], metrics=["throughput", "latency-mean", "latency-p50", "energy"])
    ratios = c.rows[0].ratios
    assert ratios["throughput"].kind == "faster"
    assert ratios["latency-mean"].value == pytest.approx(0.5, rel=0.02)
    assert ratios["latency-mean"].kind == "faster"  # half the latency: faster
    assert ratios["latency-p50"].kind == "faster"
    # same power, half the time per inference: half the energy, which is better
    assert ratios["energy"].value == pytest.approx(0.5, rel=0.02)
    assert ratios["energy"].kind == "better"


def test_no_interval_when_a_run_has_none() -> None:
    r = _ratio("throughput", None, 120.0)
    assert r.value == pytest.approx(1.2) and r.lo is None and r.verdict is None
    assert r.na_reason is not None and "no confidence interval" in r.na_reason


# -- warnings: workloads that differ -----------------------------------------------------------


def test_mismatched_workloads_are_flagged() -> None:
    base = simple_run(100.0, batch_size=1)
    other = simple_run(300.0, device="cuda:0", batch_size=8)
    c = compare_runs([base, other], metrics=["throughput"])
    row = c.rows[0]
    assert not row.comparable and row.differences == ("batch size",)
    assert not row.ratios["throughput"].comparable
    assert any("batch size" in w and "not like-for-like" in w for w in c.warnings)
    assert "Not like-for-like: the workloads differ in batch size." in c.sentences()[0]
    assert not c.sentences()[0].startswith("On ")  # no common workload to name

    swapped = ModelInfo(**{**MODEL.__dict__, "sha256": "d" * 64})
    c = compare_runs(
        [base, simple_run(100.0, device="cuda:0", model=swapped)], metrics=["throughput"]
    )
    assert c.rows[0].differences == ("model file (sha256)",)
    c = compare_runs(
        [base, simple_run(100.0, device="cuda:0", model=RESNET)], metrics=["throughput"]
    )
    assert c.rows[0].differences == ("model (and its sha256)",)
    c = compare_runs(
        [base, simple_run(100.0, device="cuda:0", scenario=Scenario.OFFLINE, dims={"seq": 4})],
        metrics=["throughput"],
    )
    assert c.rows[0].differences == ("scenario", "dynamic dims")


def test_unknown_model_hash_is_warned_about() -> None:
    base = simple_run(100.0)
    blind = simple_run(100.0, device="cuda:0").with_(model=None)
    c = compare_runs([base, blind], metrics=["throughput"])
    assert any("model hash" in w and "unknown" in w for w in c.warnings)
    assert c.rows[0].comparable  # same spec; the hash just cannot be checked


# -- n/a metrics -------------------------------------------------------------------------------


def test_missing_energy_is_na_with_its_reason_never_zero() -> None:
    a = make_result(seed=3)
    b = make_result(
        seed=4,
        spec_overrides={"device": "cuda:0"},
        energy=(),
        energy_na_reason="NVML is not installed",
    )
    c = compare_runs([a, b], metrics=["energy", "perf-per-watt", "co2"])
    for m in ("energy", "perf-per-watt"):
        r = c.rows[0].ratios[m]
        assert r.value is None and r.lo is None and r.verdict is None
        assert r.na_reason == "this configuration: NVML is not installed"
    iv, reason = metric_value(b, "energy")
    assert iv is None and reason == "NVML is not installed"
    text = c.sentences()[0]
    assert "energy per inference n/a (this configuration: NVML is not installed)" in text
    assert c.rows[0].ratios["co2"].na_reason == "baseline: no cost profile for device cpu"


def test_estimated_energy_is_not_ranked_against_measurements() -> None:
    a = make_result(seed=5)
    (measured,) = a.energy
    estimate = EnergyFigure(**{**measured.__dict__, "method": "model", "source": "estimate.tdp"})
    b = make_result(seed=6, spec_overrides={"device": "cuda:0"})
    b = b.with_(energy=(EnergyFigure(**{**estimate.__dict__, "device": "cuda:0"}),))
    r = compare_runs([a, b], metrics=["energy"]).rows[0].ratios["energy"]
    assert r.value is None and r.na_reason is not None and "estimate" in r.na_reason


def test_failed_run_and_missing_percentile_metric_values() -> None:
    failed = simple_run(100.0).with_(status=RunStatus.FAILED)
    assert metric_value(failed, "throughput") == (None, f"run {failed.id[:8]} is failed")
    no_lat = simple_run(100.0)
    iv, reason = metric_value(no_lat, "latency-p99")
    assert iv is None and reason == "no latency was recorded"
    run = make_result(seed=7, spec_overrides={"percentiles": (0.5,)})
    iv, reason = metric_value(run, "latency-p99")
    assert iv is None and reason == "p99 was not computed for this run"
    zero = simple_run(100.0).with_(throughput_items_per_s=Interval(0.0))
    iv, reason = metric_value(zero, "throughput")
    assert iv is None and reason is not None and "not a positive number" in reason
    with pytest.raises(BadInputError):
        metric_value(run, "watts")


def test_metric_values_of_a_full_run() -> None:
    run = make_result(seed=8)
    assert run.latency is not None and run.throughput_items_per_s is not None
    p50, _ = metric_value(run, "latency-p50")
    assert p50 is not None and p50.value == pytest.approx(run.latency.median_ns, rel=1e-6)
    energy, _ = metric_value(run, "energy")
    ppw, _ = metric_value(run, "perf-per-watt")
    assert energy is not None and ppw is not None
    assert energy.lo is not None and energy.hi is not None
    assert ppw.value == pytest.approx(1 / energy.value)
    assert (ppw.lo, ppw.hi) == pytest.approx((1 / energy.hi, 1 / energy.lo))
    profile = CostProfile(device="cpu", electricity_usd_per_kwh=0.30, carbon_g_per_kwh=250.0)
    cost, _ = metric_value(run, "cost", cost_profiles={"cpu": profile})
    co2, _ = metric_value(run, "co2", cost_profiles={"cpu": profile})
    kwh_per_million = energy.value * 1e6 / 3.6e6
    assert cost is not None and cost.value == pytest.approx(kwh_per_million * 0.30)
    assert co2 is not None and co2.value == pytest.approx(kwh_per_million * 250.0)
    system, _ = metric_value(run, "energy", energy_view="system")
    assert system is not None and system.value == pytest.approx(energy.value)


# -- sentences ---------------------------------------------------------------------------------


def test_verdict_sentence_reads_plainly() -> None:
    a = simple_run(100.0, 0.005, model=RESNET, batch_size=32)
    b = simple_run(80.0, 0.005, device="cuda:0", model=RESNET, batch_size=32)
    c = compare_runs([a, b], metrics=["throughput"])
    (text,) = c.sentences()
    assert text == (
        "On ResNet-50 at batch 32, cuda:0 · torch delivers 0.80× the throughput of "
        "cpu · torch (95 % CI 0.79–0.81, within-run only): slower, indicative (one run each)."
    )
    inconclusive = Ratio("throughput", 1.004, 0.99, 1.02, "inconclusive", METHOD_WITHIN_RUN,
                         12, True, None,
                         settle="about 12 runs per side would settle it")  # fmt: skip
    text = verdict_sentence(inconclusive, "B", "A", workload="mlp-small at batch 1")
    assert text == (
        "On mlp-small at batch 1, B delivers 1.004× the throughput of A (95 % CI 0.990–1.020, "
        "within-run only): inconclusive; about 12 runs per side would settle it."
    )
    na = Ratio("energy", None, None, None, None, "", None, True, "baseline: RAPL unreadable")
    assert verdict_sentence(na, "B", "A", energy_view="device") == (
        "B vs A: energy per inference n/a (baseline: RAPL unreadable). Energy view: device."
    )
    others = set(GENERATION_METRICS) | set(SERVER_METRICS) | set(TRAINING_METRICS)
    assert set(METRICS) - others == set(DEFAULT_METRICS) == {
        "throughput", "latency-p50", "latency-p99", "latency-mean", "energy", "perf-per-watt",
        "cost", "co2",
    }  # fmt: skip


def test_labels_name_what_differs() -> None:
    runs = [
        simple_run(100.0, threads=1),
        simple_run(150.0, threads=2),
        simple_run(300.0, device="cuda:0", runtime="onnxruntime", threads=2),
    ]
    c = compare_runs(runs, metrics=["throughput"])
    assert [g.label for g in c.groups] == [
        "cpu · torch · t1",
        "cpu · torch · t2",
        "cuda:0 · onnxruntime · t2",
    ]
    assert c.ratio("cpu · torch · t2", "throughput").value == pytest.approx(1.5)
    with pytest.raises(KeyError):
        c.row("nope")


def test_identical_replicates_do_not_claim_certainty() -> None:
    """Two runs per side with equal figures: no spread between runs, so no zero-width interval."""
    runs = [simple_run(100.0, 0.01, repeat=i) for i in range(2)]
    runs += [simple_run(100.5, 0.01, device="cuda:0", repeat=i) for i in range(2)]
    c = compare_runs(runs, metrics=["throughput"])
    est = c.baseline.estimate("throughput")
    assert est.value is not None and est.value.rel_half_width is not None
    assert est.value.rel_half_width == pytest.approx(math.hypot(0.01, 0.01) / 2, rel=1e-3)
    assert "identical" in est.method
    r = c.rows[0].ratios["throughput"]
    assert r.method == METHOD_WITHIN_RUN and r.lo is not None and r.hi is not None
    assert r.lo < 1.005 < r.hi and r.kind == "inconclusive"
    assert r.verdict == "inconclusive, indicative (identical runs: no spread between them)"
