"""Tiny Hugging Face checkpoints of real decoder architectures, built here from nothing.

Each is a complete local checkpoint folder, as ``save_pretrained`` writes it: config.json,
generation_config.json, model.safetensors and a small fast tokenizer (a WordLevel tokenizer over
a tiny corpus, made with the ``tokenizers`` package and saved as tokenizer.json beside it).
Weights are random with a fixed seed, so two builds of one architecture are identical.

- ``build_checkpoint(arch, folder)``: one checkpoint ("llama", "mistral", "qwen2", "phi3").
- ``tiny_checkpoints``: a session fixture, {arch: folder}, built once per test session.
- ``tiny_llama``: the Llama one alone (the cheapest to ask for).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ARCHITECTURES = ("llama", "mistral", "qwen2", "phi3")
SEED = 1234
VOCAB = 512
MAX_POSITIONS = 256

# Shared shape of every tiny model: 2 layers, hidden 64, 4 heads of 16, 2 KV heads.
_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": VOCAB,
    "max_position_embeddings": MAX_POSITIONS,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 3,
    "tie_word_embeddings": False,
}

_CORPUS = (
    "the quick brown fox jumps over the lazy dog . "
    "a watt is a joule per second and energy is power over time . "
    "language models predict the next token from the tokens before it . "
    "prefill reads the prompt and decode writes one token per step ."
)
_SPECIAL = ("<unk>", "<s>", "</s>", "<pad>")


def _config(arch: str) -> Any:
    import transformers

    kinds: dict[str, Any] = {
        "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig,
        "qwen2": transformers.Qwen2Config,
        "phi3": transformers.Phi3Config,
    }
    if arch not in kinds:
        raise ValueError(f"unknown tiny architecture {arch!r}; one of {', '.join(ARCHITECTURES)}")
    extra: dict[str, Any] = {}
    if arch == "mistral":
        extra["sliding_window"] = MAX_POSITIONS
    if arch == "phi3":
        extra["original_max_position_embeddings"] = MAX_POSITIONS
    return kinds[arch](**_SHAPE, **extra)


def _tokenizer() -> Any:
    """A WordLevel fast tokenizer over the tiny corpus, padded to ids that fit the vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=VOCAB, special_tokens=list(_SPECIAL))
    tok.train_from_iterator([_CORPUS], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
    )


def build_checkpoint(arch: str, folder: Path) -> Path:
    """Write a complete tiny checkpoint of ``arch`` into ``folder`` (created) and return it."""
    import torch
    import transformers

    config = _config(arch)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    _tokenizer().save_pretrained(folder)
    return folder


def build_all(root: Path) -> dict[str, Path]:
    return {arch: build_checkpoint(arch, root / f"tiny-{arch}") for arch in ARCHITECTURES}


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Llama, Mistral, Qwen2 and Phi-3 checkpoints, built once per test session."""
    return build_all(tmp_path_factory.mktemp("tiny-llms"))


@pytest.fixture(scope="session")
def tiny_llama(tiny_checkpoints: dict[str, Path]) -> Path:
    return tiny_checkpoints["llama"]
