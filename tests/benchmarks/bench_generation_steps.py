"""Print what timing every decode step costs, and what splitting a run's energy per phase costs.

Run: ``python tests/benchmarks/bench_generation_steps.py [--calls N] [--steps S]``.

1. The generation loop (engine/timing.py ``loop_generation``) reads the clock after every
   decode step and stores the step's duration. With a decoder whose steps do nothing, the
   difference between that loop and the same loop without per-step timing is the cost the
   instrumentation adds to each decode step (inside the timed region); it prints the median of
   7 rounds of each, per step.
2. ``token_energy.split_view`` on a 1 kHz power trace over N calls: the time the supervisor adds
   to a generation run's result.

It prints figures and asserts nothing (timings depend on the machine's load).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from wattbench.backends.sensors.base import Domain
from wattbench.domain.result import EnergyFigure
from wattbench.energy.figures import DomainSeries
from wattbench.engine import generation, timing, token_energy

clock = time.perf_counter_ns


class NullDecoder:
    def reset(self) -> None:
        pass

    def prefill(self) -> None:
        pass

    def decode_step(self) -> None:
        pass


def _untimed_steps(model: NullDecoder, steps: range, calls: int) -> None:
    """The loop as it was before per-step timing: one clock read after the last step."""
    reset, prefill, decode = model.reset, model.prefill, model.decode_step
    starts = np.zeros(calls, dtype=np.int64)
    for j in range(calls):
        reset()
        t0 = clock()
        prefill()
        for _ in steps:
            decode()
        starts[j] = clock() - t0


def _timed_steps(model: NullDecoder, steps: range, calls: int) -> None:
    a, b, c = (np.zeros(calls, dtype=np.int64) for _ in range(3))
    store = generation.StepStore(len(steps))
    timing.loop_generation(model, steps, a, b, c, 0, calls, 1 << 62, store.marks, store.keep)


def _median_ns(fn: Callable[[], object], rounds: int = 7) -> float:
    out = []
    for _ in range(rounds):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=127)
    args = ap.parse_args()
    model, steps = NullDecoder(), range(args.steps)
    total = args.calls * args.steps
    base = _median_ns(lambda: _untimed_steps(model, steps, args.calls))
    timed = _median_ns(lambda: _timed_steps(model, steps, args.calls))
    print(f"decode steps: {args.calls} calls × {args.steps} steps of a null decoder")
    print(f"  without per-step timing {base / total:8.1f} ns per step")
    print(f"  with per-step timing    {timed / total:8.1f} ns per step")
    print(f"  added by timing a step  {(timed - base) / total:8.1f} ns per step")

    period = (50_000_000 + 200_000_000 + 5_000_000) * np.arange(args.calls, dtype=np.int64)
    starts = 1_000_000_000 + period
    bounds = token_energy.phase_bounds(
        starts, np.full(args.calls, 50_000_000), np.full(args.calls, 250_000_000)
    )
    t = np.arange(starts[0] - 10**8, int(bounds[2][-1]) + 10**8, 1_000_000, dtype=np.int64)
    dom = Domain("b:p", "package-0", "cpu", "b.pkg", "cpu-package", "power", "W", 0.001)
    series = DomainSeries(dom, t, np.full(t.size, 50.0))
    dur = (int(bounds[2][-1]) - int(starts[0])) / 1e9
    fig = EnergyFigure("package-0", "cpu", "b.pkg", "cpu-package", "integrated-samples",
                       50.0 * dur, dur, 50.0, args.calls, 50.0 * dur / args.calls,
                       args.calls / (50.0 * dur))  # fmt: skip
    split = _median_ns(
        lambda: token_energy.split_view(
            fig,
            [fig],
            {"package-0": series},
            bounds,
            (1, 1, 1),
            view="device",
            sample_period_s=0.001,
        )
    )
    print(f"energy split: {args.calls} calls, {t.size:,} power samples: {split / 1e6:.2f} ms")


if __name__ == "__main__":
    main()
