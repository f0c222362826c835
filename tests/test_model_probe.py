"""No model file from someone else is parsed in the app's own process (backends/models/probe).

Each test builds a hostile file (tests/hostile_models.py) and hands it to the real front-end
calls: ``wattbench models FILE`` and ``wattbench run --model FILE`` through the CLI's main(),
the service's describe_model. A torch.export archive whose pickle would touch a marker file
is refused unopened; a TorchScript file whose load never returns is stopped at the probe's
time limit (set short here through its environment variable), Ctrl-C kills it; an archive
that inflates to 3 GiB is stopped by the probe's memory limit while the caller's memory stays
flat; a FIFO and a sparse 40 GB file are refused from a header.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from wattbench.backends.models import catalog, probe
from wattbench.backends.models.files import FileFacts
from wattbench.cli.main import main
from wattbench.domain import codec
from wattbench.domain.errors import ModelError
from wattbench.service import inventory

from tests import hostile_models

HANG_LIMIT_S = 6  # longer than the probe's torch import, so the archive's loop is what hangs
RUN = ["--device", "cpu", "--runtime", "torch", "--time-limit", "20", "--no-store"]
LINUX = sys.platform.startswith("linux")


def _returns(fn: Callable[[], object], within_s: float = 30.0) -> BaseException | None:
    """The exception fn() raised, run on a thread that must end (a blocking open would not)."""
    raised: list[BaseException] = []

    def call() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(within_s)
    assert not thread.is_alive(), "the call blocked on the file"
    return raised[0] if raised else None


def test_a_hostile_torch_export_archive_runs_no_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    marker = tmp_path / "pwned"
    evil = hostile_models.evil_pt2(tmp_path, marker)
    with pytest.raises(Exception):  # noqa: B017 - the archive is hostile: it fails as it acts
        torch.export.load(str(evil))
    assert marker.exists(), "the archive must run its pickle when torch.export.load reads it"
    marker.unlink()

    assert main(["models", str(evil)]) == 2
    assert "does not open" in capsys.readouterr().err
    assert main(["run", "--model", str(evil), *RUN]) == 2
    err = capsys.readouterr().err
    assert "torch.export" in err and "ONNX" in err and "TorchScript" in err
    with pytest.raises(ModelError, match="does not open") as caught:
        inventory.describe_model(str(evil))
    assert caught.value.field == "model"
    assert not marker.exists()


def test_a_torch_save_pickle_named_pt_is_not_unpickled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    marker = tmp_path / "pwned"
    weights = hostile_models.evil_torch_save(tmp_path, marker)
    torch.load(str(weights), weights_only=False)
    assert marker.exists(), "the file must run its pickle when unpickled"
    marker.unlink()

    assert main(["models", str(weights), "--input-shape", "x=1x4"]) == 2
    assert "not a readable TorchScript file" in capsys.readouterr().err
    assert not marker.exists()


def test_a_torchscript_file_that_never_loads_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hang = hostile_models.hanging_torchscript(tmp_path)
    monkeypatch.setenv(probe.TIME_ENV, str(HANG_LIMIT_S))
    with pytest.raises(ModelError, match=f"did not finish within {HANG_LIMIT_S} s") as caught:
        inventory.describe_model(str(hang), input_shapes={"x": "1x4"})
    assert "hostile" in str(caught.value) and caught.value.field == "model"
    assert hostile_models.probe_processes() == []  # killed, not left behind

    args = ["run", "--model", str(hang), "--input-shape", "x=1x4", "--batch", "1", *RUN]
    assert main(args) == 2
    assert f"did not finish within {HANG_LIMIT_S} s" in capsys.readouterr().err
    assert hostile_models.probe_processes() == []


def _ctrl_c_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_kills_the_probe_and_the_cli_returns(tmp_path: Path) -> None:
    hang = hostile_models.hanging_torchscript(tmp_path)
    cli = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",
            "-m",
            "wattbench",
            "models",
            str(hang),
            "--input-shape",
            "x=1x4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **{probe.TIME_ENV: "600"}),
        # Ctrl-C as in a terminal: a process started in the background of a shell without job
        # control (`cmd &`, nohup) inherits SIGINT ignored, and Python then keeps ignoring it
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    try:
        me = psutil.Process(cli.pid)
        probes: list[psutil.Process] = []
        for _ in range(600):  # the CLI starts, then spawns the probe
            probes = hostile_models.probe_processes(me)
            if probes or cli.poll() is not None:
                break
            time.sleep(0.1)
        assert probes, "no probe process was started"
        cli.send_signal(signal.SIGINT)
        try:
            _, err = cli.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            cli.send_signal(signal.SIGABRT)  # faulthandler: where every thread of it waits
            _, err = cli.communicate(timeout=30)
            raise AssertionError(f"the CLI did not return after Ctrl-C:\n{err}") from None
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()  # reaped, its pipes closed: nothing left for a later test
    assert cli.returncode == 4, err
    assert "interrupted" in err and "Traceback" not in err
    _, alive = psutil.wait_procs(probes, timeout=10)
    assert alive == []


@pytest.mark.skipif(not LINUX, reason="the probe's memory limit is Linux's RLIMIT_DATA")
def test_an_inflating_archive_is_bounded_and_the_caller_stays_small(tmp_path: Path) -> None:
    inflating = hostile_models.inflating_archive(tmp_path)
    assert inflating.stat().st_size < 8 << 20  # a few MB that inflate to 3 GiB
    sparse_onnx = tmp_path / "huge.onnx"
    sparse_pt = tmp_path / "huge.pt"
    for path, head in ((sparse_onnx, b"\x08\x08"), (sparse_pt, b"PK\x03\x04")):
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(40 * 10**9)  # sparse: 40 GB that take no disk
    script = textwrap.dedent(
        """
        import resource, sys
        from wattbench.backends.models import catalog
        from wattbench.domain.errors import ModelError

        def peak() -> int:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        before = peak()
        for ref in sys.argv[1:]:
            try:
                catalog.resolve_model(ref, input_shapes={"x": "1x4"})
            except ModelError as exc:
                print("refused:", exc)
        print("peak KiB:", before, peak())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(inflating), str(sparse_onnx), str(sparse_pt)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    refusals = [line for line in lines if line.startswith("refused:")]
    assert len(refusals) == 3, done.stdout
    assert "needed more than" in refusals[0] and "inflates" in refusals[0]
    assert "at most 2 GiB" in refusals[1]
    assert "damaged zip archive" in refusals[2]
    before, after = (int(n) for n in lines[-1].split()[-2:])
    assert after - before < 64 * 1024, f"the caller's peak grew by {after - before} KiB"


