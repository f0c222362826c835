"""The ONNX Runtime GenAI runtime: language models in GenAI folders, int4 included.

It runs the generation scenario only (prefill, then one token per decode step, with ORT
GenAI's own KV cache and search). A GenAI folder (genai_config.json + model.onnx) runs as it
is, in the precision it was built for; a local Hugging Face checkpoint folder is first built
into one with ORT GenAI's model builder for the chosen precision and device (``genai_build``,
cached). ``onnxruntime_genai`` is imported only where a device is asked about or a model
loaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from wattbench.backends.models import genai_build, hf
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.base import (
    Availability,
    DeviceInfo,
    RuntimeOptions,
    installed_version,
)
from wattbench.backends.runtimes.device_names import parse_device
from wattbench.backends.runtimes.ortgenai_loaded import OrtGenaiGenerative
from wattbench.domain.errors import DeviceError, ModelError, UnsupportedOptionError

HF_FORMAT = hf.FORMAT  # a local Hugging Face checkpoint folder: built into a GenAI folder
CPU_PRECISIONS = ("fp32", "int4")
CUDA_PRECISIONS = ("fp32", "fp16", "bf16", "int4")


def _import_og() -> Any:
    try:
        import onnxruntime_genai as og
    except ImportError as exc:
        raise UnsupportedOptionError(
            f"onnxruntime_genai cannot be imported ({exc}); pip install onnxruntime-genai.",
            field="runtime",
        ) from exc
    return og


def _stored_precision(folder: Path) -> str:
    """The weight precision of a GenAI decoder built elsewhere: int4 when it has 4-bit
    MatMulNBits nodes, fp16/bf16 from its logits type, else fp32 (read in the worker)."""
    import onnx

    facts = genai_build.read_json(folder / genai_build.GENAI_CONFIG, "GenAI configuration")
    name = facts["model"]["decoder"]["filename"]
    graph = onnx.load(str(folder / name), load_external_data=False).graph
    for node in graph.node:
        if node.op_type == "MatMulNBits":
            bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
            return "int4" if bits == 4 else f"int{bits}"
    out = next((o for o in graph.output if o.name == "logits"), None)
    elem = out.type.tensor_type.elem_type if out is not None else 1
    return {10: "fp16", 16: "bf16"}.get(elem, "fp32")


class OrtGenaiRuntime:
    """onnxruntime-genai: og.Model + og.Generator on the CPU or a CUDA GPU."""

    name = "ortgenai"
    formats = (genai_build.GENAI_FORMAT,)
    converts = (HF_FORMAT,)  # built into a GenAI folder first; torch stays their default

    def available(self) -> Availability:
        if importlib.util.find_spec("onnxruntime_genai") is None:
            return Availability(
                False, "onnxruntime-genai is not installed; pip install onnxruntime-genai"
            )
        return Availability(
            True, "onnxruntime-genai is installed", installed_version("onnxruntime-genai")
        )

    # -- devices -----------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        if not self.available().ok:
            return []
        from wattbench.backends import system

        og = _import_og()
        cpu = system.cpu_summary()
        out = [
            DeviceInfo(
                id="cpu",
                kind="cpu",
                name=str(cpu.get("model") or "CPU"),
                runtime=self.name,
                usable=True,
                reason="the CPU is always usable",
                precisions=CPU_PRECISIONS,
            )
        ]
        cuda = bool(og.is_cuda_available())
        out.append(
            DeviceInfo(
                id="cuda:0" if cuda else "cuda",
                kind="cuda",
                name="NVIDIA GPU",
                runtime=self.name,
                usable=cuda,
                reason="this onnxruntime-genai build has CUDA"
                if cuda
                else "this onnxruntime-genai build has no CUDA support; install "
                "onnxruntime-genai-cuda for NVIDIA GPUs",
                precisions=CUDA_PRECISIONS if cuda else (),
            )
        )
        return out

    # -- checks ------------------------------------------------------------------------
    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        avail = self.available()
        if not avail.ok:
            raise UnsupportedOptionError(avail.reason, field="runtime")
        if model.format not in self.formats + self.converts:
            raise UnsupportedOptionError(
                f"{model.ref} is a {model.format} model; the ortgenai runtime runs GenAI "
                "folders (genai_config.json) and local Hugging Face checkpoint folders.",
                field="runtime",
            )
        if not options.generation:
            raise UnsupportedOptionError(
                "The ortgenai runtime measures generation only: choose the generation scenario.",
                field="scenario",
            )
        kind, _ = parse_device(device)
        allowed = {"cpu": CPU_PRECISIONS, "cuda": CUDA_PRECISIONS}.get(kind)
        if allowed is None:
            raise DeviceError(
                f"The ortgenai runtime runs on the CPU or an NVIDIA GPU, not {device}.",
                field="device",
            )
        if options.precision not in allowed:
            raise UnsupportedOptionError(
                f"ORT GenAI on {kind} runs {', '.join(allowed)}, not {options.precision}.",
                field="precision",
            )
        if kind == "cuda" and not bool(_import_og().is_cuda_available()):
            raise DeviceError(
                f"{device} cannot be used with ortgenai: this onnxruntime-genai build has no "
                "CUDA support (install onnxruntime-genai-cuda).",
                field="device",
            )
        if options.threads is not None and options.threads > (os.cpu_count() or 1):
            cpus = os.cpu_count() or 1
            raise UnsupportedOptionError(
                f"{options.threads} threads asked but this machine has {cpus} logical CPUs; "
                f"use 1…{cpus} threads.",
                field="threads",
            )
        assert model.path is not None
        folder = Path(model.path)
        if model.format == HF_FORMAT:
            genai_build.check_target(options.precision, kind)  # the folder: read when resolved
            return
        facts = genai_build.genai_facts(folder)
        if facts.precision is not None and facts.precision != options.precision:
            raise UnsupportedOptionError(
                f"{model.ref} was built as {facts.precision} for {facts.target}: run it at "
                f"{facts.precision}, or give the checkpoint folder to build {options.precision}.",
                field="precision",
            )
        if facts.target == "cuda" and kind == "cpu":
            raise UnsupportedOptionError(
                f"{model.ref} was built for CUDA; give the checkpoint folder to build it for "
                "the CPU.",
                field="device",
            )
        if options.prompt_tokens + options.new_tokens > facts.context_length:
            raise UnsupportedOptionError(
                f"{model.ref} holds at most {facts.context_length} positions: prompt "
                f"{options.prompt_tokens} + {options.new_tokens} new tokens is too long.",
                field="new_tokens",
            )

    # -- loading -----------------------------------------------------------------------
    def load(self, model: ModelEntry, device: str, options: RuntimeOptions) -> OrtGenaiGenerative:
        self.check(model, device, options)
        og = _import_og()
        kind, index = parse_device(device)
        assert model.path is not None
        converted_from = None
        folder = Path(model.path)
        if model.format == HF_FORMAT:
            converted_from = str(folder)
            folder = genai_build.build(folder, options.precision, kind)
        facts = genai_build.genai_facts(folder)
        if facts.precision is None:  # built elsewhere: the decoder says what it stores
            stored = _stored_precision(folder)
            if stored != options.precision:
                raise UnsupportedOptionError(
                    f"{model.ref} stores {stored} weights: run it at {stored}.",
                    field="precision",
                )
        config = og.Config(str(folder))
        config.clear_providers()
        if kind == "cuda":
            config.append_provider("cuda")
            config.set_provider_option("cuda", "device_id", str(index or 0))
        if options.threads is not None:
            session = {"intra_op_num_threads": options.threads, "inter_op_num_threads": 1}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": session}}}))
        try:
            loaded = og.Model(config)
        except Exception as exc:  # og raises RuntimeError with ORT's message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelError(
                f"ORT GenAI cannot load {model.ref} ({type(exc).__name__}: {first}). The "
                "folder may be damaged or made for another onnxruntime-genai version."
            ) from exc
        return OrtGenaiGenerative(og, loaded, model, folder, facts, device, options, converted_from)
