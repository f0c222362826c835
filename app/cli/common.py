"""What every CLI command shares: the run store from --db, rich tables, JSON, error text.

Messages from the layers below speak no command line: an error names the input it is about
(``WattbenchError.field``), and ``error_text`` puts the flag that sets it in front, so
"The longest measurement (T_max, seconds) must be a positive number" reads
"--t-max: The longest measurement ...".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from wattbench.domain import units
from wattbench.domain.errors import WattbenchError
from wattbench.service.workbench import Workbench

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_RUN_FAILED, EXIT_CANCELLED = 0, 1, 2, 3, 4
EXIT_NOT_STORED = 5  # a measured run could not be stored (it is kept aside in the spool)
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports SIGPIPE: the output's reader went away
WIDE = 220  # columns of a table printed to a file or a pipe

# the flag that sets each input named by WattbenchError.field
FLAGS = {
    "model": "--model",
    "device": "--device",
    "runtime": "--runtime",
    "precision": "--precision",
    "batch_size": "--batch",
    "threads": "--threads",
    "instances": "--instances",
    "scenario": "--scenario",
    "preset": "--preset",
    "epsilon": "--epsilon",
    "t_max_s": "--t-max",
    "time_limit_s": "--time-limit",
    "dims": "--dim",
    "input_shapes": "--input-shape",
    "prompt_tokens": "--prompt-tokens",
    "new_tokens": "--new-tokens",
    "grad_accum": "--grad-accum",
    "activation_checkpointing": "--activation-checkpointing",
    "find_micro_batch": "--find-micro-batch",
    "data_parallel": "--data-parallel",
    "host": "--name",
    "on": "--on",
    "scheduler": "--scheduler",
    "tls": "--tls-ca/--tls-cert/--tls-key",
    "target_rate": "--rate",
    "streams": "--streams",
    "slo_ms": "--slo",
    "slo_percentile": "--slo",
    "ort_provider": "--provider",
    "ort_graph_optimization": "--graph-opt",
    "repeat": "--repeat",
    "sample_hz": "--sample-hz",
    "tags": "--tag",
    "energy_view": "--energy",
    "noise": "--noise",
    "db": "--db",
    "purchase_price_usd": "--purchase-price",
    "amortization_years": "--years",
    "utilization": "--utilization",
    "electricity_usd_per_kwh": "--electricity",
    "pue": "--pue",
    "carbon_g_per_kwh": "--carbon",
    "cloud_usd_per_hour": "--cloud-hourly",
    "budget": "--budget",
    "rack_power": "--rack-power",
    "rack_slots": "--rack-slots",
    "years": "--years",
    "server": "--server",
    "a": "--a",
    "b": "--b",
    "metric": "--metric",
    "claim": "--claim",
}
HINTS = {"run_id": "`wattbench runs` lists the stored runs"}


def error_text(exc: WattbenchError) -> str:
    """The message as the command line shows it: the flag in front, a hint behind."""
    text = str(exc)
    flag = FLAGS.get(exc.field or "")
    if flag:
        text = f"{flag}: {text}"
    hint = HINTS.get(exc.field or "")
    if hint:
        text = f"{text} ({hint})"
    return text


def print_error(exc: WattbenchError) -> None:
    print(f"wattbench: error: {error_text(exc)}", file=sys.stderr)


def console(*, stderr: bool = False) -> Console:
    """A rich console; wide and plain when the output is a file or a pipe."""
    out = Console(stderr=stderr, soft_wrap=False, highlight=False)
    if not out.is_terminal:
        out = Console(stderr=stderr, soft_wrap=False, highlight=False, width=WIDE)
    return out


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    lines: bool = False,
    droppable: Sequence[str] = (),
) -> None:
    """Every CLI table: rich, folded rather than cut, user text never read as markup; a simple
    box (a rule under the header, no frame) reads the same in a terminal, a file or a pipe.

    On a console too narrow for the whole table, the columns close up to one space apart, then
    the ``droppable`` columns are left out one by one, in that order, until it fits; a line
    under the table names the ones left out. What still does not fit is folded."""
    out = console()
    keep = list(range(len(headers)))
    dropped: list[str] = []
    unbounded = out.options.update_width(10_000)  # the width the table asks for, uncapped
    table = _table(headers, rows, keep, title, lines, tight=False)
    if out.measure(table, options=unbounded).maximum > out.width:
        table = _table(headers, rows, keep, title, lines, tight=True)
        for name in droppable:
            if out.measure(table, options=unbounded).maximum <= out.width:
                break
            keep.remove(headers.index(name))
            dropped.append(name)
            table = _table(headers, rows, keep, title, lines, tight=True)
    out.print(table)
    if dropped:
        print_lines(
            [f"(left out to fit {out.width} columns: {', '.join(dropped)}; --json has all)"]
        )


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    keep: Sequence[int],
    title: str | None,
    lines: bool,
    *,
    tight: bool,
) -> Table:
    table = Table(
        title=title,
        show_lines=lines,
        box=box.SIMPLE,
        show_edge=False,
        title_justify="left",
        padding=0 if tight else (0, 1),
    )
    for i in keep:
        table.add_column(headers[i], overflow="fold")
    for row in rows:
        table.add_row(*(_plain(row[i]) for i in keep))
    return table


def _plain(text: str) -> Any:
    from rich.text import Text

    return Text(units.printable(text))


def print_lines(lines: Sequence[str]) -> None:
    """Free text (notes, sentences) as it is: no markup, no highlighting."""
    out = console()
    for line in lines:
        out.print(units.printable(line), markup=False, highlight=False)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, allow_nan=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


@contextmanager
def workbench(args: argparse.Namespace) -> Iterator[Workbench]:
    """The run store of --db / $WATTBENCH_DB / the default file, closed afterwards."""
    wb = Workbench.open(getattr(args, "db", None))
    try:
        yield wb
    finally:
        wb.close()


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Footnotes:
    """Reasons printed once below the tables of a command: a cell or a note carries the
    reason's mark (‡1, ‡2 …) instead of repeating it for every run or row."""

    MARK = "‡"

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._said = 0  # reasons already printed by ``take``

    def mark(self, reason: str) -> str:
        n = self._numbers.setdefault(reason, len(self._numbers) + 1)
        return f"{self.MARK}{n}"

    def lines(self) -> list[str]:
        return [f"{self.MARK}{n} {reason}" for reason, n in self._numbers.items()]

    def take(self) -> list[str]:
        """The lines of the reasons marked since the last ``take`` (a table printed later
        reuses the marks already explained above it)."""
        new = self.lines()[self._said :]
        self._said = len(self._numbers)
        return new
