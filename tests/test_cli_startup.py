"""What the CLI's own process loads before a run's worker starts: only the asked command's
module, and no torch to check a CPU run (its worker imports torch anyway)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from wattbench.backends.runtimes.registry import get_runtime
from wattbench.backends.runtimes.torch_rt import TorchRuntime
from wattbench.cli import main
from wattbench.domain.errors import BadInputError, UnsupportedOptionError
from wattbench.domain.spec import RunSpec
from wattbench.engine.validate import validate


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def test_the_command_table_names_what_each_module_registers() -> None:
    assert _commands(main.build_parser()) == [n for ns in main.COMMANDS.values() for n in ns]
    for module, names in main.COMMANDS.items():
        for name in names:
            assert main.command_of(["-v", "--db", "x.sqlite", name, "--json"]) == name
            assert _commands(main.build_parser(name)) == list(names), module


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["--help"], None),
        ([], None),
        (["--db", "run", "runs"], "runs"),  # --db takes the next word as its value
        (["--db=run.sqlite", "show", "abc"], "show"),
        (["-vv", "nonsense"], "nonsense"),
    ],
)
def test_command_of(argv: list[str], command: str | None) -> None:
    assert main.command_of(argv) == command


def test_an_unknown_command_is_refused_with_the_full_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main.main(["nonsense"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "compare" in err and "run" in err


_RUN_PARENT = """
import sys
from wattbench.cli import main
parser = main.build_parser(main.command_of(sys.argv[1:]))
args = parser.parse_args(sys.argv[1:])
from wattbench.cli.cmd_run import request_from
from wattbench.service.plan import check_plan, plan_runs
check_plan(plan_runs(request_from(args)))
others = [m for m in sys.modules if m.startswith("wattbench.cli.cmd_")]
others.remove("wattbench.cli.cmd_run")
print(",".join(others), "torch" in sys.modules)
"""


def test_a_cpu_run_is_parsed_and_checked_without_other_commands_or_torch() -> None:
    argv = ["run", "--model", "builtin:mlp-tiny", "--runtime", "torch", "--threads", "1"]
    out = subprocess.run(
        [sys.executable, "-c", _RUN_PARENT, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]  # no other command module, torch not imported


def test_the_torch_runtime_still_refuses_what_cannot_run_on_the_cpu() -> None:
    rt = get_runtime("torch")
    assert isinstance(rt, TorchRuntime)
    assert rt.available().ok and rt.available().version
    with pytest.raises(BadInputError, match="takes no index"):
        validate(RunSpec(model="builtin:mlp-tiny", runtime="torch", device="cpu:1"))
    with pytest.raises(UnsupportedOptionError, match="logical CPUs"):
        validate(RunSpec(model="builtin:mlp-tiny", runtime="torch", threads=100_000))
    with pytest.raises(UnsupportedOptionError, match="onnxruntime"):
        validate(RunSpec(model="onnx-zoo:squeezenet", runtime="torch"))
