"""Synthetic but realistic ``RunResult`` values for tests of the store, GUI and reports.

``make_result(**overrides)`` builds one finished run whose figures hang together: latencies
drawn from a seeded log-normal around ``mean_ns``, throughput = batch / mean latency, a
percentile table computed from the samples, energy figures for the CPU package and a telemetry
power trace. Every keyword overrides a RunResult field; ``spec`` fields can be overridden with
``spec_overrides={...}`` and the synthetic data shaped with ``n_latencies``, ``n_telemetry``,
``mean_ns``, ``power_w`` and ``seed``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wattbench.domain.result import (
    EnergyFigure,
    Interval,
    LatencySummary,
    MemoryFigures,
    ModelInfo,
    PercentileEstimate,
    PhaseTimings,
    RunResult,
    RunStatus,
    Trace,
)
from wattbench.domain.spec import RunSpec, Scenario

log = logging.getLogger(__name__)

SYSTEM: dict[str, Any] = {
    "hostname": "bench-host-1",
    "os": {"name": "Linux", "release": "6.8.0", "python": "3.11.9"},
    "cpu": {
        "model": "AMD EPYC 7B13",
        "sockets": 1,
        "cores": 2,
        "threads": 4,
        "isa": ["avx2", "fma"],
    },
    "memory_bytes": 16 * 1024**3,
    "versions": {"torch": "2.13.0", "onnxruntime": "1.20.0"},
}
MODEL = ModelInfo(
    ref="builtin:mlp-small",
    name="mlp-small",
    family="builtin",
    format="torch-module",
    sha256="a" * 64,
    inputs=(("x", (1, 256), "float32"),),
    parameters=329_000,
)
_T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _latency(samples_ns: np.ndarray, percentiles: tuple[float, ...]) -> LatencySummary:
    s = samples_ns.astype(np.float64)
    n = int(s.size)
    mean = float(s.mean())
    sd = float(s.std(ddof=1)) if n > 1 else 0.0
    half = float(1.96 * sd / np.sqrt(max(n, 1)))
    q1, med, q3 = (float(x) for x in np.percentile(s, [25, 50, 75]))
    pes = []
    for p in percentiles:
        v = float(np.percentile(s, p * 100))
        rank = max(1, int(np.ceil(p * n)))
        nearest = float(np.sort(s)[rank - 1])
        pes.append(
            PercentileEstimate(
                p=p,
                value_ns=v,
                nearest_rank_ns=nearest,
                lo_ns=v * 0.98,
                hi_ns=v * 1.02,
                headline=n >= 1000,
            )
        )
    return LatencySummary(
        n=n,
        mean_ns=mean,
        sd_ns=sd,
        cv=sd / mean,
        median_ns=med,
        iqr_ns=q3 - q1,
        mad_ns=float(np.median(np.abs(s - med))),
        min_ns=float(s.min()),
        max_ns=float(s.max()),
        mean_lo_ns=mean - half,
        mean_hi_ns=mean + half,
        rho=half / mean,
        r1=0.02,
        n_eff=n * 0.96,
        outliers_low=0,
        outliers_high=int((s > q3 + 3 * (q3 - q1)).sum()),
        drift=0.001,
        percentiles=tuple(pes),
    )


def make_result(
    *,
    spec_overrides: dict[str, Any] | None = None,
    n_latencies: int = 2_000,
    n_telemetry: int = 200,
    mean_ns: float = 250_000.0,
    power_w: float = 45.0,
    seed: int = 0,
    **overrides: Any,
) -> RunResult:
    """One finished, converged CPU run with arrays, energy and telemetry (see module doc)."""
    rng = np.random.default_rng(seed)
    spec_kw: dict[str, Any] = {
        "model": MODEL.ref,
        "device": "cpu",
        "runtime": "torch",
        "threads": 2,
        "preset": "quick",
    }
    spec_kw.update(spec_overrides or {})
    spec = RunSpec(**spec_kw)
    sigma = 0.08
    lat = rng.lognormal(np.log(mean_ns) - sigma**2 / 2, sigma, n_latencies).astype(np.int64)
    lat = np.maximum(lat, 1)
    starts = np.cumsum(lat, dtype=np.int64) + 1_000_000_000
    summary = _latency(lat, spec.percentiles)
    thr_v = spec.batch_size * 1e9 / summary.mean_ns
    thr = Interval(thr_v, thr_v * (1 - summary.rho), thr_v * (1 + summary.rho))
    duration_s = float(lat.sum()) / 1e9
    items = n_latencies * spec.batch_size
    energy_j = power_w * duration_s
    gpu = spec.device.startswith("cuda")
    domain, source, scope = (
        ("gpu0", "nvml.total_energy", "gpu-board")
        if gpu
        else ("package-0", "rapl.package-0", "cpu-package")
    )
    energy = (
        EnergyFigure(
            domain=domain,
            device=spec.device,
            source=source,
            scope=scope,
            method="counter-difference",
            energy_j=energy_j,
            duration_s=duration_s,
            avg_power_w=power_w,
            items=items,
            energy_per_item_j=energy_j / items,
            items_per_j=items / energy_j,
            idle_power_w=12.0,
            energy_per_item_above_idle_j=(power_w - 12.0) * duration_s / items,
            rel_uncertainty=0.02,
        ),
    )
    t_tel = np.arange(n_telemetry, dtype=np.int64) * 100_000_000 + 1_000_000_000
    p_tel = power_w + rng.normal(0.0, 1.5, n_telemetry)
    created = _T0 + timedelta(minutes=seed)
    fields: dict[str, Any] = {
        "id": uuid.UUID(bytes=rng.bytes(16), version=4).hex,
        "spec": spec,
        "status": RunStatus.DONE,
        "created_at": created.isoformat(timespec="milliseconds"),
        "finished_at": (created + timedelta(seconds=duration_s + 3)).isoformat(
            timespec="milliseconds"
        ),
        "system": dict(SYSTEM),
        "model": MODEL
        if spec.model == MODEL.ref
        else ModelInfo(
            ref=spec.model,
            name=spec.model.split(":")[-1],
            family="file",
            format="onnx",
            sha256="b" * 64,
            inputs=(("input", (1, 3, 224, 224), "float32"),),
        ),
        "phases": PhaseTimings(
            worker_start_s=1.2,
            preflight_s=0.3,
            cold_load_s=0.8,
            first_call_ns=int(mean_ns * 3),
            warmup_iterations=120,
            warmup_s=0.05,
            warmup_steady=True,
            null_call_ns=60.0,
            harness_overhead_fraction=60.0 / mean_ns,
            harness_efficiency=0.999,
            measure_s=duration_s,
            total_s=duration_s + 3,
        ),
        "latency": summary,
        "throughput_items_per_s": thr,
        "converged": True,
        "memory": MemoryFigures(peak_rss_bytes=512 * 1024**2),
        "energy": energy,
        "arrays": {"latencies_ns": lat, "starts_ns": starts},
        "telemetry": {source: Trace(f"{domain} power", "W", t_tel, p_tel)} if n_telemetry else {},
    }
    if spec.scenario is Scenario.GENERATION:
        fields["arrays"] = {**fields["arrays"], "ttft_ns": lat // 4}
    fields.update(overrides)
    return RunResult(**fields)


def make_results(
    n: int, *, seed: int = 0, spec_overrides: dict[str, Any] | None = None, **overrides: Any
) -> list[RunResult]:
    """``n`` distinct runs cycling through cpu/cuda:0 × torch/onnxruntime (4 configurations,
    replicates from the 5th run on); ``spec_overrides`` and ``overrides`` apply to all."""
    out = []
    for i in range(n):
        spec_ov: dict[str, Any] = {
            "device": ("cpu", "cuda:0")[i % 2],
            "runtime": ("torch", "onnxruntime")[(i // 2) % 2],
            "repeat": i // 4,
        }
        spec_ov.update(spec_overrides or {})
        kw: dict[str, Any] = {"mean_ns": 250_000.0 * (1 + 0.1 * (i % 4))}
        kw.update(overrides)
        out.append(make_result(spec_overrides=spec_ov, seed=seed + i, **kw))
    return out


# -- database URLs for store tests: SQLite always, PostgreSQL when a server can be had ----------

PG_ENV = "WATTBENCH_TEST_PG_URL"  # a server to use instead of starting one
PG_SCRIPT = Path(__file__).with_name("postgres.sh")


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    """A PostgreSQL server for the session: $WATTBENCH_TEST_PG_URL, else a throw-away one that
    tests/postgres.sh starts from Debian's postgresql (stopped at the end); skipped, with the
    script's reason, where none can start."""
    given = os.environ.get(PG_ENV)
    if given:
        yield given
        return
    proc = subprocess.run(
        ["bash", str(PG_SCRIPT)], capture_output=True, text=True, timeout=120, check=False
    )
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in proc.stdout.splitlines()
        if line.startswith("export ")
    )
    if proc.returncode != 0 or PG_ENV not in exports:
        pytest.skip(f"no PostgreSQL server: {proc.stderr.strip() or 'the script failed'}")
    try:
        yield exports[PG_ENV]
    finally:
        stop = exports.get("WATTBENCH_TEST_PG_STOP")
        if stop:
            subprocess.run(["bash", "-c", stop], capture_output=True, timeout=60, check=False)


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'store.sqlite'}"


@contextlib.contextmanager
def fresh_pg_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the test server for one test; dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"wb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty run store: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    base = request.getfixturevalue("pg_base_url")
    with fresh_pg_database(base) as url:
        yield url
