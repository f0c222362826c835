"""Data-parallel training on this CPU: two ranks in two processes joined by gloo, rank 0
measured by the real engine and rank 1 following it. The step trains, tokens per step are the
global batch, the gradients really are averaged over the ranks' batches, the followers are
gone after the run, and a follower that dies or cannot start fails the run with its rank and
reason instead of hanging it."""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import pytest
from wattbench.backends.activity import children_cpu_s, clock_ticks_per_s
from wattbench.backends.models import catalog
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes import torch_ddp
from wattbench.backends.runtimes.base import Availability, DeviceInfo, RuntimeOptions
from wattbench.backends.runtimes.torch_train import (
    TorchTrainer,
    _build_for_training,
    load_trainer,
)
from wattbench.backends.sensors.base import Domain
from wattbench.cli.run_output import training_lines
from wattbench.domain.errors import DeviceError, UnsupportedOptionError
from wattbench.domain.events import MeasureProgress, Phase
from wattbench.domain.result import RunStatus
from wattbench.domain.spec import RunSpec, Scenario
from wattbench.energy.figures import FLAG_INCOMPLETE, DomainSeries, compute_report
from wattbench.energy.sampler import rank_devices
from wattbench.engine.runner import run_one
from wattbench.engine.validate import check_data_parallel

SPEC = RunSpec(
    model="builtin:gpt-small",
    scenario=Scenario.TRAINING,
    data_parallel=2,
    threads=1,
    batch_size=2,
    prompt_tokens=16,
    preset="quick",
    t_max_s=2,
    idle_baseline=False,
    memory_pass=False,
)
OPTIONS = RuntimeOptions(
    batch_size=2, threads=1, prompt_tokens=16, training=True, data_parallel=2, seed=3,
    grad_accum=2,
)  # fmt: skip


def _followers(leader_pid: int | None = None) -> list[psutil.Process]:
    """This machine's follower processes (of one leader when given)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if torch_ddp.__name__ not in cmd:
            continue
        if leader_pid is None or cmd[cmd.index("--leader") + 1] == str(leader_pid):
            found.append(p)
    return found


def _own_followers() -> Iterator[psutil.Process]:
    """The followers started by this test's run workers (children of our children)."""
    for child in psutil.Process().children(recursive=True):
        try:
            if torch_ddp.__name__ in child.cmdline():
                yield child
        except psutil.NoSuchProcess:
            continue


def test_two_ranks_train_through_the_engine_and_leave_nothing_behind() -> None:
    r = run_one(SPEC)
    assert r.status is RunStatus.DONE, r.reason
    t, thr, lat = r.training, r.throughput_items_per_s, r.latency
    assert t is not None and thr is not None and lat is not None
    # the global batch: two ranks of 2 sequences × 16 tokens
    assert t.data_parallel == 2 and t.tokens_per_step_per_rank == 2 * 16
    assert t.tokens_per_step == 2 * t.tokens_per_step_per_rank == 64
    assert r.system["runtime_settings"]["tokens_per_step"] == 64
    assert t.devices == ("cpu", "cpu") and t.backend == "gloo" and len(t.device_names) == 2
    # the node's tokens/s is the global batch over the step time; a device's is its share
    assert thr.value == pytest.approx(t.tokens_per_step / (lat.mean_ns / 1e9), rel=1e-6)
    assert t.per_device_tokens_per_s(thr.value) == pytest.approx(
        t.tokens_per_step_per_rank / (lat.mean_ns / 1e9), rel=1e-6
    )
    assert t.loss_first is not None and t.loss_last is not None
    assert t.loss_last < t.loss_first
    text = "\n".join(training_lines(r))
    assert "× 16 tokens × 2 ranks = 64 tokens" in text
    assert "data parallel: 2 ranks (gloo) on cpu, cpu" in text
    assert "tokens/s per device" in text and "tokens/s per node" in text
    assert "TFLOP/s per device" in text
    assert "the CPU package's reading covers them all" in text
    # the worker's follower ended with it
    worker = r.system["worker_process"]["pid"]
    assert not _followers(worker)


