"""The HTML report: one self-contained file, readable offline, without any script.

Charts are inline SVG, raw data is embedded (a <pre> and data: download links), and a Content
Security Policy forbids scripts and every network fetch. Every user string goes through `esc`.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from string import Template

from wattbench.reports.charts import Chart
from wattbench.reports.data import csv_text, json_text
from wattbench.reports.figures import ChartSet
from wattbench.reports.front import (
    board_table,
    machine_tables,
    method_notes,
    method_paragraph,
    quality_line,
    ratio_tables,
    unreliable_note,
)
from wattbench.reports.model import ReportModel
from wattbench.reports.sizing_tables import claims_table, plan_table, verdict_counts
from wattbench.reports.tables import APPENDIX_TABLES, COMPARISON_TABLES, Table, TCell, all_tables
from wattbench.reports.textfmt import counted, esc
from wattbench.reports.training import rate_unit

log = logging.getLogger(__name__)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1b1b1b;margin:0 auto;max-width:1180px;padding:24px 28px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid
#0072B2;padding-bottom:3px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555;font-size:12.5px}.summary li{margin:4px 0}
.warn{background:#fff6e5;border-left:4px solid #E69F00;padding:8px 12px;margin:12px 0}
.warn li{margin:2px 0}
table{border-collapse:collapse;margin:6px 0 4px;font-size:12.5px;width:100%}
th,td{border:1px solid #d0d0d0;padding:3px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}th{background:#f0f4f8}
td.na{color:#6a6a6a;font-style:italic}td.est{background:#f3f3f3;color:#7a3d00}
td.good{color:#00603c;font-weight:600}td.bad{color:#a33a00;font-weight:600}
td.base{font-weight:600}td.flag{color:#7a3d00}td.mono{font-family:monospace}
td.confirmed,td.refuted,td.inconclusive,td.unreliable{font-weight:700}
td.confirmed{background:#e2f3e8;color:#00603c}td.refuted{background:#fbe6dc;color:#a33a00}
td.inconclusive{background:#eeeeee;color:#444}td.unreliable{background:#fff1d6;color:#7a3d00}
.caption{color:#555;font-size:12px;margin:0 0 10px}
figure{margin:14px 0 22px;page-break-inside:avoid}figure svg{width:100%;max-width:900px;height:auto;
display:block}figcaption{color:#444;font-size:12px;margin-top:4px}
nav ol{columns:2;font-size:13px}pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;
font-size:11px;max-height:360px;overflow:auto;white-space:pre}
.quality li{margin:3px 0}p.note{white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px;
margin:0 0 10px}h4{font-size:14px;margin:12px 0 4px}
h1,h3{overflow-wrap:anywhere}table{table-layout:fixed}
@media print{nav{display:none}}
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="wattbench $version">
<title>$title</title>
<style>$style</style>
</head>
<body>
$body
</body>
</html>
""")

SECTIONS = (
    ("glance", "At a glance"),
    ("summary", "Summary"),
    ("machines", "Machines"),
    ("tables", "Figures and ratios"),
    ("charts", "Charts"),
    ("appendix", "Appendix: runs, notes, method"),
    ("raw", "Raw data"),
)


def _td(c: TCell) -> str:
    attrs = (f' class="{esc(c.kind)}"' if c.kind else "") + (
        f' colspan="{c.span}"' if c.span > 1 else "")  # fmt: skip
    return f"<td{attrs}>{esc(c.text)}</td>"


