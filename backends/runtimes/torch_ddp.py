"""Data-parallel training over several devices of one host: rank 0 leads, the others follow.

Synchronous data parallelism makes every rank take the same number of optimizer steps, but the
engine decides how many steps a run takes in the measuring worker alone, and differently from
run to run (warm-up until steady, calibration, the convergence loop, the bare loop, the memory
pass). So rank 0 is the measured model, loaded in the run's worker like any other, and ranks
1…N-1 are followers driven by it: before each step rank 0 broadcasts a command (a two-element
tensor: step, stop, a new micro-batch size, release), and a follower loops on receiving one and
doing it. The step is DistributedDataParallel's: each rank trains on its own synthetic tokens
(its own seed, as real data shards differ), the gradients are averaged in the backward, and
every rank ends each step with the same weights (DDP broadcasts rank 0's when it wraps).

Processes. The followers are fresh Python interpreters started with ``subprocess`` (what the
spawn start method does, without multiprocessing: the run's worker is itself a daemonic
multiprocessing process, and such a process may not have multiprocessing children). Each reads
its job (model entry, runtime options, rank, devices) as MessagePack on its stdin, dies with the
worker (PR_SET_PDEATHSIG), and writes its stderr to a temporary file that a failure quotes.

Rendezvous. Rank 0 hosts a TCPStore on 127.0.0.1 at a port the system picks (port 0: no race
for a "free" port between finding it and binding it); the followers join it, and every rank
then calls ``init_process_group`` on that store (gloo on the CPU, NCCL — RCCL on ROCm — on
GPUs) with a timeout on every collective. On the CPU every rank runs on the same cores, with
the run's threads each, or the cores shared out when no thread count is given. A follower loads
its model first and says so in the store ("ready" with its device's name, or "error" with why),
while rank 0 waits for all of them watching their processes: a follower that cannot start fails
the run at once, with its rank and reason. Later, a follower that dies breaks rank 0's next
collective (gloo sees the closed connection at once; NCCL at the timeout) and rank 0 raises a
DataParallelError that names the rank and how it ended. ``close`` broadcasts stop, waits for
the followers (killing any that do not end in time) and destroys the process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

from wattbench.backends.lifetime import die_with_parent
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.base import RuntimeOptions
from wattbench.backends.runtimes.device_names import parse_device, torch_device
from wattbench.domain import codec
from wattbench.domain.errors import RunFailedError, UnsupportedOptionError

if TYPE_CHECKING:
    import torch
    from wattbench.backends.runtimes.torch_train import TorchTrainer

HOST = "127.0.0.1"
JOIN_TIMEOUT_S = 900.0  # followers load the model first: a large checkpoint takes minutes
COLLECTIVE_TIMEOUT_S = 300.0  # longer than any pause of the engine between two steps
STOP_WAIT_S = 30.0  # for the followers to end after "stop"
DEATH_WAIT_S = 5.0  # for a follower to be seen dead after a collective failed
POLL_S = 0.05
STOP, STEP, MICRO_BATCH, RELEASE = 0, 1, 2, 3
_ERROR, _READY = "wattbench/error/", "wattbench/ready/"
_TAIL_CHARS = 600
_SEED_SPREAD = 0x9E3779B9  # odd, about 2³²/φ: ranks' seeds far apart from small run seeds


class DataParallelError(RunFailedError):
    """A data-parallel rank could not start, died, or a collective of the group failed."""


def rank_devices(device: str, ranks: int) -> tuple[str, ...]:
    """The device of each rank: every rank on the CPU, or GPU index k + r for rank r of a run
    on GPU k (cuda and cuda:0: ranks on cuda:0…cuda:N-1)."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return ("cpu",) * ranks
    if kind != "cuda":
        raise UnsupportedOptionError(
            f"Data-parallel training runs on the CPU (gloo) or on CUDA/ROCm GPUs (NCCL/RCCL), "
            f"not on {device}: run it with one rank there.",
            field="data_parallel",
        )
    prefix = device.strip().lower().partition(":")[0]
    start = index or 0
    return tuple(f"{prefix}:{start + r}" for r in range(ranks))


def cpu_threads(ranks: int) -> int:
    """Threads per rank of a data-parallel CPU run given no thread count: the CPUs this process
    may use, shared out (each rank taking them all would oversubscribe them N times)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) // ranks)


def backend_for(device: str) -> str:
    """The process group's backend: gloo on the CPU, NCCL (RCCL on ROCm builds) on GPUs."""
    return "gloo" if parse_device(device)[0] == "cpu" else "nccl"


