"""Claims and the capacity plan in reports: `wattbench report … --claims FILE --budget …`.

report_fixtures.make_run: throughput = batch / mean latency, so cuda:0 at 4 ms delivers 2.5× the
throughput of the CPU at 10 ms (batch 32 both), and per joule 300 W × 4 ms against 50 W × 10 ms
a batch: 0.417× the CPU's. Hence "B ≥ 2 × A on throughput" is confirmed and "B ≥ 1 × A per
joule" refuted. The plan by hand: 600 kW at PUE 1 for 250 W CPU servers holds 2,400 servers,
40 a 10 kW rack, 60 racks; 10 kW GPU servers of 8 devices: 60 servers, one a rack.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.db.store import open_store
from wattbench.domain.result import RunResult

from tests.report_fixtures import make_run

PDFTOTEXT = shutil.which("pdftotext")
CLAIMS = (
    '[[claim]]\nname = "GPU at least twice as fast"\nmetric = "throughput"\n'
    'claim = "B >= 2 * A"\na = "device=cpu"\nb = "device=cuda"\n\n'
    '[[claim]]\nname = "GPU beats the CPU per joule"\nmetric = "perf-per-watt"\n'
    'claim = "B >= 1 * A"\na = "device=cpu"\nb = "device=cuda"\n'
)
PLAN = ["--budget", "600kW", "--rack-power", "10kW", "--server", "cpu", "power=250W",
        "--server", "cuda:0", "devices=8,power=10kW"]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[RunResult], Path]:
    d = tmp_path_factory.mktemp("sizing")
    db = str(d / "sizing.sqlite")
    runs = [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2, 3)]
    runs += [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (4, 5, 6)]
    with open_store(db) as s:
        for r in runs:
            s.save_run(r)
    claims = d / "claims.toml"
    claims.write_text(CLAIMS, encoding="utf-8")
    return db, runs, claims


def _report(store: tuple[str, list[RunResult], Path], out: Path, *extra: str) -> int:
    db, runs, claims = store
    # the report holds one run a side; the claims use all three of each side from the store
    return main(["--db", db, "report", runs[0].id, runs[3].id, "--claims", str(claims),
                 *PLAN, *extra, "-o", str(out)])  # fmt: skip


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext is not installed")
def test_pdf_page_one_has_the_claims_and_the_plan_follows(
    store: tuple[str, list[RunResult], Path], tmp_path: Path
) -> None:
    out = tmp_path / "report.pdf"
    assert _report(store, out) == 0
    assert PDFTOTEXT is not None
    text = subprocess.run([PDFTOTEXT, "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    page1 = text.split("\f")[0]
    assert "Verdict board" in page1 and "Claims" in page1
    assert page1.index("Verdict board") < page1.index("Claims") < page1.index("Run quality")
    flat = " ".join(text.split())
    assert "2 claims: 1 confirmed, 1 refuted." in flat
    rows = re.split(r"GPU beats the CPU", " ".join(page1.split()))
    assert "CONFIRMED" in rows[0] and "REFUTED" not in rows[0]
    assert "REFUTED" in rows[1] and "CONFIRMED" not in rows[1]
    assert "Capacity plan: 600 kW facility at PUE 1 (600 kW for IT), racks of 10 kW" in flat
    servers = next(
        line.split() for line in text.splitlines() if line.strip().startswith("servers ")
    )
    assert servers[1:] == ["2,400", "60"]
    racks = next(line.split() for line in text.splitlines() if line.strip().startswith("racks "))
    assert racks[1:] == ["60", "60"]  # 40 CPU servers a rack; one 10 kW GPU server a rack
    assert "250 W (input)" in flat and "(measured)" in flat


def test_html_shows_verdicts_in_colour_and_the_runs_each_side_used(
    store: tuple[str, list[RunResult], Path], tmp_path: Path
) -> None:
    _, runs, _ = store
    out = tmp_path / "report.html"
    assert _report(store, out) == 0
    doc = html.unescape(out.read_text(encoding="utf-8"))
    claims = doc[doc.index('id="t-claims"') : doc.index('id="quality"')]
    assert re.search(r"GPU at least twice as fast: B ≥ 2 × A on throughput.*?"
                     r'<td class="confirmed">CONFIRMED</td>', claims, re.S)  # fmt: skip
    refuted = r'GPU beats the CPU per joule.*?<td class="refuted">REFUTED</td>'
    assert re.search(refuted, claims, re.S)
    for r in runs:  # runs 2, 3, 5 and 6 are not in the report, yet the sides used them
        assert r.id[:8] in claims
    plan = doc[doc.index('<section id="capacity">') :]
    plan = plan[: plan.index("</section>")]
    assert re.search(r"<td[^>]*>servers</td><td>2,400</td><td>60</td>", plan)
    assert "cpu · torch, server power: stated for the server" in plan
    assert '<a href="#capacity">Capacity plan</a>' in doc and '<a href="#t-claims">' in doc


def test_json_carries_claims_and_capacity(
    store: tuple[str, list[RunResult], Path], tmp_path: Path
) -> None:
    db, runs, _ = store
    out = tmp_path / "report.json"
    assert _report(store, out, "--pue", "1.2", "--years", "5") == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["version"] == 1
    assert [c["verdict"] for c in doc["claims"]] == ["confirmed", "refuted"]
    assert len(doc["claims"][0]["b"]["run_ids"]) == 3
    cap = doc["capacity"]
    assert cap["facility"]["budget_w"] == 600_000 and cap["facility"]["pue"] == 1.2
    assert [r["servers"] for r in cap["rows"]] == [2_000, 50]  # 500 kW for IT
    # without the flags: the keys are there, empty
    plain = tmp_path / "plain.json"
    assert main(["--db", db, "report", runs[0].id, runs[3].id, "-o", str(plain)]) == 0
    doc = json.loads(plain.read_text(encoding="utf-8"))
    assert doc["claims"] == [] and doc["capacity"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "a lot"], "1MW or 250W"),
        (["--budget", "1MW", "--pue", "7"], "--pue: The PUE is between 1 and 5"),
        (["--rack-power", "10kW"], "--rack-power is an input of the capacity plan"),
        (["--budget", "1MW", "--server", "cuda:0", "watts=9"], "keys devices, power, idle"),
        (["--budget", "1MW", "--server", "cuda:7", "power=1kW"], "none of these runs ran on"),
    ],
)
def test_bad_planner_input_exits_2_and_writes_nothing(
    store: tuple[str, list[RunResult], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    db, runs, _ = store
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "report.html"
    assert main(["--db", db, "report", runs[0].id, runs[3].id, *args, "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not list(folder.iterdir())  # not even a partial file


def test_claims_that_cannot_be_checked_exit_2_and_write_nothing(
    store: tuple[str, list[RunResult], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, runs, _ = store
    folder = tmp_path / "out"
    folder.mkdir()
    assert _report(store, folder / "report.csv") == 2
    assert "A CSV report has one row per run" in capsys.readouterr().err
    args = ["--db", db, "report", runs[0].id, "--claims"]
    assert main([*args, str(tmp_path / "no.toml"), "-o", str(folder / "report.pdf")]) == 2
    assert "Cannot read the claims file" in capsys.readouterr().err
    nowhere = tmp_path / "tpu.toml"
    nowhere.write_text(CLAIMS.replace('b = "device=cuda"', 'b = "device=tpu"'), encoding="utf-8")
    assert main([*args, str(nowhere), "-o", str(folder / "report.html")]) == 2
    assert "No finished run matches side B (device tpu)" in capsys.readouterr().err
    assert not list(folder.iterdir())


def test_a_claim_name_is_text_in_the_html(
    store: tuple[str, list[RunResult], Path], tmp_path: Path
) -> None:
    db, runs, _ = store
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(CLAIMS.replace("GPU at least twice as fast", "<script>x()</script>"),
                       encoding="utf-8")  # fmt: skip
    out = tmp_path / "report.html"
    args = ["--db", db, "report", runs[0].id, "--claims", str(hostile), "-o", str(out)]
    assert main(args) == 0
    doc = out.read_text(encoding="utf-8")
    assert "<script>" not in doc and "&lt;script&gt;x()&lt;/script&gt;: B ≥ 2 × A" in doc
