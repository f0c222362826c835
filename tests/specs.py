"""Run specs for tests: a quick, small run (no idle baseline, no memory pass, one thread)."""

from __future__ import annotations

from typing import Any

from wattbench.domain.spec import RunSpec

QUICK_SETTINGS: dict[str, Any] = dict(
    preset="quick",
    t_max_s=1.0,
    threads=1,
    idle_baseline=False,
    memory_pass=False,
    time_limit_s=120.0,
)


def quick_spec(model: str = "builtin:mlp-tiny", **kw: Any) -> RunSpec:
    """A quick run of ``model``; ``kw`` sets or overrides any RunSpec field."""
    return RunSpec(**{"model": model, **QUICK_SETTINGS, **kw})
