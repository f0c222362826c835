"""The run store on SQLite and PostgreSQL: round trips, listing, tags, notes, deletion."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from wattbench.db.store import REMOTE_STALE_HOURS, Store, open_store
from wattbench.db.values import RunSummary, parse_time
from wattbench.domain.codec import to_document
from wattbench.domain.cost import CostProfile
from wattbench.domain.errors import BadInputError, StoreError, UnknownRunError
from wattbench.domain.result import RunResult, RunStatus, Trace, result_document
from wattbench.domain.spec import RunSpec

from tests.store_fixtures import make_result, make_results, store_url  # noqa: F401


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    s = open_store(store_url)
    yield s
    s.close()


def _same(a: RunResult, b: RunResult) -> None:
    """Every field equal, arrays element for element."""
    assert result_document(a) == result_document(b)
    assert set(a.arrays) == set(b.arrays)
    for k in a.arrays:
        assert a.arrays[k].dtype == b.arrays[k].dtype
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    assert set(a.telemetry) == set(b.telemetry)
    for k in a.telemetry:
        ta, tb = a.telemetry[k], b.telemetry[k]
        assert (ta.name, ta.unit) == (tb.name, tb.unit)
        np.testing.assert_array_equal(ta.t_ns, tb.t_ns)
        np.testing.assert_array_equal(ta.values, tb.values)


def test_round_trip_of_a_million_latencies_and_100k_telemetry(store: Store) -> None:
    r = make_result(n_latencies=1_000_000, n_telemetry=100_000, seed=7)
    rng = np.random.default_rng(1)
    extra = Trace(
        "GPU board power",
        "W",
        np.arange(100_000, dtype=np.int64) * 10_000_000,
        rng.normal(210.0, 4.0, 100_000),
    )
    r = r.with_(telemetry={**r.telemetry, "nvml.power": extra})
    assert r.arrays["latencies_ns"].size == 1_000_000
    store.save_run(r)
    back = store.get_run(r.id)
    _same(r, back)
    assert back.arrays["latencies_ns"].dtype == np.int64
    assert back.telemetry["nvml.power"].values.size == 100_000


def test_get_run_by_prefix_and_clear_errors(store: Store) -> None:
    a, b = make_result(id="abc123" + "0" * 26), make_result(id="abd456" + "0" * 26, seed=1)
    store.save_run(a)
    store.save_run(b)
    assert store.get_run("abc").id == a.id
    with pytest.raises(UnknownRunError, match="ambiguous"):
        store.get_run("ab")
    with pytest.raises(UnknownRunError, match="No run ffff"):
        store.get_run("ffff")
    with pytest.raises(UnknownRunError, match="letters, digits") as caught:
        store.get_run("a%")
    assert caught.value.exit_code == 2  # bad input, as the README's exit codes say


def test_begin_then_finish_records_running_then_done(store: Store) -> None:
    r = make_result(seed=3)
    store.begin_run(r.spec.with_(sweep_id="sweep-1"), r.id)
    [s] = store.list_runs()
    assert s.status is RunStatus.RUNNING and s.sweep_id == "sweep-1"
    assert store.get_run(r.id).arrays == {}
    with pytest.raises(StoreError, match="already stored"):
        store.begin_run(r.spec, r.id)
    with pytest.raises(StoreError, match="final status"):
        store.finish_run(r.with_(status=RunStatus.RUNNING))
    done = r.with_(spec=r.spec.with_(sweep_id="sweep-1"))
    store.finish_run(done)
    [s] = store.list_runs()
    assert s.status is RunStatus.DONE
    _same(done, store.get_run(r.id))


def test_list_runs_filters_and_returns_immutable_summaries(store: Store) -> None:
    runs = make_results(8)
    runs[5] = runs[5].with_(
        status=RunStatus.FAILED, reason="out of memory", latency=None, throughput_items_per_s=None
    )
    runs[6] = runs[6].with_(spec=runs[6].spec.with_(model="onnx-zoo:resnet50", tags=("nightly",)))
    for r in runs:
        store.save_run(r)
    all_ = store.list_runs()
    assert len(all_) == 8 and all(isinstance(s, RunSummary) for s in all_)
    with pytest.raises(dataclasses.FrozenInstanceError):
        all_[0].note = "x"
    assert [s.created_at for s in all_] == sorted((s.created_at for s in all_), reverse=True)
    assert {s.id for s in store.list_runs(device="cuda")} == {
        r.id for r in runs if r.spec.device == "cuda:0"
    }
    assert [s.id for s in store.list_runs(model="resnet50")] == [runs[6].id]
    assert [s.id for s in store.list_runs(tag="nightly")] == [runs[6].id]
    failed = store.list_runs(status="failed")
    assert [s.id for s in failed] == [runs[5].id]
    assert failed[0].reason == "out of memory" and failed[0].throughput_items_per_s is None
    since = datetime.fromisoformat(runs[3].created_at)
    until = datetime.fromisoformat(runs[5].created_at)
    assert {s.id for s in store.list_runs(since=since, until=until)} == {r.id for r in runs[3:6]}
    assert len(store.list_runs(limit=3)) == 3
    with pytest.raises(BadInputError, match="Unknown status"):
        store.list_runs(status="finished")
    s0 = next(s for s in all_ if s.id == runs[0].id)
    assert s0.throughput_items_per_s == pytest.approx(runs[0].throughput_items_per_s.value)
    assert s0.p99_ns == pytest.approx(runs[0].latency.percentile(0.99).value_ns)
    assert s0.hostname == "bench-host-1" and s0.energy_source == "rapl.package-0"
    assert to_document(s0)["status"] == "done"


def test_load_runs_keeps_the_order_asked(store: Store) -> None:
    runs = make_results(5)
    for r in runs:
        store.save_run(r)
    order = [runs[3].id, runs[0].id[:10], runs[4].id]
    loaded = store.load_runs(order)
    assert [r.id for r in loaded] == [runs[3].id, runs[0].id, runs[4].id]
    _same(runs[0], loaded[1])


def test_tags_notes_and_delete(store: Store) -> None:
    runs = make_results(3)
    for r in runs:
        store.save_run(r)
    store.add_tag(runs[0].id, "baseline")
    store.add_tag(runs[0].id, "baseline")  # idempotent
    store.add_tag(runs[1].id[:8], "baseline")
    assert {s.id for s in store.list_runs(tag="baseline")} == {runs[0].id, runs[1].id}
    store.remove_tag(runs[1].id, "baseline")
    assert store.get_run(runs[0].id).spec.tags == ("baseline",)
    assert store.get_run(runs[1].id).spec.tags == ()
    with pytest.raises(BadInputError, match="Tag"):
        store.add_tag(runs[0].id, "   ")
    store.set_note(runs[2].id, "fan was loud <b>")
    assert store.get_run(runs[2].id).notes == "fan was loud <b>"
    assert store.list_runs(model=None)[0].note in ("", "fan was loud <b>")
    with pytest.raises(UnknownRunError, match="No run"):
        store.delete_runs([runs[0].id, "feedfeed"])
    assert len(store.list_runs()) == 3  # all resolve or nothing goes
    assert store.delete_runs([runs[0].id, runs[1].id[:9]]) == 2
    assert [s.id for s in store.list_runs()] == [runs[2].id]
    with pytest.raises(UnknownRunError):
        store.get_run(runs[0].id)


def test_non_finite_numbers_are_stored_as_null_and_read_as_unknown(store: Store) -> None:
    r = make_result()
    assert r.latency is not None
    r = r.with_(latency=dataclasses.replace(r.latency, r1=float("nan"), cv=float("inf")))
    store.save_run(r)
    with store.engine.connect() as conn:  # JSON and PostgreSQL have no NaN: null on disk
        doc = conn.exec_driver_sql("SELECT result FROM runs").scalar()
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc["latency"]["r1"] is None and doc["latency"]["cv"] is None
    back = store.get_run(r.id)  # ...and NaN (unknown) in memory, never 0
    assert back.latency is not None and math.isnan(back.latency.r1)
    assert math.isnan(back.latency.cv) and back.latency.mean_ns == r.latency.mean_ns


def test_cost_profiles(store: Store) -> None:
    p = CostProfile(
        device="cuda:0",
        name="lab",
        purchase_price_usd=1600.0,
        amortization_years=3.0,
        electricity_usd_per_kwh=0.3,
        pue=1.2,
    )
    store.save_cost_profile(p)
    store.save_cost_profile(CostProfile(device="cpu", cloud_usd_per_hour=0.4))
    assert store.list_cost_profiles() == [CostProfile(device="cpu", cloud_usd_per_hour=0.4), p]
    store.save_cost_profile(dataclasses.replace(p, pue=1.5))
    assert store.list_cost_profiles("cuda:0")[0].pue == 1.5
    assert store.delete_cost_profile("cuda:0", "lab") is True
    assert store.delete_cost_profile("cuda:0", "lab") is False
    assert [c.device for c in store.list_cost_profiles()] == ["cpu"]


def test_describe_names_the_store(store: Store) -> None:
    store.save_run(make_result())
    text = store.describe()
    assert "schema 0003" in text and "1 run)" in text


# -- SQLite specifics ------------------------------------------------------------------------


def test_default_store_is_a_wal_sqlite_file_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTBENCH_DATA_DIR", str(tmp_path / "data"))
    with open_store() as s:
        s.save_run(make_result())
        assert str(tmp_path / "data" / "wattbench.sqlite") in s.describe()
    con = sqlite3.connect(tmp_path / "data" / "wattbench.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    monkeypatch.setenv("WATTBENCH_DB", str(tmp_path / "other.db"))
    with open_store() as s:
        assert s.list_runs() == []
    assert (tmp_path / "other.db").exists()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "s.sqlite")) as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_bad_url_and_unwritable_folder_give_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="database"):
        open_store("nosuchdriver://x/y")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="does not exist") as caught:
        open_store(str(blocker / "sub" / "s.sqlite"))  # a store the user named: not created
    assert caught.value.exit_code == 2
    os.environ["WATTBENCH_DATA_DIR"] = str(blocker / "sub")  # the default folder: made if it can
    with pytest.raises(StoreError, match="Cannot create the folder"):
        open_store()


def test_run_of_another_live_process_is_not_marked_interrupted(tmp_path: Path) -> None:
    url = str(tmp_path / "s.sqlite")
    spec = RunSpec(model="builtin:mlp-small")
    with open_store(url) as s:
        s.begin_run(spec, "a" * 32)
    with open_store(url) as s:  # same (live) process: still running
        assert s.get_run("a" * 32).status is RunStatus.RUNNING
        with s.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET writer_pid = 999999999")
    with open_store(url) as s:  # its writer is gone
        r = s.get_run("a" * 32)
        assert r.status is RunStatus.INTERRUPTED
        assert "stopped before it finished" in (r.reason or "")


def test_listing_energy_uses_the_device_aggregate_without_double_counting(store: Store) -> None:
    r = make_result()
    part = r.energy[0]
    aggregate = dataclasses.replace(part, domain="device", source="sum(rapl.package-0)")
    system = dataclasses.replace(part, domain="system", device="node", source="sum(all)")
    store.save_run(r.with_(energy=(part, aggregate, system)))
    [s] = store.list_runs()
    assert s.energy_per_item_j == pytest.approx(part.energy_per_item_j)
    assert s.energy_source == "sum(rapl.package-0)"
    r2 = make_result(seed=5)  # no aggregate: the device's own domains
    store.save_run(r2)
    s2 = next(x for x in store.list_runs() if x.id == r2.id)
    assert s2.energy_per_item_j == pytest.approx(r2.energy[0].energy_per_item_j)


def test_save_runs_inserts_new_and_replaces_known_runs_in_one_go(store: Store) -> None:
    runs = make_results(6)
    store.save_run(runs[0].with_(notes="old"))
    tagged = runs[1].with_(spec=runs[1].spec.with_(tags=("imported", "gpu")))
    batch = [runs[0].with_(notes="new"), tagged, *runs[2:]]
    assert store.save_runs(batch) == 6
    assert store.count_runs() == 6
    assert store.get_run(runs[0].id).notes == "new"
    assert store.get_run(runs[1].id).spec.tags == ("gpu", "imported")
    for r in runs[2:]:
        _same(r, store.get_run(r.id))
    # the same id twice in one batch: stored once, the last copy wins
    twice = make_result(seed=50)
    store.save_runs([twice.with_(notes="first"), twice.with_(notes="second")])
    assert store.get_run(twice.id).notes == "second"
    assert store.count_runs() == 7


def test_parse_time_takes_ages_and_iso_dates() -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now=now) == datetime(2025, 6, 1, 10, 0)
    assert parse_time("1.5d", now=now) == datetime(2025, 5, 31, 0, 0)
    assert parse_time("2025-01-31T08:00+02:00") == datetime(2025, 1, 31, 6, 0)
    with pytest.raises(BadInputError, match="age such as"):
        parse_time("last tuesday")


def test_run_left_running_on_another_host_is_interrupted_once_stale(tmp_path: Path) -> None:
    url = str(tmp_path / "s.sqlite")
    with open_store(url) as s:
        s.begin_run(RunSpec(model="builtin:mlp-small"), "b" * 32)
        with s.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET writer_host = 'other-host'")
        assert s.mark_interrupted() == []  # fresh: its host may still be measuring
        later = datetime.now(UTC) + timedelta(hours=REMOTE_STALE_HOURS + 1)
        assert s.mark_interrupted(now=later) == ["b" * 32]
        assert s.get_run("b" * 32).status is RunStatus.INTERRUPTED


def test_runs_on_one_host_share_one_machine(fake_plugins: Path, tmp_path: Path) -> None:
    """Each run's worker is a new process at another moment (pid, load, free memory); the
    machine is one row all the same, and each run keeps its own whole description."""
    from sqlalchemy import func, select
    from wattbench.cli.main import main
    from wattbench.db.schema import Machine

    db = str(tmp_path / "runs.sqlite")
    args = ["--db", db, "run", "--model", "builtin:mlp-tiny", "--runtime", "fake"]
    args += ["--preset", "quick", "--t-max", "1", "--no-idle", "--no-memory", "--repeat", "2"]
    assert main(args) == 0
    assert main(args) == 0
    with open_store(db) as s:
        runs = s.load_runs(s.run_ids())
        assert len(runs) == 4
        pids = {r.system["worker_process"]["pid"] for r in runs}
        assert len(pids) == 4  # four workers of two commands: what used to make four machines
        with s.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Machine)).scalar_one() == 1
