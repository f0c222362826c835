"""The micro-batch search: the real search (engine/microbatch.py) in a real run's worker, on
the test runtime's trainer, whose fake device holds a known number of tokens per micro-batch
and runs out of memory beyond it, as a GPU's allocator does."""

from __future__ import annotations

from pathlib import Path

import pytest
from wattbench.cli.run_output import micro_batch_search_text
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunStatus
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.engine.runner import run_one

SEQ = 16


def _spec(batch: int, **kw: object) -> RunSpec:
    return RunSpec(
        model="builtin:gpt-small",
        runtime="fake",
        scenario=Scenario.TRAINING,
        batch_size=batch,
        prompt_tokens=SEQ,
        find_micro_batch=True,
        preset="quick",
        t_max_s=1.0,
        idle_baseline=False,
        memory_pass=False,
        **kw,  # type: ignore[arg-type]
    )


def test_the_search_doubles_then_bisects_to_the_largest_that_fits(
    fake_plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTBENCH_FAKE_ITEM_US", "20")
    monkeypatch.setenv("WATTBENCH_FAKE_MEMORY_TOKENS", str(44 * SEQ))  # 44 sequences fit
    r = run_one(_spec(3))
    assert r.status is RunStatus.DONE, r.reason
    t = r.training
    assert t is not None and t.micro_batch == 44
    # 3, 6, 12, 24, 48 (out of memory), then between 24 and 48
    sizes = [n for n, _ in t.micro_batch_tries]
    assert sizes[:5] == [3, 6, 12, 24, 48] and not dict(t.micro_batch_tries)[48]
    assert dict(t.micro_batch_tries)[44] and not dict(t.micro_batch_tries)[45]
    assert all(ok == (n <= 44) for n, ok in t.micro_batch_tries)
    assert t.tokens_per_step == 44 * SEQ
    assert r.spec.label().endswith("train s16 mb max")
    shown = micro_batch_search_text(t.micro_batch_tries)
    assert shown.startswith("micro-batch search: 3 fits, 6 fits") and "48 out of memory" in shown
    assert shown.endswith("→ 44 sequences (the largest that fit)")


def test_nothing_fits_is_refused_with_what_to_do(
    fake_plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTBENCH_FAKE_MEMORY_TOKENS", str(SEQ - 1))
    r = run_one(_spec(1))
    assert r.status is RunStatus.FAILED and r.error_kind == "bad_input"
    assert "Not even a micro-batch of 1 sequence(s) fits" in (r.reason or "")
    assert "--activation-checkpointing" in (r.reason or "")


def test_the_torch_runtime_does_not_search_on_the_cpu() -> None:
    spec = RunSpec(model="builtin:gpt-small", scenario=Scenario.TRAINING, find_micro_batch=True)
    with pytest.raises(BadInputError, match="host's memory"):
        run_one(spec)
