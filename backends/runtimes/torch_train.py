"""A decoder language model's training step on torch (the training scenario).

``run_once`` is one optimizer step: ``grad_accum`` micro-batches of ``batch_size`` sequences of
``prompt_tokens`` synthetic tokens (seeded; the same batch every step), each a forward with the
next-token loss and a backward, then an AdamW step; it returns when the device is done. The
weights stay fp32; bf16 runs the forward and backward under autocast, as mixed-precision
training does. Activation checkpointing recomputes each block's activations in the backward
(transformers' gradient checkpointing for a Hugging Face model, ``torch.utils.checkpoint``
around each block of the built-in GPT). The loss on the fixed batch is kept (first and last
step) as the check that the step trains: it must fall.

With ``data_parallel`` N > 1 this is rank 0 of N data-parallel ranks (torch_ddp.py: why rank 0
leads and the others follow): ``load_trainer`` starts the followers, the step runs through
DistributedDataParallel (gradients averaged over the ranks; ``no_sync`` for every micro-batch
but the last, so one all-reduce per step), and ``run_once`` first tells the followers to step.
An item is still a trained token, of every rank: tokens per step are the global batch, so the
run's tokens/s is the node's. The loss kept is rank 0's, on its own batch.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.base import DeviceMemory, RuntimeOptions
from wattbench.backends.runtimes.torch_loaded import (
    _sync_fn,
    device_peak_memory,
    reset_device_peak,
)
from wattbench.domain.errors import ModelError
from wattbench.domain.training import TrainingSummary, flops_per_token

if TYPE_CHECKING:
    import torch
    from wattbench.backends.runtimes.torch_ddp import FollowerLink, Leader

LEARNING_RATE = 3e-4
OPTIMIZER = f"AdamW lr {LEARNING_RATE:g}"


def matmul_parameters(module: Any) -> int:
    """N of the FLOPs count: every trainable parameter except the embedding lookups, with a
    tied LM head counted once as the matrix product it is."""
    import torch

    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    lookups = [m.weight for m in module.modules() if isinstance(m, torch.nn.Embedding)]
    n = total - sum(w.numel() for w in lookups)
    head = module.get_output_embeddings() if hasattr(module, "get_output_embeddings") else None
    tied_hf = head is not None and any(head.weight is w for w in lookups)
    tied_builtin = head is None and hasattr(module, "wte")  # its logits use wte's weight
    if tied_hf and head is not None:
        n += head.weight.numel()
    elif tied_builtin:
        n += module.wte.weight.numel()
    return int(n)


def _device_name(dev: torch.device) -> str:
    """The device's name as torch gives it (a GPU), or the CPU's model."""
    import torch

    if dev.type == "cuda":
        return str(torch.cuda.get_device_name(dev))
    if dev.type == "cpu":
        from wattbench.backends.system import cpu_summary

        return str(cpu_summary().get("model") or "CPU")
    return dev.type


class TorchTrainer:
    """See the module docstring."""

    def __init__(
        self,
        module: Any,
        model: ModelEntry,
        dev: torch.device,
        options: RuntimeOptions,
        *,
        hf: bool,
        layers: int,
        width: int,
        vocab: int,
        rank: int = 0,
        leader: Leader | None = None,
    ) -> None:
        import torch
        from wattbench.backends.runtimes.torch_ddp import rank_seed

        self.module = module.train()
        self.rank = rank
        self.ranks = options.data_parallel
        self.leader = leader
        self.seed = rank_seed(options.seed, rank)
        self.model = model
        self.device = dev
        self.options = options
        self.hf = hf
        self.ckpt = options.activation_checkpointing
        if self.ckpt and hf:
            module.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        self.step_module: Any = None  # the DistributedDataParallel wrap of the loss, N > 1
        if self.ranks > 1:
            self.step_module = _ddp_loss(self, dev)
        self.optimizer: Any = torch.optim.AdamW(module.parameters(), lr=LEARNING_RATE)
        self.vocab = vocab
        self.batches: list[Any] = []
        self._set_batches(options.batch_size)
        self._sync = _sync_fn(dev)
        self._bf16 = options.precision == "bf16"
        n = matmul_parameters(module)
        self.summary = TrainingSummary(
            micro_batch=options.batch_size,
            grad_accum=options.grad_accum,
            seq_len=options.prompt_tokens,
            activation_checkpointing=self.ckpt,
            parameters=n,
            layers=layers,
            width=width,
            flops_per_token=flops_per_token(n, layers, width, options.prompt_tokens),
            optimizer=OPTIMIZER,
            device_name=_device_name(dev),
            data_parallel=self.ranks,
            devices=leader.devices if leader is not None else (),
            device_names=leader.names if leader is not None else (),
            backend=leader.backend if leader is not None else "",
        )
        self._first: float | None = None
        self._last: float | None = None
        self._steps = 0
        self.closed = False

    def set_micro_batch(self, sequences: int) -> None:
        """Train on micro-batches of ``sequences`` sequences from now on (new seeded tokens:
        the micro-batch search tries several sizes on one loaded model); every rank does."""
        if self.leader is not None:
            from wattbench.backends.runtimes.torch_ddp import MICRO_BATCH

            self.leader.command(MICRO_BATCH, sequences)
        self._set_batches(sequences)

    def _set_batches(self, sequences: int) -> None:
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        shape = (sequences, self.options.prompt_tokens)
        self.batches = []  # the old ones go first: a search near the memory's end needs room
        self.batches = [
            torch.randint(0, self.vocab, shape, generator=gen).to(self.device)
            for _ in range(self.options.grad_accum)
        ]
        self.micro_batch = sequences
        per_rank = sequences * self.options.grad_accum * self.options.prompt_tokens
        self.items_per_call = per_rank * self.ranks  # the global batch: every rank's tokens
        self.input_shapes = (("input_ids", shape, "int64"),)

    def release(self) -> None:
        """Drop the gradients and the allocator's cache (after an out-of-memory step)."""
        if self.leader is not None:
            from wattbench.backends.runtimes.torch_ddp import RELEASE

            self.leader.command(RELEASE)
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _autocast(self) -> Any:
        import torch

        if not self._bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _loss(self, ids: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if self.hf:
            return self.module(input_ids=ids, labels=ids, use_cache=False).loss
        gpt = self.module
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = gpt.wte(ids) + gpt.wpe(positions)
        for block in gpt.blocks:
            if self.ckpt:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        logits = gpt.logits(x)
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())

    def run_once(self) -> None:
        if self.leader is None:
            self.step()
            return
        from wattbench.backends.runtimes.torch_ddp import STEP

        self.leader.command(STEP)
        try:
            self.step()
        except Exception as exc:
            failure = self.leader.explain(exc)
            if failure is exc:
                raise
            raise failure from exc

    def step(self) -> None:
        """One optimizer step on this rank (with the others, through DDP, for N ranks). Grad
        mode is per thread and an inference model loaded in the same process turns it off, so
        the step turns it on for itself."""
        import torch

        total: Any = None
        last = len(self.batches) - 1
        with torch.enable_grad():
            for i, ids in enumerate(self.batches):
                accumulate = self.step_module is not None and i < last  # no all-reduce yet
                with self.step_module.no_sync() if accumulate else contextlib.nullcontext():
                    with self._autocast():
                        loss = self._micro_loss(ids) / len(self.batches)
                    loss.backward()
                total = loss.detach() if total is None else total + loss.detach()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(total)  # waits for the device, as the sync below does
        self.synchronize()
        if self._first is None:
            self._first = value
        self._last = value
        self._steps += 1

    def _micro_loss(self, ids: Any) -> Any:
        return self._loss(ids) if self.step_module is None else self.step_module(ids)

    def training_summary(self) -> TrainingSummary:
        return replace(
            self.summary,
            micro_batch=self.micro_batch,  # the micro-batch search may have changed it
            loss_first=self._first,
            loss_last=self._last,
            steps=self._steps,
        )

    def synchronize(self) -> None:
        if self._sync is not None:
            self._sync()

    def settings(self) -> dict[str, Any]:
        import torch

        return {
            "runtime": "torch",
            "torch_version": torch.__version__,
            "device": str(self.device),
            "precision": self.options.precision,
            "mode": "training: "
            + ("bf16 autocast, fp32 weights" if self._bf16 else "fp32")
            + (", activation checkpointing" if self.ckpt else ""),
            "optimizer": OPTIMIZER,
            "intra_op_threads": torch.get_num_threads(),
            "threads_requested": self.options.threads,
            "tokens_per_step": self.items_per_call,
            **(
                {}
                if self.leader is None
                else {
                    "data_parallel": self.ranks,
                    "process_group": self.leader.backend,
                    "rank_devices": list(self.leader.devices),
                }
            ),
        }

    def reset_peak_memory(self) -> None:
        reset_device_peak(self.device)

    def peak_memory(self) -> DeviceMemory:
        return device_peak_memory(self.device)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.leader is not None:
            self.leader.close()
        self.batches = []
        self.optimizer = None
        self.module = None
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


