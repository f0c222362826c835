"""The compare view opens on the verdict board (the sentences on demand), charts with nothing to
draw say why in one line, the run list fills its page, and both palettes are legible.

Figures of report_fixtures.make_run follow from its arguments (batch 32): cpu · torch (10 ms,
50 W) 3,200 items/s and 15.6 mJ; cuda:0 · torch (4 ms, 300 W) 8,000 items/s and 37.5 mJ;
cpu · onnxruntime (8 ms, 30 W) 4,000 items/s and 7.5 mJ: the fastest is not the most frugal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from wattbench.domain.events import Phase
from wattbench.domain.result import FLAG_CONTENDED, FLAG_NOT_CONVERGED, RunResult
from wattbench.domain.spec import RunSpec
from wattbench.gui import theme
from wattbench.gui.app_settings import AppSettings
from wattbench.gui.main_window import MainWindow
from wattbench.gui.pages.compare import ComparePage
from wattbench.gui.pages.live import LivePage
from wattbench.gui.pages.queue import state_colour
from wattbench.gui.pages.runs import RunsPage
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.gui.widgets.chart_slot import LINE_CHARS, one_line
from wattbench.gui.widgets.runs_table import FLAGS_COLUMN
from wattbench.gui.widgets.verdict_board import COL_BEST, COL_QUESTION, COL_RATIO, short_line
from wattbench.service.queue import ItemState, QueueItem

from tests.gui.pages_helpers import TIMEOUT_MS, fill_store, make_controller_fixture  # noqa: F401
from tests.report_fixtures import make_run

CPU, GPU, ORT = "cpu · torch", "cuda:0 · torch", "cpu · onnxruntime"


def _runs() -> list[RunResult]:
    return (
        [make_run(seed=s, mean_ms=10, power_w=50) for s in (1, 2)]
        + [make_run(seed=s, device="cuda:0", mean_ms=4, power_w=300) for s in (3, 4)]
        + [make_run(seed=s, runtime="onnxruntime", mean_ms=8, power_w=30) for s in (5, 6)]
    )


def _unreliable(run: RunResult) -> RunResult:
    return run.with_(flags=(*run.flags, FLAG_NOT_CONVERGED))


@pytest.fixture
def palette() -> Iterator[None]:
    """Put the application's palette back as it was after the test."""
    yield
    theme.apply_theme("system")


def _compare(qtbot: Any, controller: Any, runs: list[RunResult]) -> ComparePage:
    page = ComparePage(controller)
    qtbot.addWidget(page)
    page.resize(1300, 850)
    page.show()
    with qtbot.waitSignal(controller.comparisonReady, timeout=TIMEOUT_MS):
        page.set_runs([r.id for r in runs], runs[0].id)
    qtbot.waitUntil(lambda: page.view is not None, timeout=TIMEOUT_MS)
    return page


def _row(page: ComparePage, title: str) -> tuple[str, ...]:
    return next(r for r in page.board.rows if r[COL_QUESTION] == title)


def test_the_board_comes_first_with_the_right_winners(
    qtbot: Any, tmp_path: Path, make_controller: Any
) -> None:
    # the cheat is 10× as fast and frugal as anything else, but it did not converge
    cheat = [_unreliable(make_run(seed=s, batch=16, mean_ms=0.5, power_w=5)) for s in (7, 8)]
    runs = _runs() + cheat
    page = _compare(qtbot, make_controller(fill_store(tmp_path / "b.sqlite", runs)), runs)
    assert page.board.isVisibleTo(page) and not page.placeholder.isVisibleTo(page)
    thr = _row(page, "Throughput")
    # (the labels name the batch size: the cheat's differs)
    assert thr[COL_BEST] == f"{GPU} · b32" and "items/s" in thr[2] and "faster" in thr[COL_RATIO]
    assert thr[4].startswith(f"{ORT} · b32")  # the runner-up
    assert _row(page, "Energy per inference")[COL_BEST] == f"{ORT} · b32"  # not the fastest
    assert _row(page, "Inferences per joule")[COL_BEST] == f"{ORT} · b32"
    assert all("b16" not in row[COL_BEST] for row in page.board.rows)
    assert all(row[-1] == "measured" for row in page.board.rows)  # the basis, labelled
    # no cost profile: $ per 1M says n/a with a mark, the reason once under the board
    cost = _row(page, "$ per 1M inferences")
    assert cost[COL_BEST].startswith("n/a")
    why = page.board.why.text()
    assert "cost profile" in why and "Not ranked: cpu · torch · b16: unreliable" in why
    assert "not converged" in page.board.why.toolTip()  # the why-lines in full
    assert why.count("cost profile") == 1
    # the throughput ratio is coloured as "faster"
    index = [r[COL_QUESTION] for r in page.board.rows].index("Throughput")
    assert page.board.ratio_colour(index).name() == theme.verdict_colour("faster")

    # the sentences wait behind "Details"
    assert not page.verdicts.isVisibleTo(page) and not page.details_shown
    assert "95 % CI" in page.verdicts.toPlainText()
    page.details_button.click()
    assert page.verdicts.isVisibleTo(page) and page.details_shown
    page.details_button.click()
    assert not page.verdicts.isVisibleTo(page)