def test_non_regular_files_are_refused_before_anything_opens_them(tmp_path: Path) -> None:
    cases = {tmp_path / "pipe.onnx": "named pipe", tmp_path / "pipe.pt": "named pipe"}
    for fifo in cases:
        os.mkfifo(fifo)
    if os.path.exists("/dev/zero"):
        cases[Path("/dev/zero")] = "device"
    for path, kind in cases.items():
        error = _returns(lambda p=path: catalog.resolve_model(str(p)))
        assert isinstance(error, ModelError) and kind in str(error), error
    error = _returns(lambda: catalog.resolve_model(str(tmp_path)))
    assert isinstance(error, ModelError) and "folder" in str(error)


def test_a_sparse_zero_file_is_refused_from_its_header(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.onnx"
    with open(zeros, "wb") as f:
        f.truncate(40 * 10**9)
    with pytest.raises(ModelError, match="is not an ONNX file"):
        catalog.resolve_model(str(zeros))
    assert hostile_models.probe_processes() == []


def test_model_code_that_prints_cannot_forge_the_probe_reply(tmp_path: Path) -> None:
    noisy = hostile_models.printing_torchscript(tmp_path)
    entry = catalog.resolve_model(str(noisy), input_shapes={"x": "2x4"})
    assert entry.format == "torchscript" and entry.name == "noisy"
    assert [(s.name, s.shape) for s in entry.inputs] == [("x", (2, 4))]
    # the file is read once: other shapes are checked against the cached facts
    with pytest.raises(Exception, match="no input named y"):
        catalog.resolve_model(str(noisy), input_shapes={"y": "2x4"})


def test_a_normal_onnx_file_is_probed_once_per_version(tmp_path: Path) -> None:
    root = catalog.zoo_dir()
    assert root is not None
    path = tmp_path / "squeezenet.onnx"
    path.write_bytes((root / "light_squeezenet.onnx").read_bytes())
    probe.forget()
    first = catalog.resolve_model(str(path))
    assert first.inputs[0].shape == (1, 3, 224, 224) and first.family == "file"
    assert catalog.resolve_model(str(path)) == first
    assert len(probe._cache) == 1
    os.utime(path, ns=(0, 0))  # a changed file is read again
    assert catalog.resolve_model(str(path)) == first
    assert len(probe._cache) == 2


def test_a_probe_that_crashes_or_sends_garbage_is_a_clear_model_error() -> None:
    request = probe.ProbeRequest("/m.onnx", "onnx", 5.0, 1 << 30, os.getpid())
    with pytest.raises(ModelError, match=r"crashed \(killed by SIGKILL\).*hostile"):
        probe._answer(request, -9, b"", b"")
    for garbage in (b"", b"\x93not a reply", b"\x81\xa5facts\xc0" + b"x" * 10):
        with pytest.raises(ModelError, match="cannot read: the file may be hostile"):
            probe._answer(request, 0, garbage, b"")
    other = probe.ProbeReply(facts=FileFacts(catalog.resolve_model("onnx-zoo:squeezenet")))
    with pytest.raises(ModelError, match="cannot read"):
        probe._answer(request, 0, codec.encode_msgpack(other), b"")
