"""``wattbench run``: measure a model on a device (sweeps expand into runs done one by one).

Progress goes to stderr (a rich progress bar), the result table or ``--json`` (docs/cli-json.md)
to stdout. Exit codes: 0 every run done, 2 bad input (nothing ran, or a worker found the input
unusable), 3 a run failed, 4 cancelled (Ctrl-C: the first one cancels cleanly, a second one
interrupts at once).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from wattbench import __version__
from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.domain.events import CancelToken, Phase, ProgressEvent
from wattbench.domain.result import EnergyFigure, RunResult, RunStatus
from wattbench.domain.spec import PRESETS, RUNTIMES, RunSpec, Scenario, expand_sweep

log = logging.getLogger(__name__)

EXIT_OK, EXIT_BAD_INPUT, EXIT_RUN_FAILED, EXIT_CANCELLED = 0, 2, 3, 4
JSON_FORMAT = "wattbench.run-output"
JSON_FORMAT_VERSION = 1
MAX_SAMPLE_HZ = 1000.0  # sysfs and NVML update at most every ~1 ms; faster only costs CPU


# -- arguments ----------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="measure a model on a device (latency, throughput, energy)",
        description="Measure a model on one or more devices. Comma-separated lists in --device, "
        "--runtime, --batch, --precision and --threads expand into a sweep of runs, executed "
        "one by one, each in its own worker process.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="M",
        help="catalog ref (builtin:mlp-small, onnx-zoo:NAME) or a model file",
    )
    p.add_argument("--device", default="cpu", metavar="D[,D...]", help="cpu, cuda:0, mps ...")
    p.add_argument(
        "--runtime",
        default="torch",
        metavar="R[,R...]",
        help=f"{' or '.join(RUNTIMES)} (default torch)",
    )
    p.add_argument("--batch", default=None, metavar="N[,N...]", help="batch sizes, e.g. 1,8,32")
    p.add_argument("--precision", default="fp32", metavar="P[,P...]", help="fp32, fp16, bf16")
    p.add_argument(
        "--threads",
        default=None,
        metavar="N[,N...]",
        help="intra-op threads (default: the runtime's own choice)",
    )
    p.add_argument(
        "--scenario", default=Scenario.SINGLE_STREAM.value, choices=[s.value for s in Scenario]
    )
    p.add_argument("--preset", default="default", choices=list(PRESETS))
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="target relative half-width of the mean's 95 %% CI (overrides the preset)",
    )
    p.add_argument(
        "--t-max",
        type=float,
        default=None,
        dest="t_max",
        metavar="S",
        help="longest measurement in seconds (overrides the preset)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        dest="time_limit",
        metavar="S",
        help="wall-clock limit of each worker in seconds (default: derived)",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="size of a dynamic dimension, e.g. --dim seq_len=128 (repeatable)",
    )
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        dest="input_shape",
        metavar="NAME=SHAPE",
        help="explicit input shape, e.g. x=1x3x224x224:float32",
    )
    p.add_argument(
        "--new-tokens",
        type=int,
        default=16,
        dest="new_tokens",
        help="generation: fixed number of new tokens (default 16)",
    )
    p.add_argument(
        "--prompt-tokens",
        type=int,
        default=32,
        dest="prompt_tokens",
        help="generation: prompt length (default 32)",
    )
    p.add_argument("--provider", default=None, help="onnxruntime execution provider")
    p.add_argument(
        "--graph-opt",
        default="all",
        dest="graph_opt",
        choices=["disable", "basic", "extended", "all"],
        help="onnxruntime graph optimization level",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="independent runs per configuration (default 1)",
    )
    p.add_argument(
        "--sample-hz",
        type=float,
        default=10.0,
        dest="sample_hz",
        metavar="HZ",
        help="power sampling rate during the run (default 10)",
    )
    p.add_argument(
        "--no-idle", action="store_true", dest="no_idle", help="skip the idle power baseline"
    )
    p.add_argument(
        "--no-memory", action="store_true", dest="no_memory", help="skip the separate memory pass"
    )
    p.add_argument(
        "--no-store",
        action="store_true",
        dest="no_store",
        help="do not save the runs in the run store",
    )
    p.add_argument("--tag", action="append", default=[], help="tag the runs (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON (docs/cli-json.md) on stdout")
    p.set_defaults(func=run_command)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _ints(text: str | None, what: str) -> list[int]:
    try:
        return [int(t) for t in _split(text)]
    except ValueError:
        raise BadInputError(
            f"{what} must be whole numbers separated by commas (got {text!r})."
        ) from None


def _pairs(items: Sequence[str], what: str, example: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BadInputError(f"{what} {item!r} must look like {example}.")
        out.append((name.strip(), value.strip()))
    return out


def build_specs(args: argparse.Namespace) -> list[RunSpec]:
    """The runs a command line asks for (BadInputError when an argument cannot work)."""
    dims = []
    for name, value in _pairs(args.dim, "--dim", "NAME=SIZE, e.g. seq_len=128"):
        try:
            dims.append((name, int(value)))
        except ValueError:
            raise BadInputError(f"--dim {name}={value}: the size must be a whole number.") from None
    shapes = _pairs(args.input_shape, "--input-shape", "NAME=1x3x224x224:float32")
    batches = _ints(args.batch, "--batch")
    threads: list[int | None] = list(_ints(args.threads, "--threads")) or [None]
    scenario = Scenario(args.scenario)
    if not batches:
        batches = [1]
    base = RunSpec(
        model=args.model,
        device=(_split(args.device) or ["cpu"])[0],
        runtime=(_split(args.runtime) or ["torch"])[0],
        precision=(_split(args.precision) or ["fp32"])[0],
        batch_size=batches[0],
        scenario=scenario,
        preset=args.preset,
        epsilon=args.epsilon,
        t_max_s=args.t_max,
        time_limit_s=args.time_limit,
        dims=tuple(sorted(dims)),
        input_shapes=tuple(sorted(shapes)),
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        ort_provider=args.provider,
        ort_graph_optimization=args.graph_opt,
        sample_hz=args.sample_hz,
        idle_baseline=not args.no_idle,
        memory_pass=not args.no_memory,
        tags=tuple(args.tag),
    )
    if args.t_max is not None and args.t_max <= 0:
        raise BadInputError(f"--t-max must be positive (got {args.t_max}).")
    if "onnxruntime" not in (_split(args.runtime) or ["torch"]):
        ort_only = [
            f"--{name} {value}"
            for name, value in (("provider", args.provider), ("graph-opt", args.graph_opt))
            if value is not None and not (name == "graph-opt" and value == "all")
        ]
        if ort_only:
            raise BadInputError(
                f"{' and '.join(ort_only)}: {'these apply' if len(ort_only) > 1 else 'it applies'}"
                " to onnxruntime only; add --runtime onnxruntime or leave it out."
            )
    if not 0 < args.sample_hz <= MAX_SAMPLE_HZ:
        raise BadInputError(
            f"--sample-hz must be above 0 and at most {MAX_SAMPLE_HZ:g} (got {args.sample_hz:g})."
        )
    if args.time_limit is not None and args.time_limit <= 0:
        raise BadInputError(f"--time-limit must be positive (got {args.time_limit}).")
    specs = expand_sweep(
        base,
        devices=_split(args.device) or None,
        runtimes=_split(args.runtime) or None,
        batch_sizes=batches,
        threads=threads,
        precisions=_split(args.precision) or None,
        repeats=args.repeat,
    )
    if len(specs) > 1:
        sweep_id = uuid.uuid4().hex
        specs = [s.with_(sweep_id=sweep_id) for s in specs]
    return specs


# -- the store hook -----------------------------------------------------------------------


def open_run_store(db_url: str | None) -> Any:
    """The run store (wattbench.db.store.open_store), or None with a warning if unavailable.

    Module level so that tests and embedders can replace it.
    """
    try:
        from wattbench.db.store import open_store
    except ImportError as exc:
        print(f"wattbench: warning: runs are not saved (no run store: {exc})", file=sys.stderr)
        return None
    try:
        return open_store(db_url)
    except Exception as exc:  # StoreError or a driver error: measure anyway
        print(f"wattbench: warning: runs are not saved ({exc})", file=sys.stderr)
        return None


class _StoreHooks:
    """on_start/on_result for run_many; a failing store warns once and is then left alone."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.saved = 0
        self.warning: str | None = None

    def _fail(self, exc: Exception) -> None:
        if self.warning is None:
            self.warning = f"runs are not saved ({exc})"
            print(f"wattbench: warning: {self.warning}", file=sys.stderr)
        self.store = None

    def on_start(self, spec: RunSpec, run_id: str) -> None:
        if self.store is None:
            return
        try:
            self.store.begin_run(RunResult(spec=spec, status=RunStatus.RUNNING, id=run_id))
        except Exception as exc:
            self._fail(exc)

    def on_result(self, result: RunResult) -> None:
        if self.store is None:
            return
        try:
            self.store.finish_run(result)
            self.saved += 1
        except Exception as exc:
            self._fail(exc)


