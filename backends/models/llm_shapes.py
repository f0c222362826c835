"""Shape-only language models: well-known open architectures with random weights.

Each entry holds the configuration numbers of a public model's config.json (sizes, heads, key
and value heads, vocabulary, rope settings, positions) and nothing else: no weights are
downloaded or read. A run builds the model with ``transformers`` from these numbers and random
weights at its real size, so an air-gapped site measures the same compute and memory traffic as
the real model, though not its answers: every entry is named and described "random weights",
and runs, tables and reports carry that name. Refs are ``llm:<key>`` (``llm:tinyllama-1.1b``).

``decoder_shape`` reads the sizes that decide compute and memory from any HF config (these and
local checkpoints alike); ``parameter_count`` counts a decoder's weights from them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wattbench.backends.models.base import DecoderShape, InputSpec, ModelEntry
from wattbench.domain.errors import ModelError
from wattbench.domain.spec import RANDOM_WEIGHTS, RANDOM_WEIGHTS_PREFIX

PREFIX = RANDOM_WEIGHTS_PREFIX
FAMILY = "llm-shape"
FORMAT = "hf-config"
SEED = 0
RANDOM = RANDOM_WEIGHTS
DEFAULT_SEQ_LEN = 128


@dataclass(frozen=True)
class Architecture:
    key: str  # "tinyllama-1.1b"
    title: str  # "TinyLlama-1.1B"
    source: str  # the public checkpoint whose config.json the numbers come from
    config: tuple[tuple[str, Any], ...]

    @property
    def ref(self) -> str:
        return PREFIX + self.key

    @property
    def hf_config(self) -> dict[str, Any]:
        return dict(self.config)


def _arch(key: str, title: str, source: str, **config: Any) -> Architecture:
    return Architecture(key, title, source, tuple(sorted(config.items())))


ARCHITECTURES: dict[str, Architecture] = {
    a.key: a
    for a in (
        _arch(
            "llama-3-8b",
            "Llama-3-8B",
            "meta-llama/Meta-Llama-3-8B",
            model_type="llama",
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=128256,
            max_position_embeddings=8192,
            rope_theta=500000.0,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        ),
        _arch(
            "mistral-7b",
            "Mistral-7B v0.1",
            "mistralai/Mistral-7B-v0.1",
            model_type="mistral",
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=32000,
            max_position_embeddings=32768,
            rope_theta=10000.0,
            rms_norm_eps=1e-5,
            sliding_window=4096,
            tie_word_embeddings=False,
        ),
        _arch(
            "qwen2.5-7b",
            "Qwen2.5-7B",
            "Qwen/Qwen2.5-7B",
            model_type="qwen2",
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            vocab_size=152064,
            max_position_embeddings=131072,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            use_sliding_window=False,
            tie_word_embeddings=False,
        ),
        _arch(
            "phi-3-mini",
            "Phi-3-mini-4k",
            "microsoft/Phi-3-mini-4k-instruct",
            model_type="phi3",
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32064,
            max_position_embeddings=4096,
            original_max_position_embeddings=4096,
            rope_theta=10000.0,
            rms_norm_eps=1e-5,
            sliding_window=2047,
            tie_word_embeddings=False,
        ),
        _arch(
            "tinyllama-1.1b",
            "TinyLlama-1.1B",
            "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            model_type="llama",
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=22,
            num_attention_heads=32,
            num_key_value_heads=4,
            vocab_size=32000,
            max_position_embeddings=2048,
            rope_theta=10000.0,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
        ),
    )
}

# model types whose attention projections carry biases (q, k and v)
_QKV_BIAS = {"qwen2"}


def _int(cfg: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(
            f"The model configuration has no usable {key} (a positive integer is needed; "
            f"found {value!r}).",
            field="model",
        )
    return value


def decoder_shape(cfg: Mapping[str, Any]) -> DecoderShape:
    """The sizes of a decoder from its HF config.json values; ModelError when one is missing."""
    hidden = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads")
    head_dim = cfg.get("head_dim") or hidden // heads
    return DecoderShape(
        layers=_int(cfg, "num_hidden_layers"),
        hidden=hidden,
        heads=heads,
        kv_heads=_int(cfg, "num_key_value_heads", heads),
        head_dim=_int({"head_dim": head_dim}, "head_dim"),
        intermediate=_int(cfg, "intermediate_size"),
        vocab=_int(cfg, "vocab_size"),
        max_positions=_int(cfg, "max_position_embeddings"),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
    )


def parameter_count(shape: DecoderShape, model_type: str = "llama") -> int:
    """Weights of a Llama-style decoder (gated MLP, RMS norms) of ``shape``."""
    h, q, kv = shape.hidden, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    attention = h * q + 2 * h * kv + q * h
    if model_type in _QKV_BIAS:
        attention += q + 2 * kv
    layer = attention + 3 * h * shape.intermediate + 2 * h
    embeddings = shape.vocab * h * (1 if shape.tied_embeddings else 2)
    return embeddings + shape.layers * layer + h


def get(key_or_ref: str) -> Architecture:
    key = key_or_ref.removeprefix(PREFIX)
    try:
        return ARCHITECTURES[key]
    except KeyError:
        raise ModelError(
            f"Unknown architecture {key_or_ref!r}: choose one of "
            f"{', '.join(PREFIX + k for k in ARCHITECTURES)} (see the model catalog).",
            field="model",
        ) from None


def display_name(key: str) -> str:
    return f"{key} ({RANDOM})"


@functools.cache
def entry(key_or_ref: str) -> ModelEntry:
    a = get(key_or_ref)
    cfg = a.hf_config
    shape = decoder_shape(cfg)
    gqa = f", GQA {shape.heads}/{shape.kv_heads}" if shape.kv_heads != shape.heads else ""
    return ModelEntry(
        ref=a.ref,
        name=display_name(a.key),
        family=FAMILY,
        format=FORMAT,
        description=(
            f"{a.title} architecture ({shape.layers} layers, hidden {shape.hidden}{gqa}, "
            f"vocab {shape.vocab}), {RANDOM}: the sizes of {a.source}, not its answers"
        ),
        inputs=(InputSpec("input_ids", ("batch", "seq_len"), "int64", high=shape.vocab),),
        generative=True,
        parameters=parameter_count(shape, str(cfg["model_type"])),
        default_dims=(("seq_len", min(DEFAULT_SEQ_LEN, shape.max_positions)),),
        decoder=shape,
    )


def entries() -> list[ModelEntry]:
    return [entry(k) for k in ARCHITECTURES]


def definition_hash(key_or_ref: str) -> str:
    """sha256 over the configuration, the seed and the words "random weights"."""
    a = get(key_or_ref)
    payload = {"config": a.hf_config, "seed": SEED, "weights": RANDOM}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