def table_html(t: Table | None) -> str:
    if t is None:
        return ""
    head = "".join(f"<th>{esc(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in t.rows)
    if not t.rows:
        body = f'<tr><td class="na" colspan="{len(t.header)}">none</td></tr>'
    cols = ""
    if t.widths:
        total = sum(t.widths)
        cols = "<colgroup>" + "".join(f'<col style="width:{w / total * 100:.1f}%">'
                                      for w in t.widths) + "</colgroup>"  # fmt: skip
    heading = f'<h3 id="t-{esc(t.key)}">{esc(t.title)}</h3>'
    caption = f'<p class="caption">{esc(t.caption)}</p>' if t.caption else ""
    table = f"<table>{cols}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    notes = "".join(f'<p class="caption">{esc(n)}</p>' for n in t.notes)
    return heading + caption + table + notes


def chart_html(c: Chart) -> str:
    return (f'<figure id="c-{esc(c.key)}" role="img" aria-label="{esc(c.title)}">{c.svg}'
            f"<figcaption>{esc(c.caption)}</figcaption></figure>")  # fmt: skip


def _list(items: Sequence[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<ul{attr}>" + "".join(f"<li>{esc(s)}</li>" for s in items) + "</ul>"


def _data_link(text: str, mime: str, filename: str, label: str) -> str:
    b64 = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f'<a download="{esc(filename)}" href="data:{mime};base64,{b64}">{esc(label)}</a>'


def render_html(model: ReportModel, charts: ChartSet) -> str:
    """The whole report as one HTML document: the answer first, raw data last."""
    tables = all_tables(model)
    base = model.baseline
    claims, plan = claims_table(model.sizing), plan_table(model.sizing)
    sections = [*SECTIONS[:2], *([("capacity", "Capacity plan")] if plan else []), *SECTIONS[2:]]
    if claims:
        sections.insert(1, ("t-claims", "Claims"))
    out: list[str] = [
        f"<header><h1>{esc(model.title)}</h1><p class='meta'>Generated {esc(model.generated_at)}"
        f" by wattbench {esc(model.wattbench_version)} · baseline: <b>{esc(base.group.label)}</b>"
        f" · energy view: <b>{esc(model.energy_view)}</b> · noise threshold "
        f"±{model.noise * 100:g} % · {counted(len(model.runs), 'run')} in "
        f"{counted(len(model.groups), 'configuration')}</p></header>",
        "<nav><b>Contents</b><ol>" + "".join(f'<li><a href="#{k}">{esc(t)}</a></li>'
                                             for k, t in sections) + "</ol></nav>",
        '<section id="glance"><h2>At a glance</h2>',
        table_html(board_table(model)),
        table_html(claims),
        f'<p class="caption">{esc(verdict_counts(model.sizing))}</p>' if claims else "",
        f'<h3 id="quality">Run quality</h3><p>{esc(quality_line(model))}</p>',
        ('<div class="warn"><b>Read with care</b>' + _list(model.warnings) + "</div>"
         if model.warnings else ""),
        f'<h3 id="method-short">Method</h3><p>{esc(method_paragraph(model))}</p>',
        "</section>",
        '<section id="summary"><h2>Summary</h2>',
    ]  # fmt: skip
    if model.summary:
        out.append(_list(model.summary, "summary"))
    else:
        out.append(f"<p>Only one configuration ({esc(base.group.label)}): there is nothing to "
                   "compare it with; its figures are below.</p>")  # fmt: skip
    out.append("</section>")
    if plan:
        out += ['<section id="capacity"><h2>Capacity plan</h2>', table_html(plan), "</section>"]
    out.append('<section id="machines"><h2>Machines</h2>')
    out += [table_html(t) for t in machine_tables(model)]
    out.append("</section>")
    out.append('<section id="tables"><h2>Figures and ratios</h2>')
    out += [table_html(tables[k]) for k in COMPARISON_TABLES]
    ratios = ratio_tables(model)
    out += [table_html(t) for t in ratios]
    if note := unreliable_note(ratios):
        out.append(f'<p class="caption">{esc(note)}</p>')
    out.append(table_html(tables["cost"]))
    out.append("</section>")
    out.append('<section id="charts"><h2>Charts</h2>')
    out += [chart_html(c) for c in charts.charts]
    if charts.skipped:
        out.append("<p class='caption'>Not drawn: " + "; ".join(
            f"{esc(t)} ({esc(why)})" for t, why in charts.skipped) + ".</p>")  # fmt: skip
    out.append("</section>")
    out.append('<section id="appendix"><h2>Appendix: runs, notes, method</h2>')
    out.append(table_html(tables["runs"]))
    noted = [e for e in model.runs if e.run.notes.strip()]
    if noted:
        out.append('<h3 id="notes">Notes</h3>')
        out += [f'<p><b>{esc(e.run.id[:8])}</b> {esc(e.group_label or e.run.spec.label())}</p>'
                f'<p class="note">{esc(e.run.notes)}</p>' for e in noted]  # fmt: skip
    out += [table_html(tables[k]) for k in APPENDIX_TABLES[1:]]
    out.append('<h3 id="method">Method in full</h3>')
    for heading, text in method_notes(model):
        out.append(f"<h4>{esc(heading)}</h4><p>{esc(text)}</p>")
    out.append("</section>")
    out.append(
        '<section id="raw"><h2>Raw data</h2><p>Download: '
        + _data_link(csv_text(model), "text/csv", "wattbench-runs.csv", "runs as CSV")
        + " · "
        + _data_link(json_text(model), "application/json", "wattbench-report.json",
                     "full report as JSON (format wattbench.report, version 1)")
        + ". One row per run with every figure and flag, in stored units (ns, J, "
        f"{rate_unit(model.metrics)}); an "
        "empty cell is unknown, with its reason in the matching _na_reason column. The JSON "
        "has every run's raw system description too.</p></section>"
    )  # fmt: skip
    return PAGE.substitute(csp=CSP, version=esc(model.wattbench_version),
                           title=esc(model.title), style=STYLE, body="\n".join(out))  # fmt: skip
