"""Model descriptions shared by the catalog and the runtimes."""

from __future__ import annotations

from dataclasses import dataclass, field

Dim = int | str  # a concrete size, or the name of a dynamic dimension ("batch", "seq_len")


BATCH = "batch"  # the name of the batch dimension in input shapes


@dataclass(frozen=True)
class InputSpec:
    """One declared model input. Dimension 0 is the batch dimension when named "batch"."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str  # numpy dtype name: "float32", "int64", ...
    # For integer inputs (token ids): values are drawn from [0, high).
    high: int | None = None


@dataclass(frozen=True)
class DecoderShape:
    """The sizes of a decoder-only language model that decide its compute and memory."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int
    tied_embeddings: bool = False


@dataclass(frozen=True)
class ModelEntry:
    """One model the catalog knows: what it is, where it comes from, what it takes."""

    ref: str  # "builtin:mlp-small", "onnx-zoo:resnet50", or an absolute file path
    name: str
    family: str  # builtin | onnx-zoo | file
    format: str  # torch-module | onnx | torchscript | torch-export
    description: str
    inputs: tuple[InputSpec, ...]
    generative: bool = False  # supports the generation scenario (prefill + decode steps)
    path: str | None = None
    parameters: int | None = None
    default_dims: tuple[tuple[str, int], ...] = field(default=())  # e.g. (("seq_len", 128),)
    decoder: DecoderShape | None = None  # a language model's sizes (HF checkpoints, llm:)
