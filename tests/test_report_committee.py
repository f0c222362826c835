"""The report a purchasing committee reads: the answer on page 1, machines described once, a
short PDF, one unit per column and no long numbers.

pdftotext (poppler-utils) reads the PDF back as a reader would see it.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from wattbench.domain.result import RunResult, RunStatus
from wattbench.reports import write_report
from wattbench.reports.front import board_table, machine_tables, ratio_tables
from wattbench.reports.model import build_report
from wattbench.reports.tables import Table, all_tables

from tests.report_fixtures import eight_runs, make_run

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext is not installed")
UNITS = ("ns", "µs", "ms", "s", "nJ", "µJ", "mJ", "J", "W", "B", "KiB", "MiB", "GiB", "MHz")
# a number followed by a unit: "9.99 ms", "2,048 MiB", "1.2e-05 J"
UNIT_AFTER_NUMBER = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?\s?(" + "|".join(UNITS) + r")(?![\w/])"
)


def _pdf_text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    assert PDFTOTEXT is not None
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    out = subprocess.run([PDFTOTEXT, *pages, str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return " ".join(out.split())


@pytest.fixture(scope="module")
def runs8() -> list[RunResult]:
    return eight_runs()  # each call makes new run ids


@pytest.fixture(scope="module")
def eight(tmp_path_factory: pytest.TempPathFactory, runs8: list[RunResult]) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eight")
    return {s: write_report(runs8, d / f"report.{s}") for s in ("pdf", "html")}


@needs_pdftotext
def test_page_one_holds_the_board_the_quality_summary_and_the_method(
    eight: dict[str, Path],
) -> None:
    page1 = _pdf_text(eight["pdf"], 1, 1)
    assert "Verdict board" in page1
    # the board's winner per second: the GPU at batch 32 (four times the CPU's throughput)
    assert re.search(r"Throughput measured cuda:0 · torch · b32 [\d,]+ items/s", page1), page1
    assert "Not ranked: cpu · onnxruntime · b32: unreliable" in page1
    assert "2 of 8 compared runs unreliable: not converged (1), contended (1)." in page1
    assert "Each run executed in its own process" in page1
    assert "The full method is in the appendix." in page1


@needs_pdftotext
def test_an_eight_run_pdf_is_short(eight: dict[str, Path]) -> None:
    assert PDFTOTEXT is not None
    raw = subprocess.run([PDFTOTEXT, str(eight["pdf"]), "-"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    pages = raw.count("\f")  # pdftotext ends every page with a form feed
    assert pages <= 9, pages
    text = _pdf_text(eight["pdf"])
    # the machines are described once, as what differs, with readable names and units
    assert text.count("Machines: what differs") == 1
    assert "Memory 23.5 GiB 63.7 GiB" in text
    assert "memory_total_bytes" not in text and "cpu.isa" not in text
    assert "25,232,932,864" not in text and "25232932864" not in text
    # raw per-run data is left to the CSV and JSON
    assert "latency_p99_9_value_ns" not in text
    # the charts are vectors: at most a colour bar's small gradient is a bitmap
    pdfimages = shutil.which("pdfimages")
    if pdfimages is not None:
        listed = subprocess.run([pdfimages, "-list", str(eight["pdf"])], capture_output=True,
                                text=True, check=True).stdout.splitlines()[2:]  # fmt: skip
        widths = [int(line.split()[3]) for line in listed]
        assert all(w <= 64 for w in widths), widths


def test_systems_are_described_once_by_what_differs() -> None:
    model = build_report(eight_runs())
    (t,) = machine_tables(model)
    assert t.header == ["", "lt-07", "ws-01"]
    rows = {r[0].text: [c.text for c in r[1:]] for r in t.rows}
    assert rows["Memory"] == ["23.5 GiB", "63.7 GiB"]
    assert rows["GPU"] == ["none", "NVIDIA GeForce RTX 4090"]
    assert rows["CPU cores"] == ["10 cores, 20 threads", "24 cores, 48 threads"]
    assert "OS" not in rows and "Python" not in rows  # shared: said once in the caption
    assert "OS Linux 6.8.0-45-generic" in t.caption and "Python 3.11.7" in t.caption
    # what a run's moment says (load, free memory, boot time) is no machine difference
    assert not any("load" in k.lower() or "boot" in k.lower() for k in rows)


@needs_pdftotext
def test_a_1500_word_note_renders_whole_in_the_pdf(tmp_path: Path) -> None:
    words = [f"w{i:04d}" for i in range(1500)]
    note = "\n\n".join(" ".join(words[i : i + 150]) for i in range(0, 1500, 150))
    runs = [make_run(seed=1, notes=note), make_run(seed=2, device="cuda:0")]
    pdf = write_report(runs, tmp_path / "note.pdf")  # a too-tall flowable raises LayoutError
    text = _pdf_text(pdf)
    missing = [w for w in words if w not in text]
    assert missing == []  # not lost, not cut
    assert "more characters" not in text


def _column_units(t: Table) -> list[tuple[str, set[str]]]:
    out: list[tuple[str, set[str]]] = []
    for i, head in enumerate(t.header):
        found: set[str] = set()
        for row in t.rows:
            col = 0
            for c in row:
                if col == i and c.span == 1:
                    found |= set(UNIT_AFTER_NUMBER.findall(c.text))
                col += c.span
        out.append((head, found))
    return out


def _header_unit(head: str) -> str | None:
    inside = re.findall(r"\(([^)]*)\)", head)
    for part in inside:
        for word in re.split(r"[\s,/]+", part):
            if word in UNITS:
                return word
    return None


@pytest.mark.parametrize(("estimate_w", "estimate_ms"), [(5.0, 0.2), (1000.0, 200.0)])
def test_every_cell_of_a_column_has_its_header_unit(estimate_w: float, estimate_ms: float) -> None:
    """An estimate far from the measured figures (a J figure among mJ ones) and per-item
    latencies (µs per item under a per-call ms header) are written in the column's unit."""
    runs = [
        make_run(seed=1, mean_ms=10.0, power_w=50.0),
        make_run(seed=2, mean_ms=10.0, power_w=51.0),
        make_run(
            seed=3, device="cuda:0", mean_ms=estimate_ms, power_w=estimate_w, estimate_only=True
        ),
        make_run(seed=4, device="cuda:1", batch=1, mean_ms=0.05, power_w=2.0),
        make_run(seed=5, device="cuda:2", status=RunStatus.FAILED),
    ]
    model = build_report(runs)
    tables = [t for t in all_tables(model).values() if t is not None]
    tables += ratio_tables(model)  # the board and machine tables carry a unit per row
    checked = 0
    for t in tables:
        for head, found in _column_units(t):
            want = _header_unit(head)
            if want is not None:
                assert found <= {want}, (t.key, head, found)
                checked += bool(found)
            else:
                assert len(found) <= 1, (t.key, head, found)
    assert checked >= 3
    energy = next(t for t in tables if t.key == "energy")
    unit = _header_unit(energy.header[2])
    est = [r[2].text for r in energy.rows if r[2].text.startswith("ESTIMATE")]
    assert len(est) == 1 and f" {unit} per inference (estimate" in est[0], (unit, est)