# -- progress -----------------------------------------------------------------------------


class _ProgressView:
    """A rich progress bar on stderr: one line per run, updated from progress events."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[int, Any] = {}

    def __enter__(self) -> _ProgressView:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if self._progress is None:
            return
        i = event.run_index
        if i not in self._tasks:
            self._tasks[i] = self._progress.add_task(
                f"[{i + 1}/{event.run_count}]", total=1.0, status=""
            )
        status = event.phase
        if event.phase == Phase.MEASURING and event.rho is not None:
            status += f" n={event.n} ρ={event.rho:.2%}"
            if event.epsilon:
                status += f"→{event.epsilon:.1%}"
        elif event.message and event.phase not in (Phase.DONE,):
            status += f": {event.message}"
        completed = event.fraction if event.phase == Phase.MEASURING else None
        if event.phase in (Phase.DONE, Phase.FAILED, Phase.CANCELLED):
            completed = 1.0
        kw: dict[str, Any] = {"status": status[:60]}
        if completed is not None:
            kw["completed"] = completed
        self._progress.update(self._tasks[i], **kw)


@contextmanager
def _sigint_cancels(token: CancelToken) -> Iterator[None]:
    """First Ctrl-C cancels the runs cleanly; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if token.cancelled:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        print("\nwattbench: cancelling (Ctrl-C again to interrupt)", file=sys.stderr)
        token.cancel()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# -- output -------------------------------------------------------------------------------


