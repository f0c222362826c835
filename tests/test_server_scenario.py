"""The server scenario: Poisson arrivals, the SLO search on a server of known capacity (the
fake runtime sleeping a fixed time: an M/D/c queue), its settings, stored results and the CLI."""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

import numpy as np
import pytest
from wattbench.backends.runtimes.registry import get_runtime
from wattbench.cli.main import main
from wattbench.domain import codec
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult, RunStatus, result_document
from wattbench.domain.server import SloProbe
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.compare import UNRELIABLE_FLAGS
from wattbench.engine.loadgen import poisson_offsets_ns, run_load
from wattbench.engine.metrics import config_labels
from wattbench.engine.server import measure_server
from wattbench.engine.slo import search_rate
from wattbench.engine.validate import check_entry, resolve_entry, runtime_options
from wattbench.service.plan import plan_runs
from wattbench.service.request import RunRequest, parse_slo

# -- arrivals --------------------------------------------------------------------------------


def test_poisson_arrivals_have_the_rate_and_the_dispersion() -> None:
    rate, n = 1000.0, 20_000
    offsets = poisson_offsets_ns(rate, n, seed=3)
    gaps_s = np.diff(np.concatenate([[0], offsets])) / 1e9
    assert abs(gaps_s.mean() * rate - 1) < 0.03  # mean gap 1/rate (sd of the mean: 0.7 %)
    assert abs(gaps_s.std() / gaps_s.mean() - 1) < 0.03  # exponential: CV = 1
    # Kolmogorov–Smirnov against the exponential: D below its 1 % critical value
    x = np.sort(gaps_s)
    cdf = 1 - np.exp(-rate * x)
    d = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert d < 1.63 / math.sqrt(n)
    # counts in 100 ms windows are Poisson: variance ≈ mean (index of dispersion ≈ 1)
    counts = np.bincount((offsets // 100_000_000).astype(np.int64))[:-1]
    assert abs(counts.var() / counts.mean() - 1) < 0.35
    assert np.array_equal(offsets, poisson_offsets_ns(rate, n, seed=3))  # a seed repeats
    assert not np.array_equal(offsets, poisson_offsets_ns(rate, n, seed=4))


def test_latency_counts_from_the_scheduled_arrival_and_overload_drops() -> None:
    import time

    def serve() -> None:
        time.sleep(0.004)

    # twice what one stream serves (250/s): the queue grows, latency includes the wait
    run = run_load([serve], rate_per_s=500.0, seed=1, max_s=0.6, drain_s=0.1)
    done = run.completed
    service = run.done_ns[done] - run.start_ns[done]
    lats = run.latencies_ns()
    assert np.all(lats >= service)  # completion − arrival ⊇ the service
    assert lats[-10:].mean() > 5 * service.mean()  # the late ones waited in the queue
    assert run.dropped > 0  # arrived, never served within the drain
    assert np.all(np.diff(run.start_ns[done]) > 0)  # one stream: first come, first served


def test_torch_streams_run_without_autograd() -> None:
    """torch keeps its grad mode per thread: each stream prepares itself as the loaded model
    says (``prepare_thread``), so no stream builds autograd graphs."""
    import torch

    spec = RunSpec(model="builtin:mlp-tiny", runtime="torch", threads=1)
    loaded = get_runtime("torch").load(resolve_entry(spec), "cpu", runtime_options(spec))
    seen: list[bool] = []

    def serve() -> None:
        seen.append(torch.is_grad_enabled())
        loaded.run_once()

    try:
        run_load([serve, serve], rate_per_s=200.0, seed=0, max_s=0.3, prepare=loaded.prepare_thread)
    finally:
        loaded.close()
    assert seen and not any(seen)


# -- the SLO search --------------------------------------------------------------------------


def _synthetic(capacity: float, slo_ns: float, calls: list[float]) -> object:
    """An M/M/1-like probe: p99 of the sojourn time −ln(0.01)/(μ − λ) s, met when ≤ SLO."""

    def probe(rate: float) -> SloProbe:
        calls.append(rate)
        p99 = -math.log(0.01) / (capacity - rate) * 1e9 if rate < capacity else math.inf
        return SloProbe(rate, rate, 1000, 0, p99, None, None, 1000.0, p99 <= slo_ns)

    return probe


@pytest.mark.parametrize("start", [10.0, 95.0, 400.0])
def test_search_brackets_and_bisects_to_the_known_rate(start: float) -> None:
    capacity, slo_ns = 100.0, 0.1e9  # p99 ≤ 100 ms: λ* = 100 − ln(100)/0.1 = 53.95/s
    best = capacity + math.log(0.01) / 0.1
    calls: list[float] = []
    found = search_rate(_synthetic(capacity, slo_ns, calls), start, rel_tol=0.01)  # type: ignore[arg-type]
    assert found.converged and found.best is not None
    assert found.lo_per_s is not None and found.hi_per_s is not None
    assert found.lo_per_s <= best < found.hi_per_s <= found.lo_per_s * 1.01
    assert found.goodput_per_s == found.best.achieved_per_s
    assert len(found.probes) == len(calls) < 16


def test_search_says_when_no_rate_meets_the_slo() -> None:
    calls: list[float] = []
    found = search_rate(_synthetic(100.0, 1e3, calls), 50.0)  # type: ignore[arg-type]
    assert found.best is None and not found.converged and found.goodput_per_s == 0
    assert "no rate" in found.note


def _md_c_rate(service_s: float, streams: int, p: float, slo_s: float) -> float:
    """The arrival rate at which the M/D/c queue's p-th sojourn percentile equals the SLO
    (steady state, by simulation with common random numbers and bisection)."""
    gaps = np.random.default_rng(11).exponential(1.0, 40_000)

    def percentile(rate: float) -> float:
        free = [0.0] * streams
        sojourn = []
        for t in (np.cumsum(gaps) / rate).tolist():
            begin = max(heapq.heappop(free), t)
            heapq.heappush(free, begin + service_s)
            sojourn.append(begin + service_s - t)
        return float(np.percentile(sojourn[4000:], p * 100))

    lo, hi = 0.05 * streams / service_s, streams / service_s
    for _ in range(14):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if percentile(mid) <= slo_s else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("streams", [2])  # one stream (M/D/1): the TTFT search's test
def test_slo_search_finds_the_m_d_c_rate(
    fake_plugins: Path, monkeypatch: pytest.MonkeyPatch, streams: int
) -> None:
    """A fake model sleeping 5 ms per call on c streams is an M/D/c server: the search finds
    the rate whose p90 is the SLO (5 service times: ρ ≈ 0.75 for c = 1, 0.86 for c = 2),
    within a few percent of the queue's theory with the service time the run measured (a
    sleep's wake-up included) when the cores were not contended."""
    slo_ms = 25.0
    monkeypatch.setenv("WATTBENCH_FAKE_SLEEP", "1")
    monkeypatch.setenv("WATTBENCH_FAKE_ITEM_US", "5000")
    spec = RunSpec(
        model="builtin:mlp-tiny",
        runtime="fake",
        scenario=Scenario.SERVER,
        streams=streams,
        slo_ms=slo_ms,
        slo_percentile=0.9,
        preset="quick",
        t_max_s=12.0,  # probes of at most 2 s, the search within 18 s
        memory_pass=False,
        idle_baseline=False,
    )
    loaded = get_runtime("fake").load(resolve_entry(spec), "cpu", runtime_options(spec))
    m = measure_server(loaded, spec, lambda event: None)
    s = m.server
    assert s is not None and s.goodput_per_s is not None and s.slo_met
    theory = _md_c_rate(s.service_mean_ns / 1e9, streams, 0.9, slo_ms / 1e3)
    # others' processes on the cores (flag contended: > 10 % of their time) delay the streams'
    # wake-ups in bursts, which only lowers the rate that meets the SLO; above, the bracket's
    # 2 % and short probes starting from an empty queue (optimistic) set the bound
    # (a run flagged not converged by a noisy machine likewise)
    low = 0.6 if any(f in UNRELIABLE_FLAGS for f in m.flags) else 0.93
    assert low < s.target_rate_per_s / theory < 1.1, (s.target_rate_per_s, theory, m.flags)
    assert s.goodput_per_s == pytest.approx(s.target_rate_per_s, rel=0.15)
    assert len(s.search) >= 3 and s.search_s is not None
    pe = m.latency.percentile(0.9)
    assert pe is not None and pe.value_ns <= slo_ms * 1e6


# -- settings, plans, stored runs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"scenario": "server"}, "target_rate"),
        ({"scenario": "server", "target_rate": -1.0}, "target_rate"),
        ({"scenario": "server", "target_rate": 10.0, "streams": 0}, "streams"),
        ({"scenario": "server", "slo_ms": 100.0, "slo_percentile": 1.0}, "slo_percentile"),
        ({"target_rate": 10.0}, "target_rate"),
        ({"streams": 2}, "streams"),
    ],
)
def test_server_settings_are_checked(kw: dict[str, object], field: str) -> None:
    with pytest.raises(BadInputError) as err:
        RunSpec(model="builtin:mlp-tiny", **kw)  # type: ignore[arg-type]
    assert err.value.field == field