def test_the_gradients_are_averaged_over_the_ranks_batches() -> None:
    """One step of rank 0 with a follower gives the weights of one step on both ranks'
    batches together: DDP averaged the gradients of two different batches (each of two
    micro-batches, the first accumulated without an all-reduce)."""
    import torch

    entry = catalog.resolve_model("builtin:gpt-small")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dev = torch.device("cpu")
    trainer = load_trainer(entry, dev, OPTIONS)
    try:
        assert trainer.leader is not None and trainer.items_per_call == 2 * 2 * 2 * 16
        start = copy.deepcopy(trainer.module.state_dict())
        trainer.run_once()
        stepped = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}
        procs = list(trainer.leader.procs)
    finally:
        trainer.close()
    assert [p.returncode for p in procs] == [0]  # told to stop, it ended of itself

    def reference(rank: int) -> TorchTrainer:
        module, hf, layers, width, vocab = _build_for_training(entry, dev)
        module.load_state_dict(start)
        one = replace(OPTIONS, data_parallel=1)
        return TorchTrainer(
            module, entry, dev, one, hf=hf, layers=layers, width=width, vocab=vocab, rank=rank
        )

    both, rank1 = reference(0), reference(1)
    alone = copy.deepcopy(both)
    assert not torch.equal(both.batches[0], rank1.batches[0])  # each rank its own tokens
    both.batches = [torch.cat([a, b]) for a, b in zip(both.batches, rank1.batches, strict=True)]
    both.step()
    alone.step()
    torch.set_num_threads(threads)

    def off(reference: TorchTrainer) -> float:
        """The share of the weights more than 1e-6 away from ``reference``'s (AdamW's first
        step is about lr × the gradient's sign, so a near-zero gradient summed in another
        order may move one weight by up to 2 lr: a few in a million do)."""
        ref = reference.module.state_dict()
        far = sum(int(((v - ref[n]).abs() > 1e-6).sum()) for n, v in stepped.items())
        return far / sum(v.numel() for v in stepped.values())

    assert off(both) < 1e-4
    assert off(alone) > 0.1  # not what rank 0's batch alone gives


def test_a_killed_follower_fails_the_run_with_its_rank() -> None:
    """The follower is killed as the kernel's out-of-memory killer would (SIGKILL) once the
    group is formed: rank 0's next collective fails and the run says which rank and how."""
    killed: list[int] = []

    def kill(event: MeasureProgress) -> None:
        if killed or event.phase not in (Phase.WARMUP, Phase.CALIBRATION, Phase.MEASURING):
            return
        for p in _own_followers():
            killed.append(p.pid)
            os.kill(p.pid, signal.SIGKILL)

    r = run_one(SPEC, progress=kill)
    assert killed, "no follower was found to kill"
    assert r.status is RunStatus.FAILED
    assert r.reason is not None
    assert "Data-parallel rank 1 on cpu failed during training" in r.reason
    assert "SIGKILL" in r.reason
    assert not list(_own_followers())


def test_a_follower_on_an_impossible_device_says_so() -> None:
    """Rank 1 asked for a GPU this machine does not have: it cannot load the model, and rank
    0 hears why before any step (the process ends, nothing waits for it)."""
    pytest.importorskip("torch")
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    entry = catalog.resolve_model("builtin:gpt-small")
    leader = torch_ddp.Leader.start(entry, OPTIONS, ("cpu", "cuda:7"))
    with pytest.raises(torch_ddp.DataParallelError, match="rank 1 on cuda:7 could not start: "):
        leader.join("cpu")
    assert leader.closed and all(p.returncode is not None for p in leader.procs)


class _OneGpu:
    """A runtime that sees one GPU (input to the data-parallel check)."""

    name = "torch"
    formats = ("torch-module",)

    def available(self) -> Availability:
        return Availability(True, "")

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("cuda:0", "cuda", "NVIDIA H200", "torch", True, "", {})]

    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        return None