def fmt_ns(ns: float | None) -> str:
    if ns is None or not math.isfinite(ns):
        return "n/a"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def _interval(value: float, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return f"{fmt_ns(value)} [no interval]"
    return f"{fmt_ns(value)} [{fmt_ns(lo)}–{fmt_ns(hi)}]"


def device_energy_figure(r: RunResult) -> EnergyFigure | None:
    """The run device's own figure: the sampler's aggregate "device" figure, else the sum of
    the domains belonging to the device (ENERGY.md "Per run" 4)."""
    for f in r.energy:
        if f.domain == "device":
            return f
    dev = "cpu" if r.spec.device.startswith("cpu") else r.spec.device
    figs = [f for f in r.energy if f.device == dev and f.domain not in ("system",)]
    if not figs:
        return None
    if len(figs) == 1:
        return figs[0]
    energy_j = sum(f.energy_j for f in figs)
    duration_s = figs[0].duration_s
    items = figs[0].items
    return EnergyFigure(
        domain="device",
        device=dev,
        source="+".join(f.source for f in figs),
        scope="device",
        method=figs[0].method,
        energy_j=energy_j,
        duration_s=duration_s,
        avg_power_w=energy_j / duration_s if duration_s > 0 else math.nan,
        items=items,
        energy_per_item_j=energy_j / items if items else math.nan,
        items_per_j=items / energy_j if energy_j > 0 else math.nan,
        flags=tuple(sorted({fl for f in figs for fl in f.flags})),
    )


def _energy_text(r: RunResult) -> str:
    f = device_energy_figure(r)
    if f is None:
        return f"n/a: {r.energy_na_reason or 'no power sensor for this device'}"
    text = f"{f.energy_per_item_j * 1e3:.3g} mJ/item, {f.avg_power_w:.3g} W [{f.source}]"
    if f.is_estimate:
        text += " (estimate: TDP × load model, not a measurement)"
        if r.energy_na_reason:
            text = f"measured n/a: {r.energy_na_reason}; {text}"
    other = [fl for fl in f.flags if fl != "estimate"]
    if other:
        text += f" flags: {', '.join(other)}"
    return text


def energy_summary(r: RunResult) -> dict[str, Any]:
    """The device energy figure shown in the table, for JSON readers too."""
    return {"text": _energy_text(r), "na_reason": r.energy_na_reason}


def _print_table(results: Sequence[RunResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=220)
    models = {r.spec.model for r in results}
    title = f"wattbench run: {next(iter(models))}" if len(models) == 1 else "wattbench run"
    table = Table(title=title, show_lines=len(results) > 1)
    for col in (
        "run",
        "status",
        "throughput /s",
        "mean",
        "p50",
        "p90",
        "p99",
        "ρ",
        "conv.",
        "flags",
    ):
        table.add_column(col, overflow="fold")
    notes: list[str] = []
    not_headline = False
    for i, r in enumerate(results, 1):
        label = r.spec.label()
        if len(models) == 1:
            label = label.removeprefix(r.spec.model + " · ")
        cells = [f"{i}. {label}", r.status.value]
        if r.ok and r.latency is not None:
            lat = r.latency
            thr = r.throughput_items_per_s
            thr_text = "n/a"
            if thr is not None:
                rel = thr.rel_half_width
                thr_text = f"{thr.value:,.1f}" + (f" ±{rel:.1%}" if rel is not None else "")
            pcts = []
            for p in (0.5, 0.9, 0.99):
                pe = lat.percentile(p)
                if pe is None:
                    pcts.append("n/a")
                    continue
                mark = "" if pe.headline else " †"
                not_headline |= not pe.headline
                pcts.append(_interval(pe.value_ns, pe.lo_ns, pe.hi_ns) + mark)
            cells += [
                thr_text,
                _interval(lat.mean_ns, lat.mean_lo_ns, lat.mean_hi_ns),
                *pcts,
                f"{lat.rho:.2%}" if math.isfinite(lat.rho) else "n/a",
                "yes" if r.converged else "no",
                ", ".join(r.flags) or "-",
            ]
            notes.append(f"{i}. energy: {_energy_text(r)}")
            if r.generation is not None:
                g = r.generation
                notes.append(
                    f"{i}. generation ({g.new_tokens} new tokens): TTFT "
                    f"{_interval(g.ttft_ns.value, g.ttft_ns.lo, g.ttft_ns.hi)}, TPOT "
                    f"{_interval(g.tpot_ns.value, g.tpot_ns.lo, g.tpot_ns.hi)}, decode "
                    f"{g.decode_tokens_per_s.value:,.1f} tokens/s"
                )
            eta = r.phases.harness_efficiency
            notes.append(
                f"{i}. phases: worker start {_s(r.phases.worker_start_s)}, load "
                f"{_s(r.phases.cold_load_s)}, warm-up {_s(r.phases.warmup_s)}, measuring "
                f"{_s(r.phases.measure_s)}, total {_s(r.phases.total_s)}"
                + (f"; harness efficiency η = {eta:.3f}" if eta is not None else "")
            )
            if r.notes:
                notes.append(f"{i}. {r.notes}")
        else:
            cells += ["-"] * 8
            notes.append(f"{i}. {r.status.value}: {r.reason}")
        table.add_row(*cells)
    console.print(table)
    if not_headline:
        notes.append(
            "† too few effective samples for a headline number (METHOD.md: p90 needs "
            "n_eff ≥ 64, p99 ≥ 662); shown with its interval"
        )
    for line in notes:
        console.print(line, highlight=False, markup=False)


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def exit_code_for(results: Sequence[RunResult], cancelled: bool) -> int:
    """4 cancelled, 3 a run failed, 2 a run failed on bad input only, 0 all done."""
    if cancelled or any(r.status is RunStatus.CANCELLED for r in results):
        return EXIT_CANCELLED
    failed = [r for r in results if r.status is not RunStatus.DONE]
    if any(r.error_kind != "bad_input" for r in failed):
        return EXIT_RUN_FAILED
    return EXIT_BAD_INPUT if failed else EXIT_OK


def json_document(
    results: Sequence[RunResult],
    exit_code: int,
    *,
    error: WattbenchError | None = None,
    store: dict[str, Any] | None = None,
) -> dict[str, Any]:
    runs = []
    for r in results:
        d = r.to_dict(include_arrays=False)
        d["energy_summary"] = energy_summary(r)
        runs.append(d)
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "wattbench_version": __version__,
        "exit_code": exit_code,
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "message": str(error),
            "exit_code": error.exit_code,
        },
        "store": store or {"saved": 0, "warning": None},
        "runs": runs,
    }


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


