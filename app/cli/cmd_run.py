"""``wattbench run``: measure a model on a device (sweeps expand into runs done one by one).

The arguments become a service ``RunRequest``; the service plans and checks the runs and its
queue runs and stores them, as it does for the GUI. Progress goes to stderr (a rich progress
bar), the result table or ``--json`` (docs/cli-json.md) to stdout. Exit codes: 0 every run
done, 2 bad input (nothing ran, or a worker found the input unusable), 3 a run failed,
4 cancelled (Ctrl-C: the first one cancels cleanly, a second one interrupts at once).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from wattbench.cli import run_output
from wattbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_NOT_STORED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    plural,
    print_error,
    print_json,
)
from wattbench.cli.fleet_args import add_scheduler_argument, add_tls_arguments, open_fleet
from wattbench.cli.run_order import order_document, order_seed_arg, print_order
from wattbench.domain.cost import CostProfile, profiles_by_device
from wattbench.domain.errors import BadInputError, StoreLocationError, WattbenchError
from wattbench.domain.events import Phase
from wattbench.domain.result import RunResult
from wattbench.domain.spec import PRESETS, Scenario
from wattbench.service.fleet import FleetRun
from wattbench.service.fleet_link import Fleet
from wattbench.service.plan import check_plan, plan_runs
from wattbench.service.queue import EventKind, ItemState, QueueEvent, QueueItem, RunQueue
from wattbench.service.request import (
    RunRequest,
    parse_dims,
    parse_input_shapes,
    parse_ints,
    parse_slo,
    parse_threads,
    split_list,
)
from wattbench.service.workbench import Workbench

log = logging.getLogger(__name__)


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
        help="catalog ref (builtin:mlp-small, onnx-zoo:NAME, or just the name) or a model file",
    )
    p.add_argument("--device", default="cpu", metavar="D[,D...]", help="cpu, cuda:0, mps ...")
    p.add_argument(
        "--runtime",
        default=None,
        metavar="R[,R...]",
        help="runtime plugins, e.g. torch,onnxruntime (default: the model's own: torch for "
        "built-ins and PyTorch files, onnxruntime for ONNX files)",
    )
    p.add_argument("--batch", default=None, metavar="N[,N...]", help="batch sizes, e.g. 1,8,32")
    p.add_argument(
        "--precision", default="fp32", metavar="P[,P...]", help="fp32, fp16, bf16, int8, int4"
    )
    p.add_argument(
        "--threads",
        default=None,
        metavar="N[,N...]",
        help="intra-op threads (default: the runtime's own choice; per instance)",
    )
    p.add_argument(
        "--instances",
        default=None,
        metavar="N[,N...]",
        help="CPU: run N copies of the model together, each in its own worker pinned to its own "
        "cores (and NUMA node), measured as one run: aggregate throughput, per-instance figures, "
        "one power measurement (a list sweeps them, e.g. 1,2,4)",
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
        help="generation: prompt length; training: the sequence length (default 32)",
    )
    p.add_argument(
        "--grad-accum",
        type=int,
        default=1,
        dest="grad_accum",
        metavar="N",
        help="training: micro-batches (of --batch sequences) per optimizer step (default 1)",
    )
    p.add_argument(
        "--activation-checkpointing",
        action="store_true",
        dest="activation_checkpointing",
        help="training: recompute each block's activations in the backward pass",
    )
    p.add_argument(
        "--find-micro-batch",
        action="store_true",
        dest="find_micro_batch",
        help="training: measure at the largest micro-batch that fits the device, searched "
        "from --batch up by doubling until it runs out of memory (a GPU)",
    )
    p.add_argument(
        "--data-parallel",
        type=int,
        default=1,
        dest="data_parallel",
        metavar="N",
        help="training: N data-parallel ranks on this host, one per device (gloo on the CPU)",
    )
    p.add_argument("--rate", type=float, default=None, metavar="R", help="server: Poisson "
                   "arrivals per second (with --slo: where the search starts)")  # fmt: skip
    p.add_argument("--streams", default=None, metavar="N[,N...]", help="server: concurrent "
                   "streams sharing the model (a list sweeps them, e.g. 1,2,4)")  # fmt: skip
    p.add_argument("--slo", default=None, metavar="[M:]pP=LIMIT", help="server: search the "
                   "highest rate meeting a latency SLO, e.g. p99=100ms (its goodput); for a "
                   "generative model ttft:p99=500ms or tpot:p90=100ms")  # fmt: skip
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
        default=None,
        metavar="R",
        help="independent runs per configuration, run in rounds (each round runs every "
        "configuration once, in a shuffled order); default: 2 when several configurations "
        "are compared, else 1",
    )
    p.add_argument(
        "--order-seed",
        type=order_seed_arg,
        default=None,
        dest="order_seed",
        metavar="S",
        help="the seed that shuffles each round (default: a new one, printed); the same seed "
        "runs the same configurations in the same order",
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
    fleet = p.add_argument_group("fleet (docs/fleet.md)")
    fleet.add_argument(
        "--on",
        metavar="HOST[,HOST…]|all",
        default=None,
        help="run the plan on each of these fleet hosts (`wattbench fleet hosts`), side by "
        "side in rounds; the results come back to this store",
    )
    add_scheduler_argument(fleet)
    add_tls_arguments(p)
    p.set_defaults(func=run_command)


def request_from(args: argparse.Namespace) -> RunRequest:
    """The service request a command line asks for (BadInputError for unreadable values)."""
    slo = parse_slo(args.slo)
    return RunRequest(
        model=args.model,
        devices=tuple(split_list(args.device)) or ("cpu",),
        runtimes=tuple(split_list(args.runtime)),
        precisions=tuple(split_list(args.precision)) or ("fp32",),
        batch_sizes=tuple(parse_ints(args.batch, what="batch size", field="batch_size")) or (1,),
        threads=tuple(parse_threads(args.threads)),
        repeats=args.repeat,
        order_seed=args.order_seed,
        scenario=Scenario(args.scenario),
        preset=args.preset,
        epsilon=args.epsilon,
        t_max_s=args.t_max,
        time_limit_s=args.time_limit,
        dims=parse_dims(args.dim),
        input_shapes=parse_input_shapes(args.input_shape),
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        target_rate=args.rate,
        streams=tuple(parse_ints(args.streams, what="streams", field="streams")) or (1,),
        slo_ms=None if slo is None else slo[1],
        slo_percentile=0.99 if slo is None else slo[0],
        slo_metric="latency" if slo is None else slo.metric,
        ort_provider=args.provider,
        ort_graph_optimization=args.graph_opt,
        sample_hz=args.sample_hz,
        idle_baseline=not args.no_idle,
        memory_pass=not args.no_memory,
        tags=tuple(args.tag),
        instance_counts=tuple(parse_ints(args.instances, what="instances", field="instances"))
        or (1,),
        grad_accum=args.grad_accum,
        activation_checkpointing=args.activation_checkpointing,
        find_micro_batch=args.find_micro_batch,
        data_parallel=args.data_parallel,
    )


# -- progress -----------------------------------------------------------------------------


class _ProgressView:
    """A rich progress bar on stderr: one line per run, updated from the queue's events."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[int, Any] = {}
        self._count = 0
        self._lock = threading.Lock()

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

    def __call__(self, event: QueueEvent) -> None:
        if event.kind is EventKind.QUEUED:
            self._count += 1
        if self._progress is None or event.kind is EventKind.QUEUED:
            return
        item = event.item
        with self._lock:  # a fleet's hosts report from a thread each
            if item.key not in self._tasks:
                where = f"@{item.spec.host} " if item.spec.host else ""
                self._tasks[item.key] = self._progress.add_task(
                    f"{where}[{len(self._tasks) + 1}/{self._count}]", total=1.0, status=""
                )
        status = item.phase
        if item.phase == Phase.MEASURING and item.rho is not None:
            status += f" n={item.n} ρ={item.rho:.2%}"
            if item.epsilon:
                status += f"→{item.epsilon:.1%}"
        elif item.message and item.phase != Phase.DONE:
            status += f": {item.message}"
        completed = item.fraction if item.phase == Phase.MEASURING else None
        if item.state.finished:
            completed = 1.0
        kw: dict[str, Any] = {"status": status[:60]}
        if completed is not None:
            kw["completed"] = completed
        self._progress.update(self._tasks[item.key], **kw)