def test_gpu_ranks_need_their_devices_and_the_search_one_rank() -> None:
    entry = catalog.resolve_model("builtin:gpt-small")
    gpu = replace(SPEC, device="cuda:0")
    with pytest.raises(DeviceError, match=r"cuda:1 is not visible \(torch sees cuda:0\)"):
        check_data_parallel(gpu, entry, _OneGpu())
    check_data_parallel(replace(gpu, data_parallel=1), entry, _OneGpu())
    with pytest.raises(UnsupportedOptionError, match="micro-batch search runs on one rank"):
        check_data_parallel(replace(gpu, find_micro_batch=True), entry, _OneGpu())
    with pytest.raises(UnsupportedOptionError, match="not on mps"):
        check_data_parallel(replace(SPEC, device="mps"), entry, _OneGpu())
    assert torch_ddp.rank_devices("cuda", 3) == ("cuda:0", "cuda:1", "cuda:2")
    assert torch_ddp.rank_devices("rocm:2", 2) == ("rocm:2", "rocm:3")
    assert torch_ddp.rank_devices("cpu", 2) == ("cpu", "cpu")


def _gpu_series(device: str, watts: float) -> DomainSeries:
    index = device.rpartition(":")[2]
    domain = Domain(
        f"nvml:{index}", f"gpu{index}", device, "nvml.total_energy", "gpu-board", "energy",
        "J", 0.1,
    )  # fmt: skip
    t_s = np.arange(0, 20, 0.1)
    return DomainSeries(domain, (t_s * 1e9).astype(np.int64), watts * t_s)


def test_the_device_energy_of_gpu_ranks_is_every_rank_device_s() -> None:
    """Three GPUs read, two of them the run's ranks: the device figure is theirs together,
    over the node's tokens; a rank's GPU with no reading (cuda:2) makes it incomplete."""
    series = [_gpu_series("cuda:0", 250.0), _gpu_series("cuda:1", 200.0)]
    series.append(_gpu_series("cuda:3", 100.0))  # another run's GPU: not in it
    spec = replace(SPEC, device="cuda:0")
    ranks = rank_devices(spec)
    assert ranks == ("cuda:0", "cuda:1") and rank_devices(replace(spec, data_parallel=1)) == ()
    window = (2 * 10**9, 12 * 10**9)
    rep = compute_report(
        series, *window, 1000, None, run_device="cuda:0", sample_period_s=0.1,
        rank_devices=ranks,
    )  # fmt: skip
    dev = rep.figure("device")
    assert dev is not None and dev.energy_j == pytest.approx(4500.0)
    assert dev.energy_per_item_j == pytest.approx(4.5) and FLAG_INCOMPLETE not in dev.flags
    three = rank_devices(replace(spec, data_parallel=3))  # cuda:2 has no reading
    rep = compute_report(
        series, *window, 1000, None, run_device="cuda:0", sample_period_s=0.1,
        rank_devices=three,
    )  # fmt: skip
    dev = rep.figure("device")
    assert dev is not None and dev.energy_j == pytest.approx(4500.0)
    assert FLAG_INCOMPLETE in dev.flags


def test_the_followers_cpu_time_is_the_run_s_own(tmp_path: Path) -> None:
    """A follower works for the worker: its CPU time counts as the run's own, not as another
    program's on the run's cores (a fake /proc with a child whose name has spaces and
    parentheses, a grandchild and a stranger)."""
    hz = clock_ticks_per_s() or 100

    def stat(pid: int, name: str, ppid: int, utime: int, stime: int) -> None:
        (tmp_path / str(pid)).mkdir()
        rest = " ".join(["0"] * 9 + [str(utime), str(stime)] + ["0"] * 30)
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) S {ppid} {rest}\n")

    stat(10, "python -m (rank 1)", 7, 3 * hz, hz)
    stat(11, "python", 7, hz, 0)
    stat(12, "grandchild", 10, 50 * hz, 0)
    stat(13, "stranger", 1, 90 * hz, 0)
    (tmp_path / "stat").write_text("cpu  1 2 3 4\n")
    assert children_cpu_s(7, tmp_path) == pytest.approx(5.0)
    assert children_cpu_s(99, tmp_path) == 0.0