def _ddp_loss(trainer: TorchTrainer, dev: torch.device) -> Any:
    """The trainer's next-token loss as a module wrapped in DistributedDataParallel (its
    forward must run through the wrap for the gradients to be averaged)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    class NextTokenLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = trainer.module

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return trainer._loss(ids)

    ids = [dev.index if dev.index is not None else 0] if dev.type == "cuda" else None
    return DistributedDataParallel(NextTokenLoss(), device_ids=ids)


def _build_for_training(model: ModelEntry, dev: torch.device) -> tuple[Any, bool, int, int, int]:
    """The module in fp32 on ``dev``, whether it is a transformers model, and its layers, width
    and vocabulary (ModelError if it cannot be built there)."""
    import torch
    from wattbench.backends.runtimes.torch_loaded import _build

    try:
        if model.decoder is not None:  # a transformers checkpoint or an llm: architecture
            from wattbench.backends.runtimes import torch_hf

            module = torch_hf.decoder_module(model, dev, torch.float32)
            shape = model.decoder
            return module, True, shape.layers, shape.hidden, shape.vocab
        module = _build(model).to(device=dev)
    except RuntimeError as exc:
        raise ModelError(f"Cannot build {model.ref} on {dev} for training: {exc}") from exc
    width, vocab = int(module.wte.embedding_dim), int(module.wte.num_embeddings)
    return module, False, len(module.blocks), width, vocab


def load_trainer(
    model: ModelEntry,
    dev: torch.device,
    options: RuntimeOptions,
    *,
    follower: FollowerLink | None = None,
) -> TorchTrainer:
    """The model of ``model`` in fp32 on ``dev``, ready to train (ModelError if it cannot be).

    With ``options.data_parallel`` N > 1 this is rank 0, which starts ranks 1…N-1 first (they
    load while it does) and forms the process group with them; a follower process passes its
    ``follower`` link instead (torch_ddp.py)."""
    from wattbench.backends.runtimes import torch_ddp

    leader = None
    if options.data_parallel > 1 and dev.type == "cpu" and options.threads is None:
        import torch

        torch.set_num_threads(torch_ddp.cpu_threads(options.data_parallel))
    if options.data_parallel > 1 and follower is None:
        devices = torch_ddp.rank_devices(str(dev), options.data_parallel)
        leader = torch_ddp.Leader.start(model, options, devices)
    try:
        module, hf, layers, width, vocab = _build_for_training(model, dev)
        link = leader or follower
        if link is not None:
            link.join(_device_name(dev))
        return TorchTrainer(
            module, model, dev, options, hf=hf, layers=layers, width=width, vocab=vocab,
            rank=0 if follower is None else follower.rank, leader=leader,
        )  # fmt: skip
    except BaseException as exc:
        if leader is None:
            raise
        failure = leader.explain(exc) if isinstance(exc, Exception) else exc
        leader.close()
        if failure is exc:
            raise
        raise failure from exc
