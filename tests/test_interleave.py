"""Replicates run in rounds: each round runs every configuration once, in an order shuffled
by a seed recorded in the plan and in every run, so a drift of the host spreads over the
configurations being compared instead of landing between them (A B | B A, never A A B B).

Planning needs no runtime loaded; the one measured sweep goes through the fake runtime of
tests/plugins and the real CLI, workers and store.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from wattbench.cli.cmd_run import request_from
from wattbench.cli.main import build_parser, main
from wattbench.cli.run_order import print_order
from wattbench.domain.codec import from_document, to_document
from wattbench.domain.errors import BadInputError
from wattbench.domain.spec import RunSpec, expand_sweep, interleave
from wattbench.service.plan import plan_runs
from wattbench.service.request import RunRequest

BASE = RunSpec(model="builtin:mlp-tiny")
SWEEP: dict[str, Any] = dict(runtimes=["torch", "onnxruntime"], batch_sizes=[1, 8])


def _order(specs: list[RunSpec]) -> list[tuple[object, ...]]:
    return [s.config_key() for s in specs]


def _rounds(specs: list[RunSpec] | tuple[RunSpec, ...]) -> list[list[tuple[object, ...]]]:
    """The configurations of each round, as the specs record them (``repeat`` = round)."""
    rounds: dict[int, list[tuple[object, ...]]] = {}
    for spec in specs:
        rounds.setdefault(spec.repeat, []).append(spec.config_key())
    return [rounds[r] for r in sorted(rounds)]


# -- the order ----------------------------------------------------------------------------------


def test_replicates_run_in_rounds_each_with_every_configuration_once() -> None:
    specs = expand_sweep(BASE, **SWEEP, repeats=3, seed=7)
    configs = {s.config_key() for s in specs}
    assert len(specs) == 12 and len(configs) == 4
    # round r is runs 4r .. 4r+3: every configuration once, before any runs again
    for r in range(3):
        block = specs[4 * r : 4 * r + 4]
        assert {s.config_key() for s in block} == configs
        assert [s.repeat for s in block] == [r] * 4
        assert [s.position for s in block] == [0, 1, 2, 3]
    assert {s.order_seed for s in specs} == {7}
    assert Counter(_order(specs)) == {c: 3 for c in configs}


def test_the_seed_shuffles_each_round_and_repeats_the_order() -> None:
    first = expand_sweep(BASE, **SWEEP, repeats=3, seed=2024)
    assert _order(first) == _order(expand_sweep(BASE, **SWEEP, repeats=3, seed=2024))
    # another seed, another order; within one plan the rounds differ from one another too
    orders = {tuple(_order(expand_sweep(BASE, **SWEEP, repeats=3, seed=s))) for s in range(8)}
    assert len(orders) == 8
    rounds = {tuple(r) for s in range(8) for r in _rounds(expand_sweep(BASE, **SWEEP, seed=s))}
    assert len(rounds) > 1  # not one fixed order, merely repeated
    # no seed: every round in the listed order (devices × runtimes × ... × batch sizes)
    plain = expand_sweep(BASE, **SWEEP, repeats=2)
    listed = [("torch", 1), ("torch", 8), ("onnxruntime", 1), ("onnxruntime", 8)]
    assert [(s.runtime, s.batch_size) for s in plain] == listed * 2
    assert {s.order_seed for s in plain} == {None}


def test_what_cannot_order_is_refused() -> None:
    with pytest.raises(BadInputError, match="at least 1") as caught:
        interleave([BASE], 0, 1)
    assert caught.value.field == "repeat"
    with pytest.raises(BadInputError, match="order seed") as caught:
        interleave([BASE], 2, -1)
    assert caught.value.field == "order_seed"


def test_a_run_document_without_an_order_still_decodes() -> None:
    """Runs stored before the order was recorded have no position and no seed."""
    doc = to_document(expand_sweep(BASE, **SWEEP, repeats=2, seed=5)[5])
    assert (doc["repeat"], doc["position"], doc["order_seed"]) == (1, 1, 5)
    for name in ("position", "order_seed"):
        del doc[name]
    old = from_document(doc, RunSpec)
    assert (old.repeat, old.position, old.order_seed) == (1, 0, None)


# -- the plan: default replicates, the seed -----------------------------------------------------


def test_a_comparison_defaults_to_two_replicates_and_one_is_allowed() -> None:
    request = RunRequest(model="builtin:mlp-tiny", runtimes=("torch", "onnxruntime"))
    plan = plan_runs(request)
    assert (len(plan.specs), plan.configurations, plan.replicates) == (4, 2, 2)
    assert plan.replicates_defaulted and plan.order_seed is not None
    assert [sorted(r) for r in _rounds(plan.specs)] == [
        sorted({s.config_key() for s in plan.specs})
    ] * 2
    assert {s.order_seed for s in plan.specs} == {plan.order_seed}
    assert {s.sweep_id for s in plan.specs} == {plan.sweep_id}
    once = plan_runs(
        RunRequest(model="builtin:mlp-tiny", runtimes=("torch", "onnxruntime"), repeats=1)
    )
    assert len(once.specs) == 2 and once.replicates == 1 and not once.replicates_defaulted
    # a single configuration keeps one run, with nothing to order
    (single,) = plan_runs(RunRequest(model="builtin:mlp-tiny")).specs
    assert single.sweep_id is None and single.order_seed is None and single.position == 0
    three = plan_runs(RunRequest(model="builtin:mlp-tiny", repeats=3))
    assert [s.repeat for s in three.specs] == [0, 1, 2]


def test_the_plans_seed_reproduces_its_order() -> None:
    request = RunRequest(
        model="builtin:mlp-tiny", runtimes=("torch", "onnxruntime"), batch_sizes=(1, 4, 8)
    )
    plan = plan_runs(request)
    again = plan_runs(replace(request, order_seed=plan.order_seed))
    assert _order(list(again.specs)) == _order(list(plan.specs))
    assert again.sweep_id != plan.sweep_id  # another sweep, the same order


def test_the_command_line_defaults_and_says_the_order_before_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def plan(*extra: str) -> Any:
        argv = ["run", "--model", "builtin:mlp-tiny", "--device", "cpu", *extra]
        return plan_runs(request_from(build_parser().parse_args(argv)))

    compare = plan("--runtime", "torch,onnxruntime", "--order-seed", "11")
    assert len(compare.specs) == 4 and len(compare.rounds) == 2 and compare.order_seed == 11
    assert len(plan("--runtime", "torch,onnxruntime", "--repeat", "1").specs) == 2
    assert len(plan().specs) == 1 and len(plan("--repeat", "3").specs) == 3
    print_order(compare)
    err = capsys.readouterr().err
    assert "4 runs: 2 configurations × 2 replicates (the default for a comparison)" in err
    assert "in 2 rounds" in err and "order seed 11" in err
    names = [[s.runtime for s in r] for r in compare.rounds]
    assert f"round 1: {', '.join(names[0])}" in err
    assert f"round 2: {', '.join(names[1])}" in err
    assert "--order-seed 11" in err
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["run", "--model", "builtin:mlp-tiny", "--order-seed", "x"])
    assert exited.value.code == 2
    assert "--order-seed: give a whole number" in capsys.readouterr().err


# -- measured: the stored runs carry their order ---------------------------------------------------


def test_the_runs_run_and_are_stored_in_rounds(
    fake_plugins: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "runs.sqlite")
    argv = ["--db", db, "run", "--model", "builtin:mlp-tiny", "--runtime", "fake"]
    argv += ["--precision", "fp32,fp16", "--preset", "quick", "--t-max", "1", "--threads", "1"]
    argv += ["--no-idle", "--no-memory", "--order-seed", "3", "--json"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    seeded = expand_sweep(
        RunSpec(model="builtin:mlp-tiny", runtime="fake"),
        precisions=["fp32", "fp16"],
        repeats=2,
        seed=3,
    )
    expected = [(s.precision, s.repeat, s.position) for s in seeded]
    ran = [
        (r["spec"]["precision"], r["spec"]["repeat"], r["spec"]["position"]) for r in doc["runs"]
    ]
    assert ran == expected  # executed in the seeded rounds, default 2 replicates
    assert [rep for _, rep, _ in ran] == [0, 0, 1, 1]
    assert (
        {p for p, rep, _ in ran if rep == 0}
        == {p for p, rep, _ in ran if rep == 1}
        == {
            "fp32",
            "fp16",
        }
    )
    assert {r["spec"]["order_seed"] for r in doc["runs"]} == {3}
    assert doc["plan"] == {
        "runs": 4,
        "configurations": 2,
        "replicates": 2,
        "order_seed": 3,
        "rounds": [[p for p, rep, _ in expected if rep == r] for r in (0, 1)],
    }
    from wattbench.db.store import open_store

    with open_store(db) as store:
        stored = {r.id: r.spec for r in store.load_runs(store.run_ids())}
    assert len(stored) == 4
    for r in doc["runs"]:
        spec = stored[r["id"]]
        assert (spec.precision, spec.repeat, spec.position, spec.order_seed) == (
            r["spec"]["precision"],
            r["spec"]["repeat"],
            r["spec"]["position"],
            3,
        )
