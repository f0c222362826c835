"""HTML and PDF reports as a reader gets them: Chromium renders the HTML, pdftoppm the PDF.

The runs carry hostile strings (a <script>, an onerror handler, mathtext, a leading '_') in a
host name, tags and notes: the page must render, run no script and fetch nothing.
"""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from wattbench.domain.result import RunResult
from wattbench.reports import write_report

from tests.report_fixtures import HOSTILE, comparison_runs, make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOPPM = shutil.which("pdftoppm")
PDFTOTEXT = shutil.which("pdftotext")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
]
BLUE = np.array([0x00, 0x72, 0xB2])  # the bar colour (Okabe–Ito blue)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("reports")
    runs = comparison_runs()
    return {s: write_report(runs, d / f"report.{s}") for s in ("html", "pdf")}


def _chromium(args: list[str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class _Recorder(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def server(reports: dict[str, Path]) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server over the report folder that records every request it gets."""
    requests: list[str] = []
    handler = type("Handler", (_Recorder,), {"requests": requests})
    folder = str(reports["html"].parent)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=folder)
    )
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_html_is_self_contained_and_escaped(reports: dict[str, Path]) -> None:
    text = reports["html"].read_text("utf-8")
    assert "<script" not in text.lower()  # no script at all: the hostile ones are escaped
    assert "<img" not in text and 'onerror="' not in text  # only as escaped text
    assert "&lt;script&gt;document.title=" in text
    assert "Content-Security-Policy" in text
    # Every link is internal (#...) or embedded data; every src too (there are none to fetch).
    for attr, value in re.findall(r'\s(href|src)="([^"]*)"', text):
        assert value.startswith(("#", "data:")), (attr, value[:80])
    assert "@import" not in text
    assert all(u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", text))
    assert text.count("<svg") >= 5  # charts inline
    assert "delivers 0.80× the throughput of cpu · torch · b32 (95 % CI" in text
    assert "n/a — no power sensor readable on this host" in text


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_in_headless_chromium(
    reports: dict[str, Path], server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, requests = server
    shot = tmp_path / "page.png"
    r = _chromium([
        "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1280,4000",
        f"{url}/report.html",
    ])  # fmt: skip
    assert shot.exists(), r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no error, no CSP violation, no blocked fetch
    assert [p for p in requests if p != "/favicon.ico"] == ["/report.html"]
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[1] == 1280
    blue = np.all(np.abs(img.astype(int) - BLUE) < 40, axis=2)
    assert blue.sum() > 2000  # the bar charts were drawn


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_injected_script_does_not_run_even_without_csp(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    """Escaping alone must hold: remove the CSP and check that the DOM is untouched."""
    text = reports["html"].read_text("utf-8")
    bare = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    assert bare != text
    page = tmp_path / "no-csp.html"
    page.write_text(bare, "utf-8")
    r = _chromium(["--dump-dom", page.as_uri()])
    dom = r.stdout
    assert "<h1>Wattbench comparison" in dom, r.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and title.group(1).startswith("Wattbench comparison")
    assert "<script" not in dom.lower()
    assert 'id="raw"' in dom  # the body was not replaced


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm (poppler-utils) is not installed")
def test_pdf_pages_and_charts(reports: dict[str, Path], tmp_path: Path) -> None:
    from PIL import Image

    subprocess.run(
        [str(PDFTOPPM), "-r", "60", "-png", str(reports["pdf"]), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4
    blue_per_page = []
    for p in pages:
        img = np.asarray(Image.open(p).convert("RGB")).astype(int)
        assert img.shape[0] > img.shape[1]  # A4 portrait
        blue_per_page.append(int(np.all(np.abs(img - BLUE) < 40, axis=2).sum()))
    # The bar charts: at least one page with a large area of bar blue.
    assert max(blue_per_page) > 1500, blue_per_page
    if PDFTOTEXT is not None:
        out = subprocess.run(
            [PDFTOTEXT, str(reports["pdf"]), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "Verdict board" in out and "Summary" in out and "Appendix" in out
        assert "Raw data" in out
        assert "<script>document.title=" in out.replace("\n", "")  # shown as text
        assert "n/a — no power sensor readable on this host" in out.replace("\n", " ")


def test_hostile_strings_render_the_same(tmp_path: Path) -> None:
    """A model path, model name, host and note full of markup give the same document shape."""

    def runs(text: str) -> list[RunResult]:
        return [
            make_run(seed=1, model=text, model_name=text, host=text, notes=text),
            make_run(seed=2, device="cuda:0", model=text, model_name=text, host="h", notes=text),
        ]

    a = write_report(runs("plain"), tmp_path / "a.html").read_text("utf-8")
    b = write_report(runs(HOSTILE), tmp_path / "b.html").read_text("utf-8")
    assert "<script" not in b.lower() and "<img" not in b
    assert "&lt;script&gt;" in b  # in titles, tables and the charts' SVG text
    tags = re.compile(r"<(/?[a-zA-Z]+)")
    assert tags.findall(a) == tags.findall(b)


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not installed")
def test_a_run_note_longer_than_many_pages_is_cut_in_the_pdf(tmp_path: Path) -> None:
    """A note is free text (a pasted log): past several pages the PDF cuts it and says where
    the rest is; the HTML keeps all of it."""
    note = "A pasted log line of this run. " * 3000  # ~93,000 characters
    runs = [make_run(seed=1, notes=note), make_run(seed=2, device="cuda:0", notes="short")]
    pdf = write_report(runs, tmp_path / "report.pdf")
    text = subprocess.run(
        [str(PDFTOTEXT), str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    assert "A pasted log line of this run." in flat
    assert "more characters in the HTML and JSON reports" in flat
    html = write_report(runs, tmp_path / "report.html").read_text("utf-8")
    assert html.count("A pasted log line of this run.") >= 3000  # the HTML keeps all of it