def rank_seed(seed: int, rank: int) -> int:
    """Rank r's seed for its synthetic tokens: rank 0 keeps the run's, every other rank its own
    (torch's CPU generator takes 32 bits of a seed: the ranks' seeds are spread over them)."""
    return (seed + rank * _SEED_SPREAD) % 2**32


@dataclass(frozen=True)
class FollowerJob:
    """What a follower is told on its stdin (MessagePack)."""

    model: ModelEntry
    options: RuntimeOptions
    rank: int
    devices: tuple[str, ...]
    port: int
    leader_pid: int


def _store(port: int, world: int, *, master: bool) -> Any:
    import torch.distributed as dist

    timeout = timedelta(seconds=COLLECTIVE_TIMEOUT_S)
    return dist.TCPStore(HOST, port, world, master, timeout=timeout, wait_for_workers=False)


def _init_group(store: Any, rank: int, devices: tuple[str, ...]) -> None:
    import torch
    import torch.distributed as dist

    dev = torch.device(torch_device(devices[rank]))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(
        backend_for(devices[0]),
        store=store,
        rank=rank,
        world_size=len(devices),
        timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S),
    )


def _flag(devices: tuple[str, ...], rank: int) -> torch.Tensor:
    import torch

    return torch.zeros(2, dtype=torch.int64, device=torch_device(devices[rank]))


