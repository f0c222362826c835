"""The server scenario's load generator: its own overhead, achieved vs target rate, and the
time of an SLO search (prints figures; no assertion: the machine is shared and noisy).

    python tests/benchmarks/bench_loadgen.py [--rates 100,1000] [--slo p99=100ms] [--skip-search]

Each server run goes through the real worker process (``runner.run_one``) on the fake runtime
sleeping 1 ms per call (WATTBENCH_FAKE_SLEEP: a fixed-time model that leaves the interpreter
lock free): 1 stream at 100 requests/s, 4 streams at 1,000 requests/s (a quarter of their
capacity). Printed per rate: offered and achieved rate, requests, issue lag p50/p99 (issue −
scheduled arrival for requests that found a stream free), late and dropped requests, the
generator's CPU share of one core and per request, and the latency p50/p99 against the 1 ms
service time. Then the SLO search on onnx-zoo:squeezenet (onnxruntime, the file the onnx
package ships) for the highest rate meeting --slo, with its probes and wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# the fake runtime, for the run workers too (they get this process's sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from wattbench.domain.result import RunResult
from wattbench.domain.server import server_lines
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine import runner
from wattbench.service.request import parse_slo

SERVICE_US = 1000  # the fake model's call time
COMMON = dict(
    scenario=Scenario.SERVER,
    preset="quick",
    idle_baseline=False,
    memory_pass=False,
    time_limit_s=600.0,
)


def _ms(ns: float | None) -> str:
    return "n/a" if ns is None else f"{ns / 1e6:.3f} ms"


def _print_load(r: RunResult, rate: float) -> None:
    s, lat = r.server, r.latency
    if s is None or lat is None:
        print(f"  {rate:g}/s: {r.status.value}: {r.reason}")
        return
    p50, p99 = lat.percentile(0.5), lat.percentile(0.99)
    print(
        f"  target {rate:>6g}/s  streams {s.streams}  offered {s.offered_rate_per_s:8.1f}/s  "
        f"achieved {s.achieved_rate_per_s:8.1f}/s ({s.achieved_rate_per_s / rate - 1:+.1%})  "
        f"requests {s.requests}  late {s.late}  dropped {s.dropped}"
    )
    print(
        f"    issue lag p50 {s.issue_lag_p50_ns / 1e3:.0f} µs  "
        f"p99 {s.issue_lag_p99_ns / 1e3:.0f} µs"
        f"  generator CPU {s.generator_cpu_share:.2%} of a core "
        f"({s.generator_cpu_per_request_ns / 1e3:.1f} µs/request)  service mean "
        f"{_ms(s.service_mean_ns)}  latency p50 {_ms(p50.value_ns if p50 else None)}  "
        f"p99 {_ms(p99.value_ns if p99 else None)} (headline: {bool(p99 and p99.headline)})  "
        f"window {s.duration_s:.1f} s"
    )


def bench_rates(rates: list[float], t_max_s: float) -> None:
    os.environ["WATTBENCH_FAKE_SLEEP"] = "1"
    os.environ["WATTBENCH_FAKE_ITEM_US"] = str(SERVICE_US)
    print(f"load generator on a fixed {SERVICE_US / 1000:g} ms model (fake runtime, sleeping):")
    for rate in rates:
        streams = max(1, round(4 * rate * SERVICE_US / 1e6))  # ~25 % utilisation per stream
        spec = RunSpec(
            model="builtin:mlp-tiny",
            runtime="fake",
            target_rate=rate,
            streams=streams,
            t_max_s=t_max_s,
            **COMMON,  # type: ignore[arg-type]
        )
        _print_load(runner.run_one(spec), rate)


def bench_search(slo: str, t_max_s: float) -> None:
    parsed = parse_slo(slo)
    assert parsed is not None
    spec = RunSpec(
        model="onnx-zoo:squeezenet",
        runtime="onnxruntime",
        threads=1,
        slo_percentile=parsed[0],
        slo_ms=parsed[1],
        t_max_s=t_max_s,
        **COMMON,  # type: ignore[arg-type]
    )
    print(f"SLO search on onnx-zoo:squeezenet (onnxruntime, 1 thread, 1 stream), {slo}:")
    t0 = time.monotonic()
    r = runner.run_one(spec)
    wall = time.monotonic() - t0
    if r.server is None:
        print(f"  {r.status.value}: {r.reason}")
        return
    for line in server_lines(r.server):
        print(f"  {line}")
    print(
        f"  search {r.server.search_s:.1f} s of measuring, whole run (worker start, load, "
        f"warm-up, search) {wall:.1f} s; flags: {', '.join(r.flags) or '-'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="100,1000")
    ap.add_argument("--t-max", type=float, default=20.0, dest="t_max")
    ap.add_argument("--slo", default="p99=100ms")
    ap.add_argument("--search-t-max", type=float, default=20.0, dest="search_t_max")
    ap.add_argument("--skip-search", action="store_true", dest="skip_search")
    args = ap.parse_args()
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    bench_rates([float(x) for x in args.rates.split(",")], args.t_max)
    if not args.skip_search:
        bench_search(args.slo, args.search_t_max)


if __name__ == "__main__":
    main()
