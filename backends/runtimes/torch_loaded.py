"""A model loaded on torch: built-in modules and TorchScript files, on cpu, cuda
(and ROCm builds), mps or xpu. Every ``run_once`` returns only when the device is done (it
synchronizes), so host timing around it is honest; ``TorchGenerative`` adds a KV cache."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from wattbench.backends.models import catalog, files
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.models.inputs import synthesize
from wattbench.backends.runtimes import torch_int8
from wattbench.backends.runtimes.base import (
    DeviceMemory,
    RuntimeOptions,
)
from wattbench.backends.runtimes.gpu_memory import nvml_process_bytes
from wattbench.domain.errors import ModelError, ShapeError, UnsupportedOptionError

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)


def _build(model: ModelEntry) -> Any:
    from pathlib import Path

    from wattbench.backends.models import builtin

    if model.family == "builtin":
        return builtin.build_module(model.name)
    assert model.path is not None
    if model.format == "torch-export":  # torch.export.load can run code from the file
        raise files.torch_export_refused(Path(model.path))
    try:
        if model.format == "torchscript":
            return files.jit_load(model.path).eval()
    except Exception as exc:
        raise ModelError(f"Cannot load {model.path}: {type(exc).__name__}: {exc}") from exc
    raise UnsupportedOptionError(
        f"The torch runtime cannot run {model.format} models.", field="runtime"
    )


def _sync_fn(dev: torch.device) -> Any:
    import torch

    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    if dev.type == "mps":
        return torch.mps.synchronize
    if dev.type == "xpu":
        return lambda: torch.xpu.synchronize(dev)
    return None


def reset_device_peak(dev: torch.device) -> None:
    """Start a new peak of torch's allocations on ``dev`` (GPU devices only)."""
    if dev.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(dev)


def device_peak_memory(dev: torch.device) -> DeviceMemory:
    """torch's peaks on ``dev`` since the last reset, and the GPU's figure for this process."""
    if dev.type != "cuda":
        return DeviceMemory(
            notes=(
                "torch memory peaks: n/a (CPU device; torch tracks only GPU allocations)"
                if dev.type == "cpu"
                else f"torch memory peaks: n/a (not tracked on {dev.type})",
                "GPU process memory: n/a (not an NVIDIA GPU run)",
            )
        )
    import torch

    process, why = nvml_process_bytes(dev.index or 0)
    return DeviceMemory(
        allocated_peak_bytes=int(torch.cuda.max_memory_allocated(dev)),
        reserved_peak_bytes=int(torch.cuda.max_memory_reserved(dev)),
        process_bytes=process,
        notes=(why,) if why else (),
    )


