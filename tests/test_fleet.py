"""A fleet on this machine: a real Dask scheduler and three named agents, each its own process
with its own fake sysfs tree (tests/fleet_fixtures.py), running the test runtime. A plan goes
to every host through the service (``FleetRun``) and through ``wattbench run --on``; every
result lands in one store with its host; hosts keep in step round by round; cancel reaches a
remote run; an agent killed mid-run makes a failed run with the reason while the others finish.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from wattbench.cli.main import main
from wattbench.domain.errors import BadInputError, FleetError
from wattbench.domain.events import Phase
from wattbench.domain.result import RunStatus
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.compare import compare_runs
from wattbench.service.fleet import FleetRun
from wattbench.service.fleet_link import Fleet, TlsFiles, parse_hosts, scheduler_address
from wattbench.service.plan import plan_runs
from wattbench.service.queue import EventKind, ItemState, QueueEvent
from wattbench.service.request import RunRequest
from wattbench.service.workbench import Workbench

from tests.fleet_fixtures import FleetProcs, fleet3, host_trees, start_agent  # noqa: F401

QUICK = {"preset": "quick", "t_max_s": 1.5, "idle_baseline": False, "memory_pass": False}


def _plan(repeats: int = 1, **kw: object) -> list[RunSpec]:
    request = RunRequest(
        model="builtin:mlp-small",
        runtimes=("fake",),
        repeats=repeats,
        **(QUICK | kw),  # type: ignore[arg-type]
    )
    return list(plan_runs(request).specs)


class Events:
    """What the queues said, in the order they said it (from every host's thread)."""

    def __init__(self) -> None:
        self.seen: list[QueueEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: QueueEvent) -> None:
        with self.lock:
            self.seen.append(event)


# -- without a fleet -----------------------------------------------------------------------


def test_addresses_hosts_and_tls_files_are_checked(tmp_path: Path) -> None:
    assert scheduler_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("10.0.0.5:8786", "http://h:1", "tcp://h:99999", "tcp://h"):
        with pytest.raises(BadInputError) as err:
            scheduler_address(bad)
        assert err.value.field == "scheduler"
    with pytest.raises(BadInputError, match="WATTBENCH_SCHEDULER"):
        scheduler_address(None)
    assert parse_hosts(" a, b ,a") == ("a", "b", "a")
    with pytest.raises(BadInputError):
        parse_hosts(" , ")
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    with pytest.raises(BadInputError, match="--tls-cert, --tls-key"):
        TlsFiles.given(str(pem), None, None)
    with pytest.raises(BadInputError, match="is not there"):
        TlsFiles.given(str(pem), str(pem), str(tmp_path / "missing.pem"))
    with pytest.raises(BadInputError):
        RunSpec(model="builtin:mlp-small", host="two words")


def test_runs_of_one_configuration_on_two_hosts_are_two_configurations() -> None:
    a = RunSpec(model="builtin:mlp-small", host="xeon")
    b = a.with_(host="arm")
    assert a.config_key() != b.config_key()
    assert a.label().startswith("@xeon · ") and b.label().startswith("@arm · ")
    assert RunSpec(model="builtin:mlp-small").config_key() != a.config_key()


# -- a real fleet --------------------------------------------------------------------------


def test_hosts_are_listed_with_their_devices_and_power(
    fleet3: FleetProcs,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Fleet.connect(fleet3.address) as fleet:
        hosts = {h.name: h for h in fleet.hosts(fresh=True)}
        assert set(hosts) == {"xeon", "epyc", "arm"}
        with pytest.raises(BadInputError, match=r"Not connected to the scheduler: sparc"):
            fleet.choose(["xeon", "sparc"])
        assert [h.name for h in fleet.choose(["arm", "xeon", "arm"])] == ["arm", "xeon"]
    xeon, arm = hosts["xeon"].inventory, hosts["arm"].inventory
    assert xeon is not None and arm is not None
    # the xeon agent reads its fake tree's two RAPL packages; the arm one's tree has none (all
    # three have the test's wall meter, a plugin installed on each)
    rapl = {
        h: [p.name for p in i.power if p.ok and "package" in p.name]
        for h, i in (("xeon", xeon), ("arm", arm))
    }
    assert len(rapl["xeon"]) >= 2 and rapl["arm"] == [], rapl
    cpu = next(d for d in xeon.devices if d.id == "cpu")
    assert "fake" in cpu.runtimes and any("package-1" in p for p in cpu.power)

    assert main(["fleet", "hosts", "--scheduler", fleet3.address, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "wattbench.fleet-hosts"
    assert sorted(h["name"] for h in doc["hosts"]) == ["arm", "epyc", "xeon"]
    assert main(["fleet", "hosts", "--scheduler", fleet3.address]) == 0
    shown = capsys.readouterr().out
    assert "3 hosts at" in shown and "\nxeon  (" in shown


def test_a_plan_on_every_host_lands_in_one_store_round_by_round(
    fleet3: FleetProcs,  # noqa: F811
    fake_plugins: Path,
    tmp_path: Path,
) -> None:
    wb = Workbench.open(str(tmp_path / "fleet.db"))
    events = Events()
    specs = _plan(repeats=2)
    with Fleet.connect(fleet3.address) as fleet:
        names = [h.name for h in fleet.choose(["all"])]
        run = FleetRun(fleet, names, wb, events)
        run.submit(specs)
        items = run.run_all()
        # a host that ran runs still says what it has
        assert all(h.inventory is not None for h in fleet.hosts(fresh=True))
    assert len(items) == 3 * len(specs) == 6
    assert all(it.state is ItemState.DONE and it.stored for it in items), [
        (it.spec.host, it.reason) for it in items
    ]
    stored = wb.load_runs([it.run_id for it in items], with_arrays=False)
    assert sorted(r.spec.host or "" for r in stored) == sorted(names * 2)
    # each host's system description is stored as a local run's is; the measuring worker ran
    # with the host's own environment, not the one Dask's nanny gives its worker process
    # (which sets OMP_NUM_THREADS=1 where the host sets none)
    by_host = {r.spec.host: r for r in stored}
    assert by_host["xeon"].system["thread_env"].get("OMP_NUM_THREADS") == "2"
    for host in ("epyc", "arm"):
        env = by_host[host].system["thread_env"]
        assert "OMP_NUM_THREADS" not in env and "OPENBLAS_NUM_THREADS" not in env, env
    # round by round: every host ended round 1 before any host began round 2
    order = [(e.kind, e.item.spec.repeat) for e in events.seen if e.kind is not EventKind.PROGRESS]
    last_end_of_first = max(
        i for i, (k, r) in enumerate(order) if k is EventKind.FINISHED and r == 0
    )
    first_start_of_second = min(
        i for i, (k, r) in enumerate(order) if k is EventKind.STARTED and r == 1
    )
    assert last_end_of_first < first_start_of_second
    # and side by side: the three hosts' first runs were all under way before any ended
    first_three = [k for k, r in order if k is not EventKind.QUEUED][:3]
    assert first_three == [EventKind.STARTED] * 3
    # progress came back from the remote runs while they measured
    assert any(e.progress and e.progress.phase == Phase.MEASURING for e in events.seen)
    # compared, each host is its own configuration
    view = compare_runs(stored)
    assert sorted(g.label.split(" · ")[0] for g in view.groups) == ["@arm", "@epyc", "@xeon"]
    wb.close()


def test_run_on_from_the_command_line(
    fleet3: FleetProcs,  # noqa: F811
    fake_plugins: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = str(tmp_path / "cli.db")
    argv = ["--db", db, "run", "--model", "builtin:mlp-small", "--runtime", "fake"]
    argv += ["--preset", "quick", "--t-max", "1.5", "--no-idle", "--no-memory", "--json"]
    assert main([*argv, "--on", "epyc,arm", "--scheduler", fleet3.address]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(r["spec"]["host"] for r in doc["runs"]) == ["arm", "epyc"]
    assert doc["store"]["saved"] == 2
    # an unknown host is bad input, said before anything runs
    assert main([*argv, "--on", "epyc,sparc", "--scheduler", fleet3.address]) == 2
    err = capsys.readouterr().err
    assert "Not connected to the scheduler: sparc" in err and "xeon" in err


def test_cancel_reaches_the_remote_run(
    fleet3: FleetProcs,  # noqa: F811
    fake_plugins: Path,
    tmp_path: Path,
) -> None:
    wb = Workbench.open(str(tmp_path / "cancel.db"))
    measuring = threading.Event()

    def listener(event: QueueEvent) -> None:
        if event.progress is not None and event.progress.phase == Phase.MEASURING:
            measuring.set()

    with Fleet.connect(fleet3.address) as fleet:
        run = FleetRun(fleet, ["epyc"], wb, listener)
        # a server run at a fixed rate, measured for a minute unless stopped
        run.submit(_plan(scenario=Scenario.SERVER, target_rate=50.0, t_max_s=60.0, epsilon=1e-6))
        done: list[object] = []
        runner = threading.Thread(target=lambda: done.append(run.run_all()))
        runner.start()
        assert measuring.wait(60), "the remote run never reported measuring"
        cancelled_at = time.monotonic()
        run.cancel_all()
        runner.join(60)
        took_s = time.monotonic() - cancelled_at
    assert not runner.is_alive()
    (item,) = run.items()
    assert item.state is ItemState.CANCELLED and item.stored, item.reason
    print(f"cancel to cancelled result back: {took_s:.2f} s")
    assert took_s < 30  # far less than the run's minute: the remote run stopped
    assert wb.get_run(item.run_id, with_arrays=False).status is RunStatus.CANCELLED
    wb.close()


def test_an_agent_killed_mid_run_fails_its_run_and_the_others_finish(
    fleet3: FleetProcs,  # noqa: F811
    fake_plugins: Path,
    tmp_path: Path,
) -> None:
    doomed = start_agent(fleet3, tmp_path, "doomed", host_trees(tmp_path)["arm"])
    wb = Workbench.open(str(tmp_path / "killed.db"))
    measuring = threading.Event()

    def listener(event: QueueEvent) -> None:
        p = event.progress
        if event.item.spec.host == "doomed" and p is not None and p.phase == Phase.MEASURING:
            measuring.set()

    try:
        with Fleet.connect(fleet3.address) as fleet:
            run = FleetRun(fleet, ["doomed", "epyc"], wb, listener)
            run.submit(_plan(repeats=2, t_max_s=4.0, epsilon=1e-6))
            runner = threading.Thread(target=run.run_all)
            runner.start()
            assert measuring.wait(60), "the doomed host never measured"
            doomed.kill()
            runner.join(120)
            assert not runner.is_alive()
    finally:
        doomed.kill()
        del fleet3.agents["doomed"]
    items = run.items()
    lost = [it for it in items if it.spec.host == "doomed"]
    kept = [it for it in items if it.spec.host == "epyc"]
    assert lost[0].state is ItemState.FAILED and "left the fleet mid-run" in (lost[0].reason or "")
    # its next round cannot start there: failed with why, not left waiting
    assert lost[1].state is ItemState.FAILED and "not connected" in (lost[1].reason or "")
    assert all(it.state is ItemState.DONE for it in kept), [it.reason for it in kept]
    assert all(it.stored for it in items)
    failed = wb.get_run(lost[0].run_id, with_arrays=False)
    assert failed.status is RunStatus.FAILED and "mid-run" in (failed.reason or "")
    wb.close()


def test_a_scheduler_that_is_not_there_says_what_to_do() -> None:
    with pytest.raises(FleetError, match="wattbench scheduler"):
        Fleet.connect("tcp://127.0.0.1:9", timeout_s=2.0)