def test_charts_with_nothing_to_draw_say_why_in_one_line(
    qtbot: Any, tmp_path: Path, make_controller: Any
) -> None:
    runs = _runs()
    page = _compare(qtbot, make_controller(fill_store(tmp_path / "n.sqlite", runs)), runs)
    cost = page.bars.charts["cost"]
    assert not cost.isVisibleTo(page)  # no cost profile: not an empty plot
    assert page.bars.charts["throughput"].isVisibleTo(page)
    notes = page.chart_notes.text()
    assert page.chart_notes.isVisibleTo(page) and "$ per million inferences: n/a" in notes
    assert notes.count("<div") == 1  # one line for the one chart not drawn
    # one batch size everywhere: the batch tab says so instead of drawing an empty plot
    page.show_tab(page.batch)
    slot = page.slots[page.batch]
    assert slot.currentWidget() is slot.note and "two or more batch sizes" in slot.why
    assert not page.chart_notes.isVisibleTo(page)  # the bar notes belong to the figures tab
    page.show_tab(page.cdf)
    assert page.slots[page.cdf].currentWidget() is page.cdf and page.cdf.curves


def test_the_run_list_fills_its_page_and_flags_read_in_words(
    qtbot: Any, tmp_path: Path, make_controller: Any
) -> None:
    runs = [make_run(seed=s, mean_ms=5 + s) for s in range(30)]
    runs[0] = runs[0].with_(flags=(*runs[0].flags, FLAG_CONTENDED, "high_cv"))
    controller = make_controller(fill_store(tmp_path / "r.sqlite", runs))
    page = RunsPage(controller)
    qtbot.addWidget(page)
    page.resize(1200, 800)
    with qtbot.waitSignal(controller.runsListed, timeout=TIMEOUT_MS):
        page.show()
    qtbot.waitUntil(lambda: page.model.rowCount() == 30, timeout=TIMEOUT_MS)
    short = page.table.height()
    assert short >= 0.5 * page.height()  # the list is the page's main part
    page.resize(1200, 1200)
    qtbot.waitUntil(lambda: page.table.height() > short, timeout=TIMEOUT_MS)
    assert page.table.height() - short >= 0.8 * 400  # the list takes the height gained
    row = next(
        r for r in range(page.proxy.rowCount()) if page.proxy.index(r, 0).data(0x102) == runs[0].id
    )
    flags = page.proxy.index(row, FLAGS_COLUMN)
    assert flags.data().startswith("contended") and "high cv" in flags.data()
    assert "_" not in flags.data()
    colour = flags.data(9)  # ForegroundRole: a flag that makes verdicts unreliable
    assert colour.name() == theme.warning_text()


@pytest.mark.parametrize("name", ["light", "dark"])
def test_both_palettes_are_legible(qtbot: Any, palette: None, name: str) -> None:
    theme.apply_theme(name)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    assert theme.current_theme() == name and theme.is_dark() == (name == "dark")
    pal = app.palette()
    backgrounds = [pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Window)]
    text = pal.color(QPalette.ColorRole.Text)
    assert theme.contrast_ratio(text, backgrounds[0]) >= 7
    for word in ("faster", "slower", "equivalent", "inconclusive", "unreliable: contended"):
        colour = theme.verdict_colour(word)
        assert colour is not None
        for bg in backgrounds:
            assert theme.contrast_ratio(colour, bg) >= theme.MIN_TEXT_CONTRAST, (word, bg.name())
    for colour in (theme.warning_text(), theme.error_text(), theme.ok_colour(), theme.muted()):
        assert theme.contrast_ratio(colour, backgrounds[0]) >= theme.MIN_TEXT_CONTRAST, colour
    banner = Banner()
    qtbot.addWidget(banner)
    for level, (bg, fg) in (
        (Level.WARNING, theme.warning_colours()),
        (Level.ERROR, theme.error_colours()),
        (Level.INFO, theme.info_colours()),
    ):
        banner.show_message("x", level)
        assert theme.contrast_ratio(fg, bg) >= theme.MIN_TEXT_CONTRAST, level
        assert bg in banner.styleSheet()
    # the check itself: black on white is 21:1, a colour on itself 1:1
    assert round(theme.contrast_ratio("#000000", "#ffffff"), 2) == 21.0
    assert theme.contrast_ratio("#777777", "#777777") == 1.0


