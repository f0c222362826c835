"""The ONNX Runtime runtime: any available execution provider, threads, graph optimization.

Built-in torch models are exported to ONNX (cached, see ``onnx_export``) so that one model
runs on both runtimes. Inputs and outputs are bound once (IO binding), so ``run_once`` is the
session run alone; ORT returns only when its execution provider is done.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.base import (
    Availability,
    DeviceInfo,
    RuntimeOptions,
)
from wattbench.backends.runtimes.device_names import parse_device
from wattbench.backends.runtimes.ort_loaded import OrtLoaded
from wattbench.domain.errors import DeviceError, ModelError, UnsupportedOptionError

log = logging.getLogger(__name__)

GRAPH_OPTIMIZATION = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
# Which device kinds each execution provider runs on (the first is the provider's default).
PROVIDER_DEVICES: dict[str, tuple[str, ...]] = {
    "CPUExecutionProvider": ("cpu",),
    "DnnlExecutionProvider": ("cpu",),
    "XnnpackExecutionProvider": ("cpu",),
    "OpenVINOExecutionProvider": ("cpu", "xpu"),
    "CUDAExecutionProvider": ("cuda",),
    "TensorRTExecutionProvider": ("cuda",),
    "ROCMExecutionProvider": ("cuda",),
    "MIGraphXExecutionProvider": ("cuda",),
    "CoreMLExecutionProvider": ("mps",),
    "DmlExecutionProvider": ("cuda", "xpu"),
}
# The provider used for a device when none is chosen, in order of preference.
DEFAULT_PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": (
        "CUDAExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "DmlExecutionProvider",
    ),
    "mps": ("CoreMLExecutionProvider",),
    "xpu": ("OpenVINOExecutionProvider", "DmlExecutionProvider"),
}
_NOT_DEVICES = {"AzureExecutionProvider": "remote inference endpoint, not a local device"}


def _providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def stored_precision(model: ModelEntry) -> str:
    """The precision a model's file stores: fp16 when its float inputs are float16."""
    floats = [s.dtype for s in model.inputs if s.dtype.startswith(("float", "bfloat"))]
    if floats and all(d == "float16" for d in floats):
        return "fp16"
    if floats and all(d == "bfloat16" for d in floats):
        return "bf16"
    return "fp32"