class TorchLoaded:
    """A torch module on its device with seeded inputs; ``run_once`` is one synchronized call."""

    def __init__(
        self, module: Any, model: ModelEntry, dev: torch.device, dtype: Any, options: RuntimeOptions
    ) -> None:
        import torch

        self.module = module
        self.model = model
        self.device = dev
        self.dtype = dtype
        self.options = options
        self.items_per_call = options.batch_size
        shapes = catalog.concrete_inputs(
            model, options.batch_size, dict(options.dims), dict(options.input_shapes)
        )
        self.input_shapes = tuple(shapes)
        arrays = synthesize(shapes, seed=options.seed, highs=catalog.highs(model))
        self.args = tuple(self._tensor(arrays[name]) for name, _, _ in shapes)
        self._grad_was = torch.is_grad_enabled()
        torch.set_grad_enabled(False)  # worker-wide while loaded; restored by close()
        sync = _sync_fn(dev)
        call, args = self.module, self.args
        if sync is None:

            def run_once() -> None:
                call(*args)
        else:

            def run_once() -> None:
                call(*args)
                sync()

        self.run_once = run_once
        self._sync = sync
        self.closed = False

    def _tensor(self, arr: Any) -> Any:
        import torch

        t = torch.from_numpy(arr)
        if t.is_floating_point():
            t = t.to(self.dtype)
        return t.to(self.device)

    def prepare_thread(self) -> None:
        """Another thread will call run_once: torch's grad mode is per thread."""
        import torch

        torch.set_grad_enabled(False)

    def synchronize(self) -> None:
        if self._sync is not None:
            self._sync()

    def outputs(self) -> list[Any]:
        """One call's outputs as float32 numpy arrays (for correctness checks, not timed)."""
        out = self.module(*self.args)
        items = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().float().cpu().numpy() for o in items]

    def settings(self) -> dict[str, Any]:
        import torch

        return {
            "runtime": "torch",
            "torch_version": torch.__version__,
            "device": str(self.device),
            "precision": self.options.precision,
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "threads_requested": self.options.threads,
            "mode": "eager, grad disabled",
            "model_format": self.model.format,
            "int8_weight_layers": torch_int8.quantized_layers(self.module)
            if self.options.precision == torch_int8.INT8
            else None,
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "env": {
                k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
            },
        }

    def reset_peak_memory(self) -> None:
        reset_device_peak(self.device)

    def peak_memory(self) -> DeviceMemory:
        return device_peak_memory(self.device)

    def close(self) -> None:
        if self.closed:
            return
        import torch

        self.closed = True
        torch.set_grad_enabled(self._grad_was)
        self.args = ()
        self.module = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class TorchGenerative(TorchLoaded):
    """A built-in GPT with a preallocated KV cache: prefill the prompt, then one token a step."""

    def __init__(
        self, module: Any, model: ModelEntry, dev: torch.device, dtype: Any, options: RuntimeOptions
    ) -> None:
        super().__init__(module, model, dev, dtype, options)
        import torch

        limit = int(module.positions)
        length = options.prompt_tokens + options.new_tokens
        if length > limit:
            raise ShapeError(
                f"{model.ref} holds at most {limit} positions: prompt {options.prompt_tokens} + "
                f"{options.new_tokens} new tokens is too long."
            )
        self.length = length
        vocab = dict(catalog.highs(model))["input_ids"]
        gen = torch.Generator().manual_seed(options.seed)
        self.prompt = torch.randint(
            0, vocab, (options.batch_size, options.prompt_tokens), generator=gen
        ).to(dev)
        self.cache = module.new_cache(options.batch_size, length, dtype, dev)
        self.pos = 0
        self.next_ids = self.prompt[:, :1]
        self.tokens: list[Any] = []

    def reset(self) -> None:
        self.pos = 0  # the cache is overwritten from position 0; stale entries are masked
        self.tokens = []

    def prefill(self) -> None:
        logits = self.module.forward_cached(self.prompt, self.cache, 0)
        self.next_ids = logits.argmax(dim=-1, keepdim=True)
        self.pos = self.prompt.shape[1]
        self.synchronize()

    def decode_step(self) -> None:
        if self.pos >= self.length:
            raise ShapeError(
                f"Decode step past the {self.length} positions prepared; call reset() and "
                "prefill() first."
            )
        logits = self.module.forward_cached(self.next_ids, self.cache, self.pos)
        self.next_ids = logits.argmax(dim=-1, keepdim=True)
        self.pos += 1
        self.synchronize()

    def generate(self) -> Any:
        """Greedy tokens of the batch, [batch, new_tokens] (for checks, not timed)."""
        return greedy_tokens(self)

    def settings(self) -> dict[str, Any]:
        return super().settings() | {
            "generation": "greedy, preallocated KV cache",
            "prompt_tokens": self.options.prompt_tokens,
            "new_tokens": self.options.new_tokens,
        }


def greedy_tokens(model: Any) -> Any:
    """The greedy tokens a torch decoder (``prefill``/``decode_step`` leaving the chosen ids in
    ``next_ids``) makes for its batch, [batch, new_tokens]: for checks, not timed."""
    import torch

    model.reset()
    model.prefill()
    out = [model.next_ids]
    for _ in range(model.options.new_tokens - 1):
        model.decode_step()
        out.append(model.next_ids)
    return torch.cat(out, dim=1).cpu().numpy()
