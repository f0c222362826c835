"""The PDF report (reportlab): the HTML report's content, paginated, charts as vectors.

Page 1 holds the answer (verdict board, run quality, the method in a paragraph); per-run data
follows in an appendix, and the raw data is in the CSV and JSON exports. Charts are the SVG
that matplotlib drew, turned into reportlab drawings by svglib, so they stay sharp at any zoom.

reportlab's Paragraph reads a small markup language, so every user string is escaped with
`esc` before it goes in. Text uses the DejaVu fonts that matplotlib ships, which have the
symbols the report uses (×, ≤, ρ, ε, µ) that the PDF base fonts lack.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wattbench.reports import front
from wattbench.reports.charts import Chart
from wattbench.reports.figures import ChartSet
from wattbench.reports.model import ReportModel
from wattbench.reports.sizing_tables import claims_table, plan_table, verdict_counts
from wattbench.reports.tables import APPENDIX_TABLES, COMPARISON_TABLES, Table, all_tables
from wattbench.reports.textfmt import counted, esc
from wattbench.reports.training import rate_unit

if TYPE_CHECKING:
    from reportlab.platypus import Flowable

log = logging.getLogger(__name__)

FONT = "WattbenchSans"
FONT_BOLD = "WattbenchSans-Bold"
FONT_MONO = "WattbenchMono"
MAX_NOTE_CHARS = 20_000  # a run's note in the Notes section; the HTML and JSON keep all of it
CHART_SCALE = 0.85  # of the text width: chart text stays at about 7 pt
KIND_COLOURS = {"na": "#6a6a6a", "est": "#7a3d00", "good": "#00603c", "bad": "#a33a00",
                "flag": "#7a3d00", "confirmed": "#00603c", "refuted": "#a33a00",
                "inconclusive": "#444444", "unreliable": "#7a3d00"}  # fmt: skip
# the tint behind a claim's verdict
KIND_FILLS = {"confirmed": "#e2f3e8", "refuted": "#fbe6dc", "inconclusive": "#eeeeee",
              "unreliable": "#fff1d6"}  # fmt: skip


def _register_fonts() -> None:
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_MONO, str(ttf / "DejaVuSansMono.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT,
                                  boldItalic=FONT_BOLD)  # fmt: skip
    from svglib.fonts import register_font

    # the charts' SVG names matplotlib's font; draw it with the same font, embedded
    register_font("DejaVu Sans", rlgFontName=FONT)
    register_font("DejaVu Sans", weight="bold", rlgFontName=FONT_BOLD)


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, spaceAfter=4)
    return {
        "body": base,
        "title": ParagraphStyle("title", base, fontName=FONT_BOLD, fontSize=17, leading=21,
                                spaceAfter=4),
        "h2": ParagraphStyle("h2", base, fontName=FONT_BOLD, fontSize=13, leading=16,
                             spaceBefore=10, spaceAfter=5, textColor="#0b4f7c", keepWithNext=1),
        "h3": ParagraphStyle("h3", base, fontName=FONT_BOLD, fontSize=10, leading=13,
                             spaceBefore=6, spaceAfter=2, keepWithNext=1),
        "meta": ParagraphStyle("meta", base, fontSize=8, leading=10, textColor="#555555"),
        "caption": ParagraphStyle("caption", base, fontSize=7.5, leading=9.5,
                                  textColor="#444444"),
        "tcaption": ParagraphStyle("tcaption", base, fontSize=7.5, leading=9.5,
                                   textColor="#444444", keepWithNext=1),
        "bullet": ParagraphStyle("bullet", base, leftIndent=10, bulletIndent=2, spaceAfter=3),
        "cell": ParagraphStyle("cell", base, fontSize=7, leading=8.6, spaceAfter=0),
        "head": ParagraphStyle("head", base, fontName=FONT_BOLD, fontSize=7, leading=8.6,
                               spaceAfter=0),
        "mono": ParagraphStyle("mono", base, fontName=FONT_MONO, fontSize=6.5, leading=8,
                               spaceAfter=0),
    }  # fmt: skip


def _cell(text: str, kind: str, st: dict[str, Any]) -> Any:
    from reportlab.platypus import Paragraph

    if len(text) > MAX_CELL_CHARS:  # a run's note can be a whole log; the page cannot
        more = len(text) - MAX_CELL_CHARS
        text = f"{text[:MAX_CELL_CHARS]}… ({more:,} more characters in the HTML and JSON reports)"
    body = esc(text)
    if kind in KIND_COLOURS:
        body = f'<font color="{KIND_COLOURS[kind]}">{body}</font>'
    if kind in ("good", "bad", "base", *KIND_FILLS):
        body = f"<b>{body}</b>"
    return Paragraph(body, st["mono" if kind == "mono" else "cell"])


# longer cell text is cut in the PDF (with how much more there is); rows may still split across
# pages, so no cell can be taller than a page
MAX_CELL_CHARS = 1500


def _grid(header: list[str], rows: list[list[Any]], widths: list[float],
          st: dict[str, Any], spans: Sequence[tuple[int, int, int]] = (),
          fills: Sequence[tuple[int, int, str]] = ()) -> Flowable:  # fmt: skip
    """A table; `spans` are (row, first column, last column) of cells spanning columns,
    `fills` (row, column, colour) the tinted cells."""
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph
    from reportlab.platypus import Table as RLTable

    data = [[Paragraph(esc(h), st["head"]) for h in header], *rows]
    t = RLTable(data, colWidths=widths, repeatRows=1, splitInRow=1)
    t.setStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8c8c8")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef3f8")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        *(("SPAN", (c0, r + 1), (c1, r + 1)) for r, c0, c1 in spans),
        *(("BACKGROUND", (c, r + 1), (c, r + 1), colors.HexColor(f)) for r, c, f in fills),
    ])  # fmt: skip
    return t


def _table(t: Table | None, width: float, st: dict[str, Any]) -> list[Flowable]:
    from reportlab.platypus import Paragraph

    if t is None:
        return []
    rel = t.widths or tuple([1.0] * len(t.header))
    widths = [width * w / sum(rel) for w in rel]
    rows: list[list[Any]] = []
    spans: list[tuple[int, int, int]] = []
    fills: list[tuple[int, int, str]] = []
    for i, row in enumerate(t.rows):
        cells: list[Any] = []
        for c in row:
            if c.span > 1:
                spans.append((i, len(cells), len(cells) + c.span - 1))
            if c.kind in KIND_FILLS:
                fills.append((i, len(cells), KIND_FILLS[c.kind]))
            cells += [_cell(c.text, c.kind, st)] + [""] * (c.span - 1)
        rows.append(cells + [""] * (len(t.header) - len(cells)))
    if not rows:
        rows = [[_cell("none", "na", st)] + [""] * (len(t.header) - 1)]
    return [Paragraph(esc(t.title), st["h3"]), Paragraph(esc(t.caption), st["tcaption"]),
            _grid(t.header, rows, widths, st, spans, fills)]  # fmt: skip


def _chart(c: Chart, width: float, st: dict[str, Any]) -> Flowable:
    from reportlab.platypus import KeepTogether, Paragraph
    from svglib.svglib import svg2rlg

    drawing = svg2rlg(io.StringIO(c.svg))
    if drawing is None:
        return Paragraph(esc(f"{c.title}: could not be drawn. {c.caption}"), st["caption"])
    scale = min(width * CHART_SCALE, c.width_in * 72) / drawing.width
    drawing.scale(scale, scale)
    drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
    drawing.hAlign = "LEFT"
    return KeepTogether([drawing, Paragraph(esc(c.caption), st["caption"])])


def _lines(lines: Sequence[str], st: dict[str, Any], bullet: str = "•") -> list[Flowable]:
    from reportlab.platypus import Paragraph

    return [Paragraph(esc(s), st["bullet"], bulletText=bullet) for s in lines]


def _note(text: str, st: dict[str, Any]) -> list[Flowable]:
    """A run's note as paragraphs that may run over several pages (never one too-tall cell)."""
    from reportlab.platypus import Paragraph

    if len(text) > MAX_NOTE_CHARS:
        more = len(text) - MAX_NOTE_CHARS
        text = f"{text[:MAX_NOTE_CHARS]}… ({more:,} more characters in the HTML and JSON reports)"
    return [Paragraph(esc(p).replace("\n", "<br/>"), st["body"])
            for p in text.split("\n\n") if p.strip()]  # fmt: skip


