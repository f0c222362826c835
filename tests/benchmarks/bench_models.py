"""Print the per-call time of the small built-in models on both runtimes (CPU, one thread).

Run: ``python tests/benchmarks/bench_models.py [--threads N] [--calls N]``. It checks the
catalog's claims (mlp-tiny ~0.1 ms, mlp-small ~1 ms per batch-1 call on one thread) on the
machine at hand; it prints figures and asserts nothing (timings depend on the machine's load).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

log = logging.getLogger(__name__)

MODELS = ("builtin:mlp-tiny", "builtin:mlp-small", "builtin:resnet-small", "builtin:bert-small",
          "builtin:gpt-small")  # fmt: skip


def per_call_ms(run_once: object, calls: int, rounds: int = 5) -> tuple[float, float]:
    """(best, median) of ``rounds`` means over ``calls`` back-to-back calls, in ms."""
    assert callable(run_once)
    means = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            run_once()
        means.append((time.perf_counter_ns() - t0) / calls / 1e6)
    means.sort()
    return means[0], means[len(means) // 2]


def main() -> None:
    from wattbench.backends.models import catalog
    from wattbench.backends.runtimes.base import RuntimeOptions
    from wattbench.backends.runtimes.registry import get_runtime

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    print(f"CPU per-call time, batch 1, {args.threads} thread(s), seq_len 128 for transformers; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'model':24s} {'runtime':12s} {'best ms':>9s} {'median ms':>10s}")
    for ref in MODELS:
        for runtime in ("torch", "onnxruntime"):
            entry = catalog.resolve_model(ref)
            loaded = get_runtime(runtime).load(entry, "cpu", RuntimeOptions(threads=args.threads))
            for _ in range(20):
                loaded.run_once()
            best, median = per_call_ms(loaded.run_once, args.calls)
            print(f"{ref:24s} {runtime:12s} {best:9.3f} {median:10.3f}")
            loaded.close()


if __name__ == "__main__":
    main()
