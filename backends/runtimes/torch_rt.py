"""The PyTorch eager runtime: built-in modules, TorchScript and torch.export files.

fp32/fp16/bf16 on cpu, cuda (and ROCm builds), mps and xpu. Every ``run_once`` returns only
when the device is done (it synchronizes), so host timing around it is honest.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from wattbench.backends.models import catalog, files
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.models.inputs import synthesize
from wattbench.backends.runtimes.base import (
    Availability,
    DeviceInfo,
    DeviceMemory,
    RuntimeOptions,
)
from wattbench.backends.runtimes.gpu_memory import nvml_process_bytes
from wattbench.domain.errors import DeviceError, ModelError, ShapeError, UnsupportedOptionError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
KINDS = ("cpu", "cuda", "mps", "xpu")


def parse_device(device: str) -> tuple[str, int | None]:
    """("cuda", 0) from "cuda:0"; ("cpu", None) from "cpu". DeviceError when malformed."""
    kind, _, index = device.strip().lower().partition(":")
    if kind == "rocm":
        kind = "cuda"  # ROCm builds of torch expose AMD GPUs as cuda devices
    if kind not in KINDS:
        raise DeviceError(
            f"Unknown device {device!r}: use cpu, cuda:N, mps or xpu:N (see the device list).",
            field="device",
        )
    if not index:
        return kind, (0 if kind in ("cuda", "xpu") else None)
    if kind in ("cpu", "mps"):
        raise DeviceError(
            f"Device {device!r}: {kind} takes no index; write {kind} (one CPU device covers "
            "every core; set fewer threads to use fewer)."
            if kind == "cpu"
            else f"Device {device!r}: mps takes no index; write mps.",
            field="device",
        )
    if not index.isdigit():
        raise DeviceError(
            f"Cannot read the device {device!r}: the index must be a number, e.g. {kind}:0."
        )
    return kind, int(index)


def _torch_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return None


class TorchRuntime:
    """PyTorch eager execution."""

    name = "torch"
    formats = ("torch-module", "torchscript", "torch-export")

    def available(self) -> Availability:
        try:
            import torch
        except ImportError as exc:
            return Availability(False, f"torch cannot be imported ({exc}); pip install torch")
        return Availability(True, "torch is installed", torch.__version__)

    # -- devices -----------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        if not self.available().ok:
            return []
        import torch

        out = [self._cpu_device(torch)]
        out += self._cuda_devices(torch)
        out.append(self._mps_device(torch))
        out += self._xpu_devices(torch)
        return out

    def _cpu_device(self, torch: Any) -> DeviceInfo:
        from wattbench.backends import system

        cpu = system.cpu_summary()
        precisions = ("fp32", "bf16", "fp16")
        return DeviceInfo(
            id="cpu",
            kind="cpu",
            name=str(cpu.get("model") or "CPU"),
            runtime=self.name,
            usable=True,
            reason="the CPU is always usable",
            details={
                **cpu,
                "torch_threads": torch.get_num_threads(),
                "torch_interop_threads": torch.get_num_interop_threads(),
            },
            precisions=precisions,
        )

    def _cuda_devices(self, torch: Any) -> list[DeviceInfo]:
        hip = getattr(torch.version, "hip", None)
        kind = "rocm" if hip else "cuda"
        if torch.version.cuda is None and hip is None:
            return [
                DeviceInfo(
                    id="cuda",
                    kind="cuda",
                    name="NVIDIA/AMD GPU",
                    runtime=self.name,
                    usable=False,
                    reason=f"this torch build ({torch.__version__}) has no CUDA or ROCm support; "
                    "install a CUDA/ROCm build of torch to use a GPU",
                    precisions=(),
                )
            ]
        try:
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception as exc:  # driver errors
            count, err = 0, str(exc)
        else:
            err = ""
        if count == 0:
            return [
                DeviceInfo(
                    id="cuda",
                    kind=kind,
                    name="GPU",
                    runtime=self.name,
                    usable=False,
                    reason="no GPU is visible to torch (no driver, no device, or "
                    f"CUDA_VISIBLE_DEVICES hides them){': ' + err if err else ''}",
                    precisions=(),
                )
            ]
        out = []
        for i in range(count):
            props = torch.cuda.get_device_properties(i)
            cap = (props.major, props.minor)
            precisions = ["fp32", "fp16"]
            if cap >= (8, 0) or hip:  # Ampere and later; AMD Instinct/Radeon via ROCm
                precisions.append("bf16")
            details = {
                "memory_bytes": int(props.total_memory),
                "compute_capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "cuda_version": torch.version.cuda,
                "hip_version": hip,
            }
            out.append(
                DeviceInfo(
                    id=f"cuda:{i}",
                    kind=kind,
                    name=props.name,
                    runtime=self.name,
                    usable=True,
                    reason="visible to torch",
                    details=details,
                    precisions=tuple(precisions),
                )
            )
        return out

    def _mps_device(self, torch: Any) -> DeviceInfo:
        backend = getattr(torch.backends, "mps", None)
        if sys.platform != "darwin":
            reason = "MPS exists only on Apple silicon Macs (macOS)"
            usable = False
        elif backend is None or not backend.is_built():
            reason, usable = "this torch build has no MPS support", False
        elif not backend.is_available():
            reason, usable = "MPS is not available (macOS 12.3+ on Apple silicon needed)", False
        else:
            reason, usable = "Apple GPU through Metal", True
        return DeviceInfo(
            id="mps",
            kind="mps",
            name="Apple GPU (MPS)",
            runtime=self.name,
            usable=usable,
            reason=reason,
            precisions=("fp32", "fp16", "bf16") if usable else (),
        )

    def _xpu_devices(self, torch: Any) -> list[DeviceInfo]:
        xpu = getattr(torch, "xpu", None)
        try:
            count = xpu.device_count() if xpu is not None and xpu.is_available() else 0
        except Exception:
            count = 0
        if count == 0:
            why = (
                "this torch build has no XPU support"
                if xpu is None
                else "no Intel GPU is visible to torch (XPU build and driver needed)"
            )
            return [
                DeviceInfo(
                    id="xpu",
                    kind="xpu",
                    name="Intel GPU (XPU)",
                    runtime=self.name,
                    usable=False,
                    reason=why,
                    precisions=(),
                )
            ]
        assert xpu is not None
        return [
            DeviceInfo(
                id=f"xpu:{i}",
                kind="xpu",
                name=str(xpu.get_device_name(i)),
                runtime=self.name,
                usable=True,
                reason="visible to torch",
                precisions=("fp32", "fp16", "bf16"),
            )
            for i in range(count)
        ]

    # -- checks ------------------------------------------------------------------------
    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        kind, index = parse_device(device)
        if model.format == "onnx":
            raise UnsupportedOptionError(
                f"{model.ref} is an ONNX model: run it on the onnxruntime runtime.",
                field="runtime",
            )
        if options.precision not in PRECISIONS:
            raise UnsupportedOptionError(
                f"The torch runtime runs {', '.join(PRECISIONS)}, not {options.precision!r}.",
                field="precision",
            )
        if options.threads is not None:
            cpus = os.cpu_count() or 1
            if options.threads > cpus:
                raise UnsupportedOptionError(
                    f"{options.threads} threads asked but this machine has {cpus} logical CPUs; "
                    f"use 1…{cpus} threads.",
                    field="threads",
                )
        info = self._device_info(device, kind, index)
        if not info.usable:
            raise DeviceError(f"Device {device} cannot be used with torch: {info.reason}.")
        if options.precision not in info.precisions:
            raise UnsupportedOptionError(
                f"{device} ({info.name}) does not support {options.precision} with torch; "
                f"use one of {', '.join(info.precisions)}.",
                field="precision",
            )

    def _device_info(self, device: str, kind: str, index: int | None) -> DeviceInfo:
        infos = [
            d for d in self.devices() if d.kind == kind or (kind == "cuda" and d.kind == "rocm")
        ]
        want = kind if index is None else f"{kind}:{index}"
        for d in infos:
            if d.id == want or (d.kind == "rocm" and d.id == f"cuda:{index}"):
                return d
        usable = [d for d in infos if d.usable]
        if usable:
            raise DeviceError(
                f"Device {device} does not exist; torch sees {', '.join(d.id for d in usable)}."
            )
        if infos:
            return infos[0]
        raise DeviceError(
            f"Device {device} is not known to torch (see the device list).", field="device"
        )

    # -- loading -----------------------------------------------------------------------
    def load(self, model: ModelEntry, device: str, options: RuntimeOptions) -> TorchLoaded:
        self.check(model, device, options)
        import torch

        if options.threads is not None:
            torch.set_num_threads(options.threads)
        dev = torch.device(_torch_device(device))
        dtype = getattr(torch, _DTYPES[options.precision])
        module = _build(model)
        try:
            module = module.to(device=dev)
            if options.precision != "fp32":
                module = module.to(dtype=dtype)
        except RuntimeError as exc:
            raise ModelError(f"Cannot move {model.ref} to {device}: {exc}") from exc
        if model.generative and model.family == "builtin":
            return TorchGenerative(module, model, dev, dtype, options)
        return TorchLoaded(module, model, dev, dtype, options)


def _torch_device(device: str) -> str:
    kind, index = parse_device(device)
    return kind if index is None else f"{kind}:{index}"


def _build(model: ModelEntry) -> Any:
    import torch
    from wattbench.backends.models import builtin

    if model.family == "builtin":
        return builtin.build_module(model.name)
    assert model.path is not None
    try:
        if model.format == "torchscript":
            return files.jit_load(model.path).eval()
        if model.format == "torch-export":
            return torch.export.load(model.path).module()
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
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "env": {
                k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
            },
        }

    def reset_peak_memory(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory(self) -> DeviceMemory:
        if self.device.type != "cuda":
            return DeviceMemory(
                notes=(
                    "torch memory peaks: n/a (CPU device; torch tracks only GPU allocations)"
                    if self.device.type == "cpu"
                    else f"torch memory peaks: n/a (not tracked on {self.device.type})",
                    "GPU process memory: n/a (not an NVIDIA GPU run)",
                )
            )
        import torch

        process, why = nvml_process_bytes(self.device.index or 0)
        return DeviceMemory(
            allocated_peak_bytes=int(torch.cuda.max_memory_allocated(self.device)),
            reserved_peak_bytes=int(torch.cuda.max_memory_reserved(self.device)),
            process_bytes=process,
            notes=(why,) if why else (),
        )

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
        """Greedy tokens of one sequence, [batch, new_tokens] (for checks, not timed)."""
        import torch

        self.reset()
        self.prefill()
        out = [self.next_ids]
        for _ in range(self.options.new_tokens - 1):
            self.decode_step()
            out.append(self.next_ids)
        return torch.cat(out, dim=1).cpu().numpy()

    def settings(self) -> dict[str, Any]:
        return super().settings() | {
            "generation": "greedy, preallocated KV cache",
            "prompt_tokens": self.options.prompt_tokens,
            "new_tokens": self.options.new_tokens,
        }