def _tables(
    ts: Sequence[Table | None], width: float, st: dict[str, Any], *, heading: bool = True
) -> list[Flowable]:
    from reportlab.platypus import Paragraph

    out: list[Flowable] = []
    for t in ts:
        out += _table(t, width, st)[0 if heading else 1 :]
        if t is not None:
            out += [Paragraph(esc(n), st["caption"]) for n in t.notes]
    return out


def _claims(model: ReportModel, width: float, st: dict[str, Any]) -> list[Flowable]:
    """The Claims section (nothing when no claim was given)."""
    from reportlab.platypus import Paragraph, Spacer

    t = claims_table(model.sizing)
    if t is None:
        return []
    return [Paragraph("Claims", st["h2"]), *_tables([t], width, st, heading=False),
            Spacer(1, 4), Paragraph(esc(verdict_counts(model.sizing)), st["body"])]  # fmt: skip


def render_pdf(model: ReportModel, charts: ChartSet) -> bytes:
    """The whole report as PDF bytes (A4)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import CondPageBreak, Paragraph, SimpleDocTemplate

    _register_fonts()
    st = _styles()
    buf = io.BytesIO()
    footer = f"{model.title} · {model.generated_at}"

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor("#666666")
        canvas.drawString(15 * mm, 8 * mm, footer[:120])
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=model.title,
        author="wattbench",
        creator=f"wattbench {model.wattbench_version}",
    )
    width = doc.width
    tables = all_tables(model)
    base = model.baseline
    story: list[Flowable] = [
        Paragraph(esc(model.title), st["title"]),
        Paragraph(esc(f"Generated {model.generated_at} by wattbench {model.wattbench_version} · "
                      f"baseline: {base.group.label} · energy view: {model.energy_view} · noise "
                      f"threshold ±{model.noise * 100:g} % · {counted(len(model.runs), 'run')} in "
                      f"{counted(len(model.groups), 'configuration')}"), st["meta"]),
        Paragraph("Verdict board", st["h2"]),
        *_tables([front.board_table(model)], width, st, heading=False),
        *_claims(model, width, st),
        Paragraph("Run quality", st["h2"]),
        Paragraph(esc(front.quality_line(model)), st["body"]),
        *_lines(model.warnings, st, "!"),
        Paragraph("Method", st["h2"]),
        Paragraph(esc(front.method_paragraph(model)), st["body"]),
        Paragraph("Summary", st["h2"]),
    ]  # fmt: skip
    if model.summary:
        story += _lines(model.summary, st)
    else:
        story.append(Paragraph(esc(f"Only one configuration ({base.group.label}): there is "
                                   "nothing to compare it with."), st["body"]))  # fmt: skip
    if plan := plan_table(model.sizing):
        story += [Paragraph("Capacity plan", st["h2"]), *_tables([plan], width, st)]
    story.append(Paragraph("Machines", st["h2"]))
    story += _tables(front.machine_tables(model), width, st)
    story.append(Paragraph("Figures and ratios", st["h2"]))
    story += _tables([tables[k] for k in COMPARISON_TABLES], width, st)
    ratios = front.ratio_tables(model)
    story += _tables(ratios, width, st)
    if note := front.unreliable_note(ratios):
        story.append(Paragraph(esc(note), st["caption"]))
    story += _tables([tables["cost"]], width, st)
    story.append(Paragraph("Charts", st["h2"]))
    story += [_chart(c, width, st) for c in charts.charts]
    if charts.skipped:
        story.append(Paragraph(esc("Not drawn: " + "; ".join(f"{t} ({why})"
                                                              for t, why in charts.skipped)
                                   + "."), st["caption"]))  # fmt: skip
    # the appendix starts on a new page unless the charts left most of one free
    story += [CondPageBreak(doc.height * 0.6), Paragraph("Appendix: runs, notes, method", st["h2"])]
    story += _tables([tables["runs"]], width, st)
    noted = [e for e in model.runs if e.run.notes.strip()]
    if noted:
        story.append(Paragraph("Notes", st["h3"]))
        for e in noted:
            story.append(
                Paragraph(
                    f"<b>{esc(e.run.id[:8])}</b> {esc(e.group_label or e.run.spec.label())}",
                    st["body"],
                )
            )
            story += _note(e.run.notes, st)
    story += _tables([tables[k] for k in APPENDIX_TABLES[1:]], width, st)
    story.append(Paragraph("Method in full", st["h3"]))
    for heading, text in front.method_notes(model):
        story.append(Paragraph(f"<b>{esc(heading)}.</b> {esc(text)}", st["body"]))
    story += [
        Paragraph("Raw data", st["h3"]),
        Paragraph("Every figure and flag of every run, in stored units (ns, J, "
                  f"{rate_unit(model.metrics)}), and each "
                  "run's raw system description are in the CSV and JSON exports of this report "
                  "(wattbench report … -o FILE.csv or FILE.json).", st["body"]),
    ]  # fmt: skip
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()