def test_slo_text_and_a_streams_sweep() -> None:
    assert parse_slo("p99=100ms") == (0.99, 100.0, "latency")
    assert parse_slo("p90=0.25s") == (0.9, 250.0, "latency")
    assert parse_slo("") is None
    for bad in ("99=100ms", "p99", "p99=fast", "p100=1ms"):
        with pytest.raises(BadInputError):
            parse_slo(bad)
    plan = plan_runs(
        RunRequest(
            model="builtin:mlp-tiny",
            scenario=Scenario.SERVER,
            target_rate=50.0,
            streams=(1, 2, 4),
            repeats=1,
        )
    )
    assert sorted(s.streams for s in plan.specs) == [1, 2, 4]
    assert plan.configurations == 3 and plan.sweep_id is not None
    assert {s.label().split(" · ")[-2] for s in plan.specs} == {"s1", "s2", "s4"}


def test_a_generative_model_serves_generation_requests() -> None:
    """(tests/test_server_generation.py measures them.)"""
    spec = RunSpec(model="builtin:gpt-small", scenario=Scenario.SERVER, target_rate=10.0)
    entry = resolve_entry(spec)
    check_entry(spec, entry)
    assert runtime_options(spec, entry).generation
    plain = RunSpec(model="builtin:mlp-tiny", scenario=Scenario.SERVER, target_rate=10.0)
    assert not runtime_options(plain, resolve_entry(plain)).generation