@contextmanager
def _signals_cancel(queue: RunQueue | FleetRun) -> Iterator[None]:
    """Ctrl-C or SIGTERM (``timeout``, a CI job, a service manager) cancels the runs cleanly:
    the worker is stopped and the cancelled run recorded; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    pressed = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if pressed.is_set() and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        pressed.set()
        how = "Ctrl-C again to interrupt" if signum == signal.SIGINT else "terminated"
        print(f"\nwattbench: cancelling ({how})", file=sys.stderr)
        queue.cancel_all()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


# -- the command --------------------------------------------------------------------------


def exit_code_for(items: Sequence[QueueItem]) -> int:
    """5 a measured run is not in the store, 4 cancelled, 3 a run failed, 2 a run failed on
    bad input only, 0 all done."""
    if any(it.unstored for it in items):
        return EXIT_NOT_STORED
    if any(it.state is ItemState.CANCELLED for it in items):
        return EXIT_CANCELLED
    failed = [it for it in items if it.state is not ItemState.DONE]
    if any(it.result is None or it.result.error_kind != "bad_input" for it in failed):
        return EXIT_RUN_FAILED
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _profiles(wb: Workbench | None) -> dict[str, CostProfile]:
    """The stored cost profiles by device for the runs' $ figures; none when the store cannot
    give them (the runs are stored or kept aside either way: that is said elsewhere)."""
    if wb is None:
        return {}
    try:
        return profiles_by_device(wb.cost_profiles())
    except WattbenchError as exc:
        log.warning("cost profiles not read: %s", exc)
        return {}


def _open_store(args: argparse.Namespace) -> tuple[Workbench | None, str | None]:
    """The store (None: the runs are kept aside, or not stored at all with --no-store) and
    why runs will not be stored."""
    if args.no_store:
        return None, "not saved: --no-store"
    try:
        return Workbench.open(getattr(args, "db", None)), None
    except StoreLocationError:
        raise  # the user named a place that is not there: bad input, nothing is run
    except WattbenchError as exc:  # measure anyway; the runs are kept aside
        print(
            f"wattbench: warning: the run store cannot be opened ({exc}); the runs will be "
            "kept aside and stored at the next open of a store",
            file=sys.stderr,
        )
        return None, f"not saved: {exc}"


def run_command(args: argparse.Namespace) -> int:
    fleet: Fleet | None = None
    try:
        plan = plan_runs(request_from(args))
        if args.on:  # each host checks the plan against what it has
            fleet, hosts = open_fleet(args)
        else:
            check_plan(plan)
        wb, store_warning = _open_store(args)
    except (BadInputError, StoreLocationError) as exc:
        if fleet is not None:
            fleet.close()
        if args.json:
            doc = run_output.json_document([], exc.exit_code, error=exc)
            print_json(doc | {"plan": None})
        print_error(exc)
        return exc.exit_code
    show_progress = not args.json or sys.stderr.isatty()
    if show_progress:
        print_order(plan)
        if fleet is not None:
            print(
                f"on {plural(len(hosts), 'host')} ({', '.join(hosts)}), side by side, round by "
                f"round, from {fleet.address}",
                file=sys.stderr,
            )
    where = ""
    try:
        with _ProgressView(show_progress) as view:
            queue: RunQueue | FleetRun
            if fleet is not None:
                queue = FleetRun(fleet, hosts, wb, view, keep_aside=not args.no_store)
            else:
                queue = RunQueue(recorder=wb, listener=view, keep_aside=not args.no_store)
            queue.submit(plan.specs)
            with _signals_cancel(queue):
                queue.run_all()
        items = queue.items()
        if wb is not None and any(it.stored for it in items):
            where = wb.describe()
        profiles = _profiles(wb)
    finally:
        if wb is not None:
            wb.close()
        if fleet is not None:
            fleet.close()
    results: list[RunResult] = [it.result for it in items if it.result is not None]
    saved = [it for it in items if it.stored]
    unstored = [it for it in items if it.unstored]
    for it in unstored:
        print(f"wattbench: run {it.run_id[:8]} is not stored: {it.store_error}", file=sys.stderr)
    if unstored:
        store_warning = f"{plural(len(unstored), 'run')} not stored: {unstored[0].store_error}"
    code = exit_code_for(items)
    if args.json:
        store_info = {
            "saved": len(saved),
            "warning": store_warning,
            "kept_aside": [it.kept_at for it in unstored if it.kept_at],
        }
        doc = run_output.json_document(results, code, store=store_info)
        print_json(doc | {"plan": order_document(plan)})
        return code
    run_output.print_results(results, profiles)
    if saved:
        ids = " ".join(it.run_id[:8] for it in saved)
        print(f"saved {plural(len(saved), 'run')} in {where}: {ids}")
        print("see them with `wattbench show ID`, compare with `wattbench compare ID ID`")
    not_started = sum(1 for it in items if it.result is None)
    if not_started:
        print(f"wattbench: cancelled; {plural(not_started, 'run')} not started", file=sys.stderr)
    return code


__all__ = ["exit_code_for", "register", "request_from", "run_command"]
