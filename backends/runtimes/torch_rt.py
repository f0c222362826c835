"""The PyTorch eager runtime: built-in modules, TorchScript and torch.export files.

fp32/fp16/bf16 on cpu, cuda (and ROCm builds), mps and xpu. Every ``run_once`` returns only
when the device is done (it synchronizes), so host timing around it is honest.

Checking a run on the CPU does not import torch (seconds of a run's wall time, and the run's
worker imports it anyway): that torch is installed is found without importing it, and the CPU
runs every precision. A GPU is checked against what torch sees, which needs the import.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType
from typing import Any

from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes import torch_int8
from wattbench.backends.runtimes.base import (
    Availability,
    DeviceInfo,
    RuntimeOptions,
    installed_version,
)
from wattbench.backends.runtimes.device_names import parse_device, torch_device
from wattbench.backends.runtimes.torch_loaded import (
    TorchGenerative,
    TorchLoaded,
    _build,
)
from wattbench.backends.runtimes.torch_train import TorchTrainer, load_trainer
from wattbench.domain.errors import DeviceError, ModelError, UnsupportedOptionError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16", torch_int8.INT8)
CPU_PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _import_torch() -> ModuleType:
    """torch, or UnsupportedOptionError saying why an installed torch cannot be imported."""
    try:
        import torch
    except ImportError as exc:
        raise UnsupportedOptionError(
            f"torch cannot be imported ({exc}); reinstall torch (pip install torch).",
            field="runtime",
        ) from exc
    return torch


class TorchRuntime:
    """PyTorch eager execution."""

    name = "torch"
    formats = ("torch-module", "torchscript", "torch-export", "hf-safetensors", "hf-config")
    trains = True  # the training scenario (torch_train.py)

    def available(self) -> Availability:
        """Whether torch is installed, found without importing it: an installation that is
        found but cannot be imported fails where torch is imported, with its error."""
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return Availability(False, "torch is not installed; pip install torch")
        return Availability(True, "torch is installed", installed_version("torch"))

    # -- devices -----------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        if not self.available().ok:
            return []
        torch = _import_torch()
        out = [self._cpu_device(torch)]
        out += self._cuda_devices(torch)
        out.append(self._mps_device(torch))
        out += self._xpu_devices(torch)
        return out

    def _cpu_device(self, torch: Any) -> DeviceInfo:
        from wattbench.backends import system

        cpu = system.cpu_summary()
        precisions = CPU_PRECISIONS + ((torch_int8.INT8,) if torch_int8.available() else ())
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
        if options.precision == torch_int8.INT8:
            torch_int8.check(kind, model)
        if options.find_micro_batch and kind == "cpu":
            raise UnsupportedOptionError(
                "The micro-batch search runs a step until the device runs out of memory: on "
                "the CPU that is the host's memory (swapping, or the kernel's out-of-memory "
                "killer). Search on a GPU, or give the micro-batch with --batch.",
                field="find_micro_batch",
            )
        if kind == "cpu":  # always usable, in every precision: nothing to ask torch
            return
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
    def load(
        self, model: ModelEntry, device: str, options: RuntimeOptions
    ) -> TorchLoaded | TorchTrainer:
        self.check(model, device, options)
        torch = _import_torch()
        if options.threads is not None:
            torch.set_num_threads(options.threads)
        dev = torch.device(torch_device(device))
        dtype = getattr(torch, _DTYPES.get(options.precision, "float32"))  # int8: fp32 compute
        if options.training:  # fp32 weights; bf16 is autocast in the step
            return load_trainer(model, dev, options)
        if model.decoder is not None:  # a transformers language model (checkpoint or llm:)
            from wattbench.backends.runtimes import torch_hf

            int8 = options.precision == torch_int8.INT8
            return torch_hf.load_decoder(
                model, dev, dtype, options, torch_int8.quantize if int8 else None
            )
        module = _build(model)
        try:
            module = module.to(device=dev)
            if options.precision == torch_int8.INT8:
                module = torch_int8.quantize(module)
            elif options.precision != "fp32":
                module = module.to(dtype=dtype)
        except RuntimeError as exc:
            raise ModelError(f"Cannot move {model.ref} to {device}: {exc}") from exc
        if model.generative and model.family == "builtin":
            return TorchGenerative(module, model, dev, dtype, options)
        return TorchLoaded(module, model, dev, dtype, options)
