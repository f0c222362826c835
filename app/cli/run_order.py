"""The order of a sweep's runs as ``wattbench run`` states it: before the runs start (stderr),
in ``--json`` (the ``plan`` object of docs/cli-json.md), and the ``--order-seed`` argument.

The order itself is the service plan's (``RunPlan``): replicates in rounds, each round running
every configuration once, shuffled by a seed recorded in the plan and in every run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wattbench.domain.spec import MAX_ORDER_SEED
from wattbench.service.request import RunPlan, configuration_names


def order_seed_arg(text: str) -> int:
    """``--order-seed``: a whole number within what a plan records."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_ORDER_SEED:
        raise argparse.ArgumentTypeError(
            f"give a whole number from 0 to {MAX_ORDER_SEED} (got {text!r})"
        )
    return seed


def print_order(plan: RunPlan) -> None:
    """Say, before anything runs, how many runs there will be and in what order (stderr)."""
    if len(plan.specs) < 2:
        return
    print(f"wattbench: {len(plan.specs)} runs: {plan.order_summary()}", file=sys.stderr)
    for line in plan.order_lines():
        print(f"  {line}", file=sys.stderr)
    if plan.configurations > 1:
        print(
            f"  (--repeat N sets the runs per configuration; --order-seed {plan.order_seed} "
            "runs them in this order again)",
            file=sys.stderr,
        )


def order_document(plan: RunPlan | None) -> dict[str, Any] | None:
    """The plan's order for ``--json`` (docs/cli-json.md): its seed, and each round's
    configurations in the order they run."""
    if plan is None:
        return None
    names = configuration_names(plan.specs)
    return {
        "runs": len(plan.specs),
        "configurations": plan.configurations,
        "replicates": plan.replicates,
        "order_seed": plan.order_seed,
        "rounds": [[names[s.config_key()] for s in runs] for runs in plan.rounds],
    }