# -- the command --------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    from wattbench.engine import runner

    try:
        specs = build_specs(args)
        runner.validate_many(specs)
    except BadInputError as exc:
        if args.json:
            _print_json(json_document([], exc.exit_code, error=exc))
        print(f"wattbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    store = None if args.no_store else open_run_store(getattr(args, "db", None))
    hooks = _StoreHooks(store)
    token = CancelToken()
    show_progress = not args.json or sys.stderr.isatty()
    try:
        with _sigint_cancels(token), _ProgressView(show_progress) as view:
            results = runner.run_many(
                specs,
                progress=view,
                cancel=token,
                on_result=hooks.on_result,
                on_start=hooks.on_start,
            )
    finally:
        if store is not None:
            close = getattr(store, "close", None)
            if callable(close):
                close()
    code = exit_code_for(results, token.cancelled)
    if args.json:
        warning = hooks.warning
        if store is None:
            warning = "not saved: --no-store" if args.no_store else "not saved: no run store"
        store_info = {"saved": hooks.saved, "warning": warning}
        _print_json(json_document(results, code, store=store_info))
    else:
        _print_table(results)
        if hooks.saved:
            where = store.describe() if store is not None and hasattr(store, "describe") else ""
            ids = " ".join(r.id[:8] for r in results if r.id)
            print(f"saved {hooks.saved} run(s){f' in {where}' if where else ''}: {ids}")
            print("see them with `wattbench show ID`, compare with `wattbench compare ID ID`")
        if token.cancelled and len(results) < len(specs):
            print(
                f"wattbench: cancelled; {len(specs) - len(results)} run(s) not started",
                file=sys.stderr,
            )
    return code