def _significant_digits(number: str) -> int:
    digits = number.replace(",", "")
    mantissa = digits.split("e")[0].replace(".", "").lstrip("0")
    if "." not in digits:  # an integer's trailing zeros are placeholders
        mantissa = mantissa.rstrip("0")
    return len(mantissa)


def test_no_long_numbers_in_the_html_text(eight: dict[str, Path], runs8: list[RunResult]) -> None:
    page = eight["html"].read_text("utf-8")
    page = re.sub(r"<(style|metadata|title)\b.*?</\1>", " ", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for run in runs8:
        text = text.replace(run.id[:8], " ")  # run ids are names, not numbers
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*", " ", text)  # timestamps
    numbers = re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?", text)
    assert len(numbers) > 200
    long = [n for n in numbers if _significant_digits(n) > 6]
    assert long == []
    # the same holds for the board's text in the model
    cells = [c.text for r in board_table(build_report(runs8)).rows for c in r]
    assert not [n for c in cells for n in re.findall(r"\d[\d,.]{9,}", c)]


def test_the_summary_says_each_reason_once() -> None:
    model = build_report(eight_runs())
    ort = next(s for s in model.summary if "cpu · onnxruntime · b32 delivers" in s)
    assert ort.count("not converged") == 1, ort
    assert ort.endswith("Unreliable: this configuration not converged (1 of 2 runs).")
    assert not any("energy view" in s for s in model.summary)  # said once in the header


def test_the_json_carries_the_board_quality_and_machines(tmp_path: Path) -> None:
    import json

    doc = json.loads(write_report(eight_runs(), tmp_path / "r.json").read_text("utf-8"))
    assert doc["quality"].startswith("2 of 8 compared runs unreliable")
    best = {a["question"]: a["winner"]["label"] for a in doc["board"]["answers"] if a["winner"]}
    assert best["throughput"] == "cuda:0 · torch · b32"
    assert doc["machines"]["differing"][:2] == ["Host", "CPU"]
    assert doc["machines"]["machines"][1]["fields"]["Memory"] == "63.7 GiB"
    assert doc["machines"]["shared"]["OS"] == "Linux 6.8.0-45-generic"


def test_this_machine_reads_in_words_and_units() -> None:
    """The description this machine really gives: readable names, sizes in binary units, no
    raw key paths or byte counts."""
    from wattbench.backends.system import describe_system
    from wattbench.reports.systems import describe

    fields = describe(describe_system())
    assert re.fullmatch(r"[\d,.]+ (MiB|GiB|TiB)", fields["Memory"]), fields["Memory"]
    assert fields["OS"] and fields["CPU"] and fields["Host"]
    for name, value in fields.items():
        assert "_" not in name and "[" not in name and "." not in name, name
        assert not re.search(r"\d{7,}", value), (name, value)