class OrtRuntime:
    """onnxruntime InferenceSession on one execution provider."""

    name = "onnxruntime"
    formats = ("onnx", "torch-module")  # built-in torch modules are exported to ONNX

    def available(self) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return Availability(
                False, f"onnxruntime cannot be imported ({exc}); pip install onnxruntime", None
            )
        return Availability(
            True,
            "onnxruntime is installed; providers: " + ", ".join(ort.get_available_providers()),
            ort.__version__,
        )

    # -- devices -----------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        if not self.available().ok:
            return []
        from wattbench.backends import system

        providers = _providers()
        by_kind: dict[str, list[str]] = {}
        for p in providers:
            for kind in PROVIDER_DEVICES.get(p, ()):
                by_kind.setdefault(kind, []).append(p)
        cpu = system.cpu_summary()
        out = [
            DeviceInfo(
                id="cpu",
                kind="cpu",
                name=str(cpu.get("model") or "CPU"),
                runtime=self.name,
                usable="CPUExecutionProvider" in providers,
                reason="CPUExecutionProvider"
                if "CPUExecutionProvider" in providers
                else "this onnxruntime build has no CPU provider",
                details={
                    "providers": by_kind.get("cpu", []),
                    "other_providers": {p: _NOT_DEVICES[p] for p in providers if p in _NOT_DEVICES},
                },
                precisions=("fp32",),
            )
        ]
        gpu = by_kind.get("cuda", [])
        if not gpu:
            out.append(
                DeviceInfo(
                    id="cuda",
                    kind="cuda",
                    name="NVIDIA/AMD GPU",
                    runtime=self.name,
                    usable=False,
                    reason="this onnxruntime build has no GPU execution provider (CUDA, ROCm, "
                    "MIGraphX); install onnxruntime-gpu for NVIDIA GPUs",
                    precisions=(),
                )
            )
        else:
            count, why = _gpu_count()
            for i in range(max(count, 1)):
                out.append(
                    DeviceInfo(
                        id=f"cuda:{i}",
                        kind="rocm" if "ROCMExecutionProvider" in gpu else "cuda",
                        name=f"GPU {i}",
                        runtime=self.name,
                        usable=count > 0,
                        reason=f"providers {', '.join(gpu)}" if count > 0 else why,
                        details={"providers": gpu},
                        precisions=("fp32", "fp16"),
                    )
                )
        for kind, label in (("mps", "Apple GPU/ANE (CoreML)"), ("xpu", "Intel GPU (OpenVINO)")):
            provs = by_kind.get(kind, [])
            out.append(
                DeviceInfo(
                    id=kind,
                    kind=kind,
                    name=label,
                    runtime=self.name,
                    usable=bool(provs),
                    reason=f"providers {', '.join(provs)}"
                    if provs
                    else f"this onnxruntime build has no provider for {kind}",
                    details={"providers": provs},
                    precisions=("fp32",) if provs else (),
                )
            )
        return out

    # -- checks ------------------------------------------------------------------------
    def provider_for(self, device: str, requested: str | None) -> tuple[str, int | None]:
        """The execution provider (and device index) a run on ``device`` uses."""
        kind, index = parse_device(device)
        available = _providers()
        if requested:
            if requested not in available:
                raise UnsupportedOptionError(
                    f"Execution provider {requested!r} is not available in this onnxruntime "
                    f"build; available: {', '.join(available)}.",
                    field="ort_provider",
                )
            kinds = PROVIDER_DEVICES.get(requested)
            if kinds is None:
                raise UnsupportedOptionError(
                    f"{requested} does not run on a local device Wattbench can measure; use one "
                    f"of {', '.join(p for p in available if p in PROVIDER_DEVICES)}.",
                    field="ort_provider",
                )
            if kind not in kinds:
                raise UnsupportedOptionError(
                    f"{requested} runs on {'/'.join(kinds)}, not on {device}.",
                    field="ort_provider",
                )
            return requested, index
        for p in DEFAULT_PROVIDERS[kind]:
            if p in available:
                return p, index
        raise DeviceError(
            f"onnxruntime cannot use {device}: this build has no "
            f"{' or '.join(DEFAULT_PROVIDERS[kind])} (available: {', '.join(available)})."
            + (" Install onnxruntime-gpu." if kind == "cuda" else "")
        )

    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        avail = self.available()
        if not avail.ok:
            raise UnsupportedOptionError(avail.reason, field="runtime")
        if model.format in ("torchscript", "torch-export"):
            raise UnsupportedOptionError(
                f"{model.ref} is a {model.format} file: run it on the torch runtime, or export "
                "it to ONNX first.",
                field="runtime",
            )
        if options.generation:
            raise UnsupportedOptionError(
                "onnxruntime has no KV-cache decoding here: run the generation scenario on the "
                "torch runtime.",
                field="runtime",
            )
        provider, _ = self.provider_for(device, options.ort_provider)
        if options.ort_graph_optimization not in GRAPH_OPTIMIZATION:
            raise UnsupportedOptionError(
                f"Unknown graph optimization level {options.ort_graph_optimization!r}: use one "
                f"of {', '.join(GRAPH_OPTIMIZATION)}.",
                field="ort_graph_optimization",
            )
        stored = stored_precision(model)
        if options.precision != stored:
            if (
                options.precision == "fp16"
                and provider in PROVIDER_DEVICES
                and ("cpu" in PROVIDER_DEVICES[provider])
            ):
                raise UnsupportedOptionError(
                    f"fp16 on the CPU is not supported with onnxruntime ({provider} runs fp32); "
                    "use fp32, or the torch runtime for fp16/bf16 on the CPU.",
                    field="precision",
                )
            raise UnsupportedOptionError(
                f"onnxruntime runs {model.ref} in the precision its ONNX file stores ({stored}), "
                f"not {options.precision}: use {stored}, convert the model to "
                f"{options.precision} yourself, or use the torch runtime.",
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

    # -- loading -----------------------------------------------------------------------
    def model_path(self, model: ModelEntry) -> str:
        if model.family == "builtin":
            from wattbench.backends.models import onnx_export

            return str(onnx_export.export_builtin(model.name))
        if model.path is None:
            raise ModelError(f"{model.ref} has no ONNX file.")
        return model.path

    def load(self, model: ModelEntry, device: str, options: RuntimeOptions) -> OrtLoaded:
        self.check(model, device, options)
        import onnxruntime as ort

        provider, index = self.provider_for(device, options.ort_provider)
        path = self.model_path(model)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if options.threads is not None:
            so.intra_op_num_threads = options.threads
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[options.ort_graph_optimization]
        )
        providers: list[Any] = [provider]
        if provider != "CPUExecutionProvider":
            if index is not None and provider in (
                "CUDAExecutionProvider",
                "ROCMExecutionProvider",
                "TensorRTExecutionProvider",
            ):
                providers = [(provider, {"device_id": index})]
            providers.append("CPUExecutionProvider")  # ORT's fallback for unsupported nodes
        try:
            session = ort.InferenceSession(path, sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(
                f"onnxruntime cannot load {model.ref} ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). The file may "
                "be corrupt or use operators this onnxruntime does not have."
            ) from exc
        return OrtLoaded(session, model, device, provider, index, options, path)


def _gpu_count() -> tuple[int, str]:
    """GPUs visible for ORT's GPU providers (through torch when installed)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count(), ""
        return 0, "a GPU provider is installed but no GPU is visible (driver or device missing)"
    except ImportError:
        return 1, "device count unknown without torch; assuming one GPU"