def test_compared_configurations_are_named_by_their_streams() -> None:
    runs = [
        RunResult(
            spec=RunSpec(
                model="builtin:mlp-tiny", scenario=Scenario.SERVER, target_rate=50.0, streams=n
            ),
            status=RunStatus.DONE,
        )
        for n in (1, 2)
    ]
    assert config_labels(runs) == ["cpu · torch · s1", "cpu · torch · s2"]


def test_a_run_document_without_server_figures_still_decodes() -> None:
    doc = result_document(RunResult(spec=RunSpec(model="builtin:mlp-tiny"), status=RunStatus.DONE))
    del doc["server"]
    assert codec.from_document(doc, RunResult).server is None


def test_cli_server_run_is_stored_and_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "runs.sqlite")
    argv = ["--db", db, "run", "--model", "builtin:mlp-small", "--scenario", "server"]
    argv += ["--rate", "100", "--streams", "2", "--preset", "quick", "--t-max", "2"]
    code = main([*argv, "--threads", "1", "--no-idle", "--no-memory", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    run = out["runs"][0]
    server = run["server"]
    assert server["streams"] == 2 and server["target_rate_per_s"] == 100
    assert server["requests"] == run["latency"]["n"] > 30
    assert server["achieved_rate_per_s"] > 0 and server["issue_lag_p99_ns"] >= 0
    assert main(["--db", db, "show", run["id"][:8]]) == 0
    shown = capsys.readouterr().out
    assert "server: 2 streams" in shown and "load generator: issue lag" in shown


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--scenario", "server"], "--rate: The server scenario needs an arrival rate"),
        (["--scenario", "server", "--slo", "p99"], "--slo: The SLO 'p99' must be"),
        (["--rate", "10"], "--rate: An arrival rate applies to the server scenario only"),
        (["--scenario", "server", "--rate", "10", "--streams", "0"], "--streams: Streams must"),
    ],
)
def test_cli_names_the_server_flag_at_fault(
    capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    assert main(["run", "--model", "builtin:mlp-tiny", *extra]) == 2
    assert words in capsys.readouterr().err