def test_a_finished_run_that_did_not_converge_is_not_green() -> None:
    spec = RunSpec(model="builtin:mlp-tiny", device="cpu", runtime="torch")
    done = QueueItem(key=1, spec=spec, run_id="a", state=ItemState.DONE, converged=True)
    unconverged = QueueItem(key=2, spec=spec, run_id="b", state=ItemState.DONE, converged=False)
    contended = QueueItem(
        key=3,
        spec=spec,
        run_id="c",
        state=ItemState.DONE,
        converged=True,
        result=make_run(seed=1).with_(flags=(FLAG_CONTENDED,)),
    )
    assert state_colour(done).color().name() == theme.ok_colour()
    assert state_colour(unconverged).color().name() == theme.warning_text()
    assert state_colour(contended).color().name() == theme.warning_text()


def test_the_view_menu_switches_the_theme_and_remembers_it(
    qtbot: Any, palette: None, window: MainWindow
) -> None:
    live = window.show_page("live")
    assert isinstance(live, LivePage)
    marks = ((0.2, Phase.LOADING), (0.5, Phase.WARMUP), (1.0, Phase.MEASURING))
    live._draw_phases(SimpleNamespace(phase_marks=marks))
    window.theme_actions["dark"].trigger()
    assert theme.is_dark() and theme.current_theme() == "dark"
    assert AppSettings().theme() == "dark"  # the next start opens dark
    label = live.phase_lines[1].label  # drawn light, now on the dark background
    assert label.fill.color().name() == theme.background().name()
    legend = live.power_plot.getPlotItem().legend  # made light, its text follows
    assert legend.opts["labelTextColor"].name() == theme.foreground().name()
    window.theme_actions["light"].trigger()
    assert not theme.is_dark() and AppSettings().theme() == "light"
    assert theme.theme_from_env({theme.THEME_ENV: "Dark"}) == "dark"
    assert theme.theme_from_env({theme.THEME_ENV: "purple"}) is None
    assert theme.theme_from_env({}) is None


def test_reasons_are_cut_to_one_line() -> None:
    long = (
        "no power sensor can be read here (amdsmi: the amdsmi package is not installed (no "
        "ROCm); nvml: no NVIDIA driver here (NVML: NVML Shared Library Not Found); rapl: "
        "/sys/class/powercap does not exist); the figures shown are a TDP × load estimate"
    )
    assert one_line(long) == (
        "no power sensor can be read here … the figures shown are a TDP × load estimate"
    )
    assert one_line("no cost profile for device cpu") == "no cost profile for device cpu"
    assert len(one_line("x" * 300)) == LINE_CHARS and one_line("x" * 300).endswith("…")
    assert short_line(f"² {long}").startswith("² no power sensor can be read here …")
    assert short_line("Not ranked: a · b: unreliable (not converged); c: unreliable (x).") == (
        "Not ranked: a · b: unreliable; c: unreliable."
    )


def test_another_store_clears_the_comparison(
    qtbot: Any, tmp_path: Path, make_controller: Any
) -> None:
    runs = _runs()
    controller = make_controller(fill_store(tmp_path / "a.sqlite", runs))
    page = _compare(qtbot, controller, runs)
    other = fill_store(tmp_path / "b.sqlite", [make_run(seed=9)])
    with qtbot.waitSignal(controller.runsListed, timeout=TIMEOUT_MS):
        controller.open_store(other)
    assert page.view is None and page.checked_ids == []
    assert page.placeholder.isVisibleTo(page) and not page.board.isVisibleTo(page)
    assert not page.charts.isVisibleTo(page)  # no charts of runs this store does not hold
    assert not page.banner.isVisibleTo(page)
