"""Claims checked on stored runs with known ratios: confirmed, refuted, inconclusive, unreliable.

report_fixtures.make_run: throughput = batch / mean latency, so cuda:0 at 4 ms delivers 2.5× the
throughput of the CPU at 10 ms (batch 32 both).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.claim import Claim, Side, claims_from_toml, parse_expression, parse_side
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import FLAG_CONTENDED, RunResult
from wattbench.domain.server import ServerSummary
from wattbench.domain.spec import Scenario
from wattbench.engine.claims import CONFIRMED, INCONCLUSIVE, REFUTED, UNRELIABLE, check_claim
from wattbench.service.workbench import Workbench, compare_loaded

from tests.report_fixtures import make_run

CPU = Side(device="cpu")
GPU = Side(device="cuda:0")


def _cpu() -> list[RunResult]:
    return [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2, 3)]


def _gpu() -> list[RunResult]:
    return [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (4, 5, 6)]


def _claim(relation: str, factor: float, metric: str = "throughput") -> Claim:
    return Claim(CPU, GPU, metric, relation, factor)


def test_the_interval_against_the_factor_decides() -> None:
    ok = check_claim(_claim("≥", 2.0), _cpu(), _gpu())
    assert ok.verdict == CONFIRMED and ok.ratio.value is not None
    assert abs(ok.ratio.value - 2.5) < 0.05
    assert ok.a.label == "cpu · torch" and len(ok.a.run_ids) == 3
    assert check_claim(_claim("≥", 3.0), _cpu(), _gpu()).verdict == REFUTED
    assert check_claim(_claim("≤", 3.0), _cpu(), _gpu()).verdict == CONFIRMED
    assert check_claim(_claim("≤", 2.0), _cpu(), _gpu()).verdict == REFUTED
    # per joule the GPU is worse: 300 W × 4 ms vs 50 W × 10 ms per batch → 0.417×
    ppw = check_claim(_claim("≥", 0.8, "perf-per-watt"), _cpu(), _gpu())
    assert ppw.verdict == REFUTED and ppw.ratio.value is not None
    assert abs(ppw.ratio.value - 500 / 1200) < 0.01


def test_a_factor_inside_the_interval_is_inconclusive_and_says_how_many_runs() -> None:
    ratio = check_claim(_claim("≥", 1.0), _cpu(), _gpu()).ratio
    assert ratio.lo is not None and ratio.hi is not None
    inside = (ratio.lo + ratio.hi) / 2 * 1.0001
    res = check_claim(_claim("≥", inside), _cpu(), _gpu())
    assert res.verdict == INCONCLUSIVE
    assert "straddles" in res.why
    assert res.runs_needed is None or res.runs_needed > 3  # more than each side has


def test_flagged_runs_never_confirm_or_refute() -> None:
    gpu = [r.with_(flags=(*r.flags, FLAG_CONTENDED)) if i == 0 else r for i, r in enumerate(_gpu())]
    res = check_claim(_claim("≥", 2.0), _cpu(), gpu)
    assert res.verdict == UNRELIABLE
    assert res.b.causes and "contended" in res.b.causes[0] and not res.a.causes
    assert "flagged" in res.why


def test_a_side_spanning_two_configurations_is_refused() -> None:
    cpu = [*_cpu(), make_run(seed=9, batch=8, mean_ms=3)]
    with pytest.raises(BadInputError, match="matches 2 configurations"):
        check_claim(_claim("≥", 2.0), cpu, _gpu())


def test_claims_are_read_as_data() -> None:
    assert parse_expression("B >= 0.8 * A") == ("≥", 0.8)
    assert parse_expression("b ≤ 1.2×a") == ("≤", 1.2)
    with pytest.raises(BadInputError, match=re.escape("B >= 0.8")):
        parse_expression("__import__('os').system('true')")
    side = parse_side("device=cuda:0,tag=a100,batch=8")
    assert (side.device, side.tag, side.batch) == ("cuda:0", "a100", 8)
    assert parse_side("ids=1a2b+3c4d").ids == ("1a2b", "3c4d")
    with pytest.raises(BadInputError, match="key=value"):
        parse_side("gpu")
    claims = claims_from_toml(
        '[[claim]]\nname = "MI250 vs A100"\nmetric = "tokens/s"\nclaim = "B >= 0.8 * A"\n'
        'a = { tag = "a100" }\nb = "tag=mi250"\n'
    )
    assert claims[0].name == "MI250 vs A100" and claims[0].factor == 0.8
    assert claims[0].a.tag == "a100" and claims[0].b.tag == "mi250"
    for bad, message in (
        ("claim = 1", "[[claim]] tables"),
        ("[[claim]\n", "not valid TOML"),
        ('[[claim]]\nmetric = "x"\na = "device=cpu"\nb = "device=cpu"\nrun = "rm"\n', "unknown"),
        ('[[claim]]\nmetric = "x"\na = "device=cpu"\nb = "device=cpu"\n', "B >= 0.8"),
    ):
        with pytest.raises(BadInputError, match=re.escape(message)):
            claims_from_toml(bad)


def test_cli_checks_a_claims_file_on_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "claims.sqlite")
    with open_store(db) as s:
        for r in [*_cpu(), *_gpu()]:
            s.save_run(r)
    path = tmp_path / "claims.toml"
    path.write_text(
        '[[claim]]\nname = "GPU at least twice as fast"\nmetric = "throughput"\n'
        'claim = "B >= 2 * A"\na = "device=cpu"\nb = "device=cuda"\n\n'
        '[[claim]]\nname = "GPU beats the CPU per joule"\nmetric = "perf-per-watt"\n'
        'claim = "B >= 1 * A"\na = "device=cpu"\nb = "device=cuda"\n',
        encoding="utf-8",
    )
    assert main(["--db", db, "claim", str(path)]) == 0
    out = capsys.readouterr().out
    assert "GPU at least twice as fast: B ≥ 2 × A on throughput" in out
    assert "CONFIRMED: the whole interval lies at or above 2." in out
    assert "REFUTED: the whole interval lies below 1." in out
    assert "2 claims: 1 confirmed, 1 refuted." in out
    assert main(["--db", db, "claim", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in doc["claims"]] == [CONFIRMED, REFUTED]
    assert main(["--db", db, "claim", "--a", "device=tpu", "--b", "device=cpu", "--metric",
                 "throughput", "--claim", "B >= 1 * A"]) == 2  # fmt: skip
    assert "No finished run matches side A" in capsys.readouterr().err
    with Workbench.open(db) as wb:
        assert len(wb.side_runs(Side(device="cuda"))) == 3


def _server_run(seed: int, device: str, goodput: float) -> RunResult:
    run = make_run(seed=seed, device=device, batch=1, mean_ms=2)
    spec = dataclasses.replace(
        run.spec, scenario=Scenario.SERVER, slo_ms=100.0, slo_percentile=0.99, streams=1
    )
    summary = ServerSummary(
        target_rate_per_s=goodput, streams=1, seed=seed, requests=5000, dropped=0, late=0,
        queued=100, offered_rate_per_s=goodput, achieved_rate_per_s=goodput, duration_s=10.0,
        service_mean_ns=2e6, issue_lag_p50_ns=5e4, issue_lag_p99_ns=2e5,
        generator_cpu_share=0.02, generator_cpu_per_request_ns=4e3, slo_percentile=0.99,
        slo_ms=100.0, slo_met=True, goodput_per_s=goodput,
    )  # fmt: skip
    return run.with_(spec=spec, server=summary)


def test_goodput_claims_on_server_runs() -> None:
    # goodput 400/s on the CPU, 900-950/s on the GPU: 2.3× at least, not 3×
    cpu = [_server_run(s, "cpu", g) for s, g in ((1, 400.0), (2, 410.0), (3, 395.0))]
    gpu = [_server_run(s, "cuda:0", g) for s, g in ((4, 900.0), (5, 950.0), (6, 925.0))]
    ok = check_claim(Claim(CPU, GPU, "goodput", "≥", 2.0), cpu, gpu)
    assert ok.verdict == CONFIRMED and ok.ratio.value is not None
    assert abs(ok.ratio.value - 925 / 401.6) < 0.02
    assert check_claim(Claim(CPU, GPU, "goodput", "≥", 3.0), cpu, gpu).verdict == REFUTED
    # a run without an SLO search has no goodput: said, not guessed
    plain = check_claim(Claim(CPU, GPU, "goodput", "≥", 2.0), _cpu(), _gpu())
    assert plain.verdict == "n/a" and "not a server-scenario run" in plain.why
    board = compare_loaded([*cpu, *gpu]).board
    assert board is not None and board.answers[0].question == "goodput"
    winner = board.answers[0].winner
    assert winner is not None and winner.label.startswith("cuda:0")


def test_per_gpu_training_claims_count_an_mi250_as_one_card_of_two_dies() -> None:
    """The claim "an MI250 delivers 80 % of the per-GPU training throughput of an A100": for
    training runs "tokens/s" is trained tokens per second per card. Here one MI250 die trains at
    0.45× the A100's tokens/s (step 44.4 ms vs 20 ms), so its card (two dies) at 0.9×."""
    from tests.training_fixtures import training_run

    a100 = [
        training_run(device="cuda:0", device_name="NVIDIA A100-SXM4-40GB", step_ms=20.0, seed=s)
        for s in (1, 2, 3)
    ]
    die = [
        training_run(device="cuda:1", device_name="AMD Instinct MI250", step_ms=20.0 / 0.45, seed=s)
        for s in (4, 5, 6)
    ]
    claim = Claim(Side(device="cuda:0"), Side(device="cuda:1"), "tokens/s", "≥", 0.8)
    res = check_claim(claim, a100, die)
    assert res.ratio.value is not None and res.ratio.value == pytest.approx(0.9, rel=0.03)
    assert res.verdict in (CONFIRMED, INCONCLUSIVE)
    per_device = check_claim(dataclasses.replace(claim, metric="tokens/s per device"), a100, die)
    assert per_device.ratio.value == pytest.approx(0.45, rel=0.03)
    assert per_device.verdict == REFUTED
