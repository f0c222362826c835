"""A/A agreement: one configuration run as A and as B, interleaved and blocked (figures only).

    python tests/benchmarks/bench_aa.py [--pairs 20] [--model builtin:mlp-tiny]
        [--runtime torch] [--batch 8] [--threads 1] [--preset quick] [--t-max 1]
        [--designs interleaved,blocked] [--seed N] [--cpu N] [--energy] [--memory-pass]

The same configuration is planned once (``service.plan_runs``, checked by ``check_plan``) and
run ``--pairs`` times as side A (tagged "A") and as side B (tagged "B") through the
``RunQueue`` into a temporary SQLite store, in two designs:

- interleaved: in rounds, each round running A and B once in a seeded order
  (``spec.interleave``, what the planner does for a comparison);
- blocked: every A, then every B (A A A … B B B …, the old ``--repeat``).

Comparisons go through the service's ``compare_loaded`` on the runs loaded back from the
store. A and B are the same configuration, so ``compare`` would pool them into one group
(replicates are grouped by ``spec.config_key()``; tags are not part of it) and give no ratio.
So, in memory only, side B's runs get ``ort_provider = "side B"``: a field of the
configuration key that is not part of the workload and that the torch runtime never reads.
The comparison then sees two like-for-like configurations, and everything else (pooling,
the Welch interval, the quality causes, "indicative", the noise threshold) is the real code.

Compared per design: each pair alone (round i's A against round i's B: one run each, so
"indicative"), pairs of rounds (2 runs per side, the default replicates of a comparison) and
all A against all B. Printed: the verdicts (what a user is shown, and what the interval alone
says: an "unreliable" verdict hides a faster/slower of the interval), how often ``contended``
was raised and whether it marks the outliers, the agreement of the two runs of a pair on mean
and p99 latency per call, the load average, and the wall time.

The foreign share is measured over the CPUs the worker may use (its affinity): unpinned on a
2-CPU machine, a one-thread run counts the other CPU's work by others too. ``--cpu N`` pins
this process, and so every run's worker, to CPU N, so that the share is its core's.

No assertions: the machine is shared and noisy, and that is the condition measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from wattbench.domain.result import FLAG_CONTENDED, RunResult, RunStatus
from wattbench.domain.spec import RunSpec, interleave
from wattbench.engine.ratios import Ratio
from wattbench.service.plan import check_plan, plan_runs
from wattbench.service.queue import EventKind, QueueEvent, RunQueue
from wattbench.service.request import RunRequest
from wattbench.service.workbench import Workbench, compare_loaded

METRICS = ("throughput", "latency-mean", "latency-p50", "latency-p99")
SIDE_B = "side B"  # what tells B's runs apart for the comparison (see the module docstring)
DIRECTIONAL = ("faster", "slower")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def base_spec(args: argparse.Namespace) -> RunSpec:
    """The one configuration, planned and checked as ``wattbench run`` plans it."""
    request = RunRequest(
        model=args.model,
        runtimes=(args.runtime,),
        batch_sizes=(args.batch,),
        threads=(args.threads,),
        preset=args.preset,
        t_max_s=args.t_max,
        repeats=1,
        idle_baseline=args.energy,
        memory_pass=args.memory_pass,
        tags=("A",),
    )
    plan = plan_runs(request)
    check_plan(plan)
    return plan.specs[0]


def design_specs(design: str, a: RunSpec, pairs: int, seed: int) -> list[RunSpec]:
    b = a.with_(tags=("B",))
    sweep = uuid.uuid4().hex
    if design == "interleaved":
        runs = interleave([a, b], pairs, seed)
    else:
        runs = [a.with_(repeat=i, position=i) for i in range(pairs)]
        runs += [b.with_(repeat=i, position=pairs + i) for i in range(pairs)]
    return [s.with_(sweep_id=sweep) for s in runs]


def foreign(run: RunResult) -> float | None:
    i = run.interference
    return None if i is None else i.foreign_share


def show_run(event: QueueEvent) -> None:
    if event.kind is not EventKind.FINISHED or event.item.result is None:
        return
    r = event.item.result
    tp = r.throughput_items_per_s
    fs = foreign(r)
    ph = r.phases
    print(
        f"    {r.spec.tags[0]}{r.spec.repeat + 1:<3} {r.status.value:<9} "
        f"{'n/a' if tp is None else f'{tp.value:10.1f}'} items/s  "
        f"foreign {'n/a' if fs is None else f'{fs:5.1%}'}  "
        f"warm-up {ph.warmup_s:4.1f} s measured {ph.measure_s:4.1f} s of {ph.total_s or 0:4.1f} s"
        f"  flags: {', '.join(r.flags) or '-'}",
        flush=True,
    )


def relabel(run: RunResult) -> RunResult:
    return dataclasses.replace(run, spec=run.spec.with_(ort_provider=SIDE_B))


def compare(a_runs: Sequence[RunResult], b_runs: Sequence[RunResult]) -> dict[str, Ratio]:
    view = compare_loaded(
        [*a_runs, *(relabel(r) for r in b_runs)], baseline_id=a_runs[0].id, metrics=METRICS
    )
    (row,) = view.comparison.rows
    return dict(row.ratios)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (few values: no interpolation to pretend precision)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def rel_diff(x: float, y: float) -> float:
    return abs(x - y) / ((x + y) / 2)


def p99(run: RunResult) -> float | None:
    pe = run.latency.percentile(0.99) if run.latency is not None else None
    return None if pe is None else pe.value_ns


def agreement(pairs: Sequence[tuple[RunResult, RunResult]], label: str) -> None:
    for name, target, get in (
        ("mean latency", 0.02, lambda r: r.latency.mean_ns if r.latency else None),
        ("p99 latency", 0.05, p99),
    ):
        diffs = [
            rel_diff(x, y)
            for x, y in ((get(a), get(b)) for a, b in pairs)
            if x is not None and y is not None
        ]
        if not diffs:
            print(f"    {name:<13} {label}: no pairs")
            continue
        within = sum(d <= target for d in diffs)
        print(
            f"    {name:<13} {label}: |A−B|/mean median {statistics.median(diffs):6.2%}, "
            f"p90 {quantile(diffs, 0.9):6.2%}, max {max(diffs):6.2%}; "
            f"{within}/{len(diffs)} pairs within {target:.0%}"
        )


def shown_word(r: Ratio) -> str:
    """What a user is shown, in one word (plus "indicative" where it is labelled so)."""
    if r.kind is None:
        return "no verdict"
    word = "faster/slower" if r.kind in DIRECTIONAL else r.kind
    return f"{word} (indicative)" if r.indicative else word


def tally(ratios: Sequence[Ratio]) -> str:
    shown = Counter(shown_word(r) for r in ratios)
    directional = sum(r.kind in DIRECTIONAL for r in ratios)
    alone = sum(r.interval_verdict in DIRECTIONAL for r in ratios)
    n = len(ratios)
    parts = [f"{k} {v}" for k, v in sorted(shown.items())]
    return (
        f"{n:2}: shown {', '.join(parts)}; faster/slower shown {directional}, "
        f"by the interval alone {alone}"
    )


def verdicts(a_runs: list[RunResult], b_runs: list[RunResult]) -> list[tuple[str, list[Ratio]]]:
    sets: list[tuple[str, list[Ratio]]] = []
    n = len(a_runs)
    single = [compare([a], [b]) for a, b in zip(a_runs, b_runs, strict=True)]
    double = [
        compare(a_runs[k : k + 2], b_runs[k : k + 2]) for k in range(0, n - 1, 2)
    ]  # rounds (1, 2), (3, 4) …
    whole = [compare(a_runs, b_runs)] if n > 2 else []
    for label, comps in (
        ("1 run per side", single),
        ("2 runs per side", double),
        (f"{n} runs per side", whole),
    ):
        if comps:
            print(f"  {label} ({len(comps)} comparisons × {len(METRICS)} metrics):")
            for m in METRICS:
                print(f"    {m:<13} {tally([c[m] for c in comps])}")
            sets.append((label, [c[m] for c in comps for m in METRICS]))
    if whole:
        for m in METRICS:
            r = whole[0][m]
            iv = "" if r.lo is None else f" [{r.lo:.4f}–{r.hi:.4f}]"
            print(f"    all vs all {m:<13} B/A {r.value or 0:.4f}{iv}: {r.verdict}")
    # contended pairs against clean ones, by what the interval alone says (1 run per side)
    hit = {True: [0, 0], False: [0, 0]}
    for (a, b), comp in zip(zip(a_runs, b_runs, strict=True), single, strict=True):
        contended = FLAG_CONTENDED in a.flags or FLAG_CONTENDED in b.flags
        for m in ("throughput", "latency-mean"):
            hit[contended][0] += comp[m].interval_verdict in DIRECTIONAL
            hit[contended][1] += 1
    for contended, (k, total) in hit.items():
        if total:
            print(
                f"  pairs {'with' if contended else 'without'} a contended run: {total // 2}; "
                f"faster/slower by the interval alone on throughput and mean latency: "
                f"{k}/{total} ({k / total:.0%})"
            )
    return sets


def outliers(runs: list[RunResult]) -> None:
    """Whether the runs furthest from the median throughput are the contended ones."""
    have = [(r, r.throughput_items_per_s.value) for r in runs if r.throughput_items_per_s]
    if len(have) < 4:
        return
    median = statistics.median(v for _, v in have)
    ranked = sorted(have, key=lambda rv: abs(math.log(rv[1] / median)), reverse=True)
    k = max(2, len(ranked) // 10)
    shares = [foreign(r) for r, _ in ranked]
    print(f"  throughput median {median:.1f} items/s; the {k} runs furthest from it:")
    for r, v in ranked[:k]:
        fs = foreign(r)
        print(
            f"    {r.spec.tags[0]}{r.spec.repeat + 1:<3} {v:10.1f} items/s "
            f"({v / median - 1:+.1%}) foreign {'n/a' if fs is None else f'{fs:.1%}'} "
            f"contended {FLAG_CONTENDED in r.flags}"
        )
    rest = [s for s in shares[k:] if s is not None]
    if rest:
        print(f"    the other runs: median foreign share {statistics.median(rest):.1%}")
    both = [(v, s) for (r, v) in have if (s := foreign(r)) is not None]
    if len(both) >= 4:
        tp, known = [v for v, _ in both], [s for _, s in both]
        far = [abs(math.log(v / median)) for v in tp]
        print(
            f"  rank correlation with the foreign share: of the throughput "
            f"{spearman(tp, known):+.2f}, of its distance from the median "
            f"{spearman(far, known):+.2f}"
        )


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    rx, ry = ranks(x), ranks(y)
    if len(set(rx)) < 2 or len(set(ry)) < 2:
        return float("nan")
    return statistics.correlation(rx, ry)


def run_design(wb: Workbench, design: str, specs: list[RunSpec]) -> list[RunResult]:
    print(f"\n== {design}: {len(specs)} runs; load average {load()}", flush=True)
    if design == "interleaved":
        order = " ".join(s.tags[0] for s in specs[:12])
        print(f"  order (seed {specs[0].order_seed}): {order}{' …' if len(specs) > 12 else ''}")
    start = time.perf_counter()
    queue = RunQueue(wb, show_run, keep_aside=False)
    queue.submit(specs)
    items = queue.run_all()
    ids = [it.run_id for it in items if it.stored]
    runs = wb.load_runs(ids)
    print(f"  {len(runs)} stored in {time.perf_counter() - start:.0f} s; load average {load()}")
    return runs


def analyse(design: str, runs: list[RunResult]) -> list[tuple[str, list[Ratio]]]:
    done = [r for r in runs if r.status is RunStatus.DONE]
    side = {t: sorted((r for r in done if r.spec.tags[:1] == (t,)), key=lambda r: r.spec.repeat)
            for t in ("A", "B")}  # fmt: skip
    by_round = {r.spec.repeat: r for r in side["B"]}
    pairs = [(a, by_round[a.spec.repeat]) for a in side["A"] if a.spec.repeat in by_round]
    print(f"\n-- {design}: {len(done)} of {len(runs)} runs done, {len(pairs)} pairs")
    if len(pairs) < 1:
        return []
    flags = Counter(f for r in done for f in r.flags)
    shares = [s for s in (foreign(r) for r in done) if s is not None]
    print(f"  flags: {', '.join(f'{k} {v}' for k, v in flags.most_common()) or 'none'}")
    if shares:
        print(
            f"  contended {flags[FLAG_CONTENDED]}/{len(done)} runs; foreign share median "
            f"{statistics.median(shares):.1%}, max {max(shares):.1%}"
        )
    a_runs, b_runs = [a for a, _ in pairs], [b for _, b in pairs]
    sets = verdicts(a_runs, b_runs)
    outliers(done)
    print("  agreement of the two runs of a pair:")
    agreement(pairs, "all pairs")
    clean = [(a, b) for a, b in pairs if not ({FLAG_CONTENDED} & {*a.flags, *b.flags})]
    if 0 < len(clean) < len(pairs):
        agreement(clean, f"{len(clean)} uncontended pairs")
    return sets


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=20, help="runs of each side per design")
    p.add_argument("--model", default="builtin:mlp-tiny")
    p.add_argument("--runtime", default="torch")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--preset", default="quick")
    p.add_argument("--t-max", type=float, default=1.0, help="longest measurement per run (s)")
    p.add_argument("--designs", default="interleaved,blocked")
    p.add_argument("--seed", type=int, default=None, help="order seed (default: a new one)")
    p.add_argument("--cpu", type=int, default=None, help="pin the runs to this CPU")
    p.add_argument("--energy", action="store_true", help="measure the idle baseline too")
    p.add_argument("--memory-pass", action="store_true", help="run the memory pass too")
    args = p.parse_args(argv)
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    if args.pairs < 1 or not set(designs) <= {"interleaved", "blocked"}:
        p.error("--pairs must be ≥ 1 and --designs a list of interleaved, blocked")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # the workers inherit it
    start = time.perf_counter()
    print(f"load average before: {load()}; CPUs used: {sorted(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory(prefix="wb-aa-") as tmp:
        os.environ["WATTBENCH_DATA"] = tmp  # the store's spool too: nothing of the user's
        a = base_spec(args)
        print(
            f"configuration: {a.label()} · preset {a.preset} · T_max {a.measurement_t_max_s:g} s"
            f" · {args.pairs} pairs per design · order seed {seed}"
        )
        results: dict[str, list[RunResult]] = {}
        with Workbench.open(f"sqlite:///{Path(tmp) / 'aa.sqlite'}") as wb:
            for design in designs:
                results[design] = run_design(wb, design, design_specs(design, a, args.pairs, seed))
        summary = {design: analyse(design, runs) for design, runs in results.items()}
    print("\nfaster/slower among A/A ratios (target ≤ 5 %), per design:")
    for design, sets in summary.items():
        for label, ratios in sets:
            n = len(ratios)
            shown = sum(r.kind in DIRECTIONAL for r in ratios)
            alone = sum(r.interval_verdict in DIRECTIONAL for r in ratios)
            unreliable = sum(r.kind == "unreliable" for r in ratios)
            indicative = sum(r.indicative is not None for r in ratios)
            print(
                f"  {design:<11} {label:<17} shown {shown}/{n} ({shown / n:.0%}), by the interval"
                f" alone {alone}/{n} ({alone / n:.0%}); unreliable {unreliable}, indicative "
                f"{indicative}, no verdict {sum(r.kind is None for r in ratios)}"
            )
    print(f"\nload average after: {load()}")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