def _ending(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Leader:
    """Rank 0's side: the followers' processes, the store, the command broadcast."""

    def __init__(self, store: Any, devices: tuple[str, ...]) -> None:
        self.store = store
        self.devices = devices
        self.backend = backend_for(devices[0])
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []
        self.names: tuple[str, ...] = ()
        self.joined = False
        self.broken = False
        self.closed = False
        self._flag: torch.Tensor | None = None

    @classmethod
    def start(cls, model: ModelEntry, options: RuntimeOptions, devices: tuple[str, ...]) -> Leader:
        """Start the followers of ranks 1…N-1 (they load the model while rank 0 does)."""
        leader = cls(_store(0, len(devices), master=True), devices)
        try:
            for rank in range(1, len(devices)):
                job = FollowerJob(model, options, rank, devices, leader.store.port, os.getpid())
                leader._spawn(job)
        except OSError as exc:
            leader.abort()
            raise DataParallelError(f"Cannot start the data-parallel ranks: {exc}") from exc
        return leader

    def _spawn(self, job: FollowerJob) -> None:
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close(), after the follower)
        self.logs.append(log)
        # the leader and rank in argv only name the follower in a process list
        argv = [sys.executable, "-m", __name__, "--leader", str(job.leader_pid)]
        proc = subprocess.Popen(
            [*argv, "--rank", str(job.rank)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.procs.append(proc)
        assert proc.stdin is not None
        with proc.stdin:
            proc.stdin.write(codec.encode_msgpack(job))

    def join(self, device_name: str) -> None:
        """Wait until every follower has loaded its model, then form the process group."""
        names = {0: device_name}
        pending = set(range(1, len(self.devices)))
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        try:
            while pending:
                for rank in sorted(pending):
                    if self.store.check([f"{_READY}{rank}"]):
                        names[rank] = self.store.get(f"{_READY}{rank}").decode()
                        pending.discard(rank)
                    elif self.procs[rank - 1].poll() is not None or self.store.check(
                        [f"{_ERROR}{rank}"]
                    ):
                        raise self._rank_error(rank, "could not start")
                if pending and time.monotonic() > deadline:
                    raise DataParallelError(
                        f"Data-parallel rank(s) {', '.join(map(str, sorted(pending)))} did not "
                        f"load the model within {JOIN_TIMEOUT_S:g} s."
                    )
                if pending:
                    time.sleep(POLL_S)
            _init_group(self.store, 0, self.devices)
        except BaseException:
            self.abort()
            raise
        self.joined = True
        self.names = tuple(names[r] for r in range(len(self.devices)))
        self._flag = _flag(self.devices, 0)

    def command(self, cmd: int, arg: int = 0) -> None:
        """Broadcast one command to the followers (before rank 0 does it itself)."""
        if self.broken or self._flag is None:
            raise DataParallelError("The data-parallel group failed earlier: no step can be taken.")
        import torch.distributed as dist

        try:
            self._flag[0], self._flag[1] = cmd, arg
            dist.broadcast(self._flag, src=0)
        except Exception as exc:
            failure = self.explain(exc)
            if failure is exc:
                raise
            raise failure from exc

    def explain(self, exc: BaseException) -> BaseException:
        """What to raise for ``exc`` from a step or a broadcast: a DataParallelError naming the
        follower that died or the collective that failed, else ``exc`` itself (rank 0's own
        failure, out of memory among them). The group is broken either way."""
        self.broken = True
        if isinstance(exc, DataParallelError) or not self.joined:
            return exc  # before the group formed, rank 0's own failure is the run's
        deadline = time.monotonic() + DEATH_WAIT_S
        import torch.distributed as dist

        # a peer's closed connection can reach rank 0 before the peer's process has ended
        while time.monotonic() < deadline:
            for rank, proc in enumerate(self.procs, 1):
                if proc.poll() is not None:
                    return self._rank_error(rank, "failed during training")
            time.sleep(POLL_S)
        if isinstance(exc, dist.DistError):
            return DataParallelError(
                f"A collective of the data-parallel group ({self.backend}) failed: {exc}"
            )
        return exc

    def _rank_error(self, rank: int, what: str) -> DataParallelError:
        proc = self.procs[rank - 1]
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=DEATH_WAIT_S)
        why = ""
        if self.store.check([f"{_ERROR}{rank}"]):
            why = self.store.get(f"{_ERROR}{rank}").decode()
        ended = "is still running" if proc.returncode is None else _ending(proc.returncode)
        detail = f": {why}" if why else f" ({ended})" + self._tail(rank)
        return DataParallelError(
            f"Data-parallel rank {rank} on {self.devices[rank]} {what}{detail}. The run stops: "
            "every rank must take every step."
        )

    def _tail(self, rank: int) -> str:
        log = self.logs[rank - 1]
        log.seek(0)
        lines = log.read().decode(errors="replace").strip().splitlines()
        text = " | ".join(lines[-3:])[-_TAIL_CHARS:]
        return f"; its last output: {text}" if text else ""

    def close(self) -> None:
        """Stop the followers (broadcast stop, then kill what has not ended) and the group."""
        if self.closed:
            return
        self.closed = True
        if self.joined and not self.broken:
            try:
                self.command(STOP)
            except BaseException:
                self.broken = True
        self._end_followers(STOP_WAIT_S if not self.broken else 0.0)
        if self.joined:
            import torch.distributed as dist

            with contextlib.suppress(Exception):  # a broken group: its processes are gone
                dist.destroy_process_group()
        self._flag = None

    def abort(self) -> None:
        """Kill the followers at once (a start that failed)."""
        self.broken = True
        self.close()

    def _end_followers(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


class FollowerLink:
    """A follower's side of the group: says it is ready, then joins the process group."""

    def __init__(self, store: Any, rank: int, devices: tuple[str, ...]) -> None:
        self.store = store
        self.rank = rank
        self.devices = devices

    def join(self, device_name: str) -> None:
        self.store.set(f"{_READY}{self.rank}", device_name)
        _init_group(self.store, self.rank, self.devices)

    def fail(self, why: str) -> None:
        with contextlib.suppress(Exception):  # rank 0 (the store's host) gone: nobody to tell
            self.store.set(f"{_ERROR}{self.rank}", why)

    def follow(self, trainer: TorchTrainer) -> None:
        """Do rank 0's commands until it says stop."""
        import torch.distributed as dist

        flag = _flag(self.devices, self.rank)
        while True:
            dist.broadcast(flag, src=0)
            cmd, arg = (int(v) for v in flag.tolist())
            if cmd == STEP:
                trainer.step()
            elif cmd == MICRO_BATCH:
                trainer.set_micro_batch(arg)
            elif cmd == RELEASE:
                trainer.release()
            else:
                return


def follower_main() -> int:
    """A follower process: its job from stdin, the model loaded, the commands followed."""
    job = codec.decode_msgpack(sys.stdin.buffer.read(), FollowerJob)
    die_with_parent(job.leader_pid)
    link = FollowerLink(_store(job.port, len(job.devices), master=False), job.rank, job.devices)
    try:
        import torch
        from wattbench.backends.runtimes.torch_train import load_trainer

        if job.options.threads is not None:
            torch.set_num_threads(job.options.threads)  # else load_trainer shares the CPUs
        dev = torch.device(torch_device(job.devices[job.rank]))
        trainer = load_trainer(job.model, dev, job.options, follower=link)
        link.follow(trainer)
        trainer.close()
        import torch.distributed as dist

        dist.destroy_process_group()
    except BaseException as exc:
        link.fail(f"{type(exc).__name__}: {exc}")
        raise
    return 0


if __name__ == "__main__":
    code = follower_main()
    sys.stderr.flush()
    os._exit(code)  # nothing left to tidy: skip the interpreter's teardown of torch (seconds)
