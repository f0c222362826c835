"""Comparison reports: HTML, PDF, CSV and JSON, all rendered from one ReportModel.

`write_report` picks the format from the file suffix. Heavy imports (matplotlib, reportlab)
happen inside the renderers, so importing this package costs nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wattbench.domain.errors import BadInputError, WattbenchError

if TYPE_CHECKING:
    from wattbench.domain.cost import CostProfile
    from wattbench.domain.result import RunResult
    from wattbench.reports.sizing import Sizing

log = logging.getLogger(__name__)

REPORT_SUFFIXES = (".html", ".pdf", ".csv", ".json")
DEFAULT_NOISE = 0.01


def write_report(
    runs: Sequence[RunResult],
    path: str | Path,
    *,
    baseline_id: str | None = None,
    energy_view: str = "device",
    noise: float | None = None,
    cost_profiles: Mapping[str, CostProfile] | None = None,
    sizing: Sizing | None = None,
) -> Path:
    """Compare the runs and write the report to `path` (.html, .pdf, .csv or .json), with the
    checked claims and the capacity plan of `sizing` when given (not in a CSV: one row per run).

    The file appears whole or not at all (written beside it, then renamed).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise BadInputError(
            f"Cannot write a report to {out.name!r}: the file name must end in "
            f"{', '.join(REPORT_SUFFIXES)}."
        )
    if sizing and suffix == ".csv":
        raise BadInputError(
            "A CSV report has one row per run: claims and the capacity plan go in an .html, "
            ".pdf or .json report."
        )
    if not out.parent.is_dir():
        raise BadInputError(f"The folder {str(out.parent)!r} does not exist: create it first.")
    from wattbench.reports.model import build_report

    model = build_report(
        runs,
        baseline_id=baseline_id,
        energy_view=energy_view,
        noise=DEFAULT_NOISE if noise is None else noise,
        cost_profiles=cost_profiles,
        sizing=sizing,
    )
    data: bytes
    if suffix == ".csv":
        from wattbench.reports.data import csv_text

        data = csv_text(model).encode("utf-8")
    elif suffix == ".json":
        from wattbench.reports.data import json_text

        data = json_text(model).encode("utf-8")
    else:
        from wattbench.reports.figures import build_charts

        if suffix == ".html":
            from wattbench.reports.html import render_html

            data = render_html(model, build_charts(model, png_dpi=0)).encode("utf-8")
        else:
            from wattbench.reports.pdf import render_pdf

            data = render_pdf(model, build_charts(model, png_dpi=0))  # vector: the SVG
    _atomic_write(out, data)
    log.info("wrote %s report of %d runs to %s", suffix[1:], len(runs), out)
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise WattbenchError(
            f"Cannot write the report to {str(path)!r}: {exc.strerror or exc}. "
            "Check the folder's permissions and free space."
        ) from exc


__all__ = ["REPORT_SUFFIXES", "write_report"]
