"""Built-in reference workloads: their configurations, catalog entries and definition hashes.

The torch code lives in ``nets.py`` (worker-side). This module stays light: listing the
built-ins, counting their parameters and hashing their definitions needs no torch import.
The definition hash covers the configuration, the seed, and the source text of every class
and function in ``nets.py`` that the model's root class reaches, so that it changes whenever
the model's definition does, and only then.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wattbench.backends.models.base import InputSpec, ModelEntry
from wattbench.domain.errors import ModelError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NETS_MODULE = "wattbench.backends.models.nets"
DEFAULT_SEED = 0


@dataclass(frozen=True)
class BuiltinDef:
    """One built-in model: a root class of nets.py and the keyword arguments that build it."""

    key: str  # "mlp-small"
    family: str  # mlp | resnet | bert | gpt
    cls_name: str  # root class in nets.py
    config: tuple[tuple[str, Any], ...]
    description: str
    seed: int = DEFAULT_SEED

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.config)

    @property
    def ref(self) -> str:
        return f"builtin:{self.key}"


def _mlp(key: str, in_f: int, hidden: int, layers: int, out_f: int, desc: str) -> BuiltinDef:
    cfg = (("in_features", in_f), ("hidden", hidden), ("layers", layers), ("out_features", out_f))
    return BuiltinDef(key, "mlp", "MLP", cfg, desc)


def _resnet(
    key: str, blocks: tuple[int, ...], width: int, size: int, classes: int, desc: str
) -> BuiltinDef:
    cfg = (("blocks", blocks), ("width", width), ("num_classes", classes), ("image_size", size))
    return BuiltinDef(key, "resnet", "ResNet", cfg, desc)


def _bert(
    key: str, vocab: int, hidden: int, layers: int, heads: int, inter: int, desc: str
) -> BuiltinDef:
    cfg = (
        ("vocab", vocab),
        ("hidden", hidden),
        ("layers", layers),
        ("heads", heads),
        ("intermediate", inter),
        ("max_positions", 512),
    )
    return BuiltinDef(key, "bert", "BertEncoder", cfg, desc)


def _gpt(
    key: str, vocab: int, hidden: int, layers: int, heads: int, positions: int, desc: str
) -> BuiltinDef:
    cfg = (
        ("vocab", vocab),
        ("hidden", hidden),
        ("layers", layers),
        ("heads", heads),
        ("positions", positions),
    )
    return BuiltinDef(key, "gpt", "GPT", cfg, desc)


BUILTINS: dict[str, BuiltinDef] = {
    d.key: d
    for d in (
        _mlp(
            "mlp", 1024, 4096, 4, 1000, "MLP 1024→4×4096→1000, ReLU (memory-bound GEMV at batch 1)"
        ),
        _mlp(
            "mlp-small",
            1024,
            1024,
            4,
            1000,
            "MLP 1024→4×1024→1000; about 1 ms per batch-1 call on one CPU thread",
        ),
        _mlp(
            "mlp-tiny",
            256,
            512,
            5,
            16,
            "MLP 256→5×512→16; about 0.1 ms per batch-1 call on one CPU thread",
        ),
        _resnet(
            "resnet50",
            (3, 4, 6, 3),
            64,
            224,
            1000,
            "ResNet-50 v1.5 (bottleneck blocks 3-4-6-3), 224×224 input",
        ),
        _resnet(
            "resnet-small",
            (1, 1, 1, 1),
            16,
            64,
            100,
            "small ResNet (one bottleneck block per stage, width 16), 64×64 input",
        ),
        _bert(
            "bert-base",
            30522,
            768,
            12,
            12,
            3072,
            "BERT-base encoder (12 layers, 768 hidden, 12 heads), no task head",
        ),
        _bert("bert-small", 1000, 128, 2, 2, 512, "small BERT encoder (2 layers, 128 hidden)"),
        _gpt(
            "gpt2",
            50257,
            768,
            12,
            12,
            1024,
            "GPT-2-small-class decoder (12 layers, 768 hidden), KV cache for generation",
        ),
        _gpt(
            "gpt-small",
            1000,
            128,
            2,
            4,
            256,
            "small GPT decoder (2 layers, 128 hidden, vocab 1000), KV cache for generation",
        ),
    )
}

DEFAULT_SEQ_LEN = 128


def get(key_or_ref: str) -> BuiltinDef:
    """The built-in named ``mlp-small`` or ``builtin:mlp-small``."""
    key = key_or_ref.removeprefix("builtin:")
    try:
        return BUILTINS[key]
    except KeyError:
        raise ModelError(
            f"Unknown built-in model {key_or_ref!r}: choose one of "
            f"{', '.join('builtin:' + k for k in BUILTINS)} (see the model catalog)."
        ) from None


# -- catalog entries ------------------------------------------------------------------------


def _inputs(d: BuiltinDef) -> tuple[InputSpec, ...]:
    c = d.kwargs
    if d.family == "mlp":
        return (InputSpec("x", ("batch", c["in_features"]), "float32"),)
    if d.family == "resnet":
        size = c["image_size"]
        return (InputSpec("image", ("batch", 3, size, size), "float32"),)
    if d.family == "bert":
        return (
            InputSpec("input_ids", ("batch", "seq_len"), "int64", high=c["vocab"]),
            InputSpec("attention_mask", ("batch", "seq_len"), "int64"),
        )
    return (InputSpec("input_ids", ("batch", "seq_len"), "int64", high=c["vocab"]),)


def parameter_count(d: BuiltinDef) -> int:
    """Trainable parameters, from the configuration alone (no model is built)."""
    c = d.kwargs
    if d.family == "mlp":
        dims = [c["in_features"]] + [c["hidden"]] * c["layers"] + [c["out_features"]]
        return sum(a * b + b for a, b in itertools.pairwise(dims))
    if d.family == "resnet":
        w = c["width"]
        total = 3 * w * 49 + 2 * w  # stem conv + bn
        in_ch = w
        for i, count in enumerate(c["blocks"]):
            sw = w * 2**i
            for j in range(count):
                out = 4 * sw
                total += in_ch * sw + 2 * sw + sw * sw * 9 + 2 * sw + sw * out + 2 * out
                if j == 0 and (i > 0 or in_ch != out):
                    total += in_ch * out + 2 * out
                in_ch = out
        return total + in_ch * c["num_classes"] + c["num_classes"]
    h = c["hidden"]
    if d.family == "bert":
        i = c["intermediate"]
        emb = c["vocab"] * h + c["max_positions"] * h + 2 * h
        layer = (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
        return emb + c["layers"] * layer
    emb = c["vocab"] * h + c["positions"] * h
    block = (
        2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * 4 * h + 4 * h) + (4 * h * h + h)
    )
    return emb + c["layers"] * block + 2 * h


def entry(d: BuiltinDef) -> ModelEntry:
    dims = (("seq_len", DEFAULT_SEQ_LEN),) if d.family in ("bert", "gpt") else ()
    return ModelEntry(
        ref=d.ref,
        name=d.key,
        family="builtin",
        format="torch-module",
        description=d.description,
        inputs=_inputs(d),
        generative=d.family == "gpt",
        path=None,
        parameters=parameter_count(d),
        default_dims=dims,
    )


def entries() -> list[ModelEntry]:
    return [entry(d) for d in BUILTINS.values()]


# -- definition hash ------------------------------------------------------------------------


@functools.cache
def _nets_source() -> str:
    spec = importlib.util.find_spec(NETS_MODULE)
    if spec is None or spec.origin is None:
        raise ModelError(f"The built-in model definitions ({NETS_MODULE}) are missing.")
    return Path(spec.origin).read_text(encoding="utf-8")


def definition_sources(cls_name: str, source: str | None = None) -> dict[str, str]:
    """Source text of ``cls_name`` and every top-level def of nets.py it reaches by name."""
    text = _nets_source() if source is None else source
    tree = ast.parse(text)
    defs = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }
    if cls_name not in defs:
        raise ModelError(f"Built-in model class {cls_name!r} is not defined in {NETS_MODULE}.")
    seen: dict[str, str] = {}
    todo = [cls_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        node = defs[name]
        seen[name] = ast.get_source_segment(text, node) or ""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in defs and sub.id not in seen:
                todo.append(sub.id)
    return dict(sorted(seen.items()))


@functools.cache
def definition_hash(key: str) -> str:
    """sha256 over config JSON + seed + the source of the defining classes."""
    d = get(key)
    payload = {
        "family": d.family,
        "class": d.cls_name,
        "config": d.kwargs,
        "seed": d.seed,
        "sources": definition_sources(d.cls_name),
    }
    blob = json.dumps(payload, sort_keys=True, default=list).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


# -- building (worker side) -----------------------------------------------------------------


def build_module(key: str) -> torch.nn.Module:
    """Build the model in eval mode on the CPU with its seeded weights (deterministic)."""
    import torch
    from wattbench.backends.models import nets

    d = get(key)
    kwargs = d.kwargs
    kwargs.pop("image_size", None)
    cls = getattr(nets, d.cls_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(d.seed)
        module: torch.nn.Module = cls(**kwargs)
    return module.eval()
