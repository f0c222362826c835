"""A GenAI folder loaded on ONNX Runtime GenAI, generating a fixed number of tokens.

``prefill`` appends the prompt (one forward pass over it) and selects the first token;
``decode_step`` runs the model on the last token and selects the next. The search is greedy
with ``min_length = max_length = prompt + new tokens``, so the end-of-sequence token never ends
a sequence early: every call generates exactly ``new_tokens`` per sequence, for ``batch``
sequences at once. Each step reads the selected tokens back to the host, which also waits for
the device.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.models.genai_build import GenaiFacts
from wattbench.backends.runtimes.base import DeviceMemory, RuntimeOptions
from wattbench.backends.runtimes.gpu_memory import nvml_process_bytes
from wattbench.domain.errors import ShapeError


def synthetic_prompt(
    batch: int, length: int, vocab: int, seed: int, avoid: int | None
) -> np.ndarray:
    """Seeded token ids [batch, length] in [0, vocab), never ``avoid`` (the padding id, which
    ORT GenAI masks out of attention)."""
    rng = np.random.default_rng(seed)
    if avoid is None or not 0 <= avoid < vocab:
        return rng.integers(0, vocab, size=(batch, length), dtype=np.int32)
    ids = rng.integers(0, vocab - 1, size=(batch, length), dtype=np.int32)
    return ids + (ids >= avoid).astype(np.int32)


class OrtGenaiGenerative:
    """An og.Model with greedy search parameters; a fresh og.Generator per sequence."""

    def __init__(
        self,
        og: Any,
        model: Any,
        entry: ModelEntry,
        folder: Path,
        facts: GenaiFacts,
        device: str,
        options: RuntimeOptions,
        converted_from: str | None,
    ) -> None:
        self.og = og
        self.model = model
        self.entry = entry
        self.folder = folder
        self.facts = facts
        self.device = device
        self.options = options
        self.converted_from = converted_from
        self.items_per_call = options.batch_size
        length = options.prompt_tokens + options.new_tokens
        if length > facts.context_length:
            raise ShapeError(
                f"{entry.ref} holds at most {facts.context_length} positions: prompt "
                f"{options.prompt_tokens} + {options.new_tokens} new tokens is too long.",
                field="new_tokens",
            )
        self.length = length
        self.prompt = synthetic_prompt(
            options.batch_size,
            options.prompt_tokens,
            facts.vocab_size,
            options.seed,
            facts.pad_token_id,
        )
        self.input_shapes = (("input_ids", tuple(self.prompt.shape), "int32"),)
        self.params = og.GeneratorParams(model)
        self.params.set_search_options(
            batch_size=options.batch_size,
            max_length=length,
            min_length=length,
            do_sample=False,
            num_beams=1,
        )
        self.generator: Any = None
        self.next_tokens: np.ndarray | None = None
        self.closed = False

    def with_prompt(self, prompt: np.ndarray) -> None:
        """Generate from these token ids [batch, prompt_tokens] instead (for checks)."""
        want = (self.options.batch_size, self.options.prompt_tokens)
        if prompt.shape != want:
            raise ShapeError(f"A prompt of shape {want} is needed, not {prompt.shape}.")
        self.prompt = prompt.astype(np.int32)

    def reset(self) -> None:
        self.generator = None  # frees the previous sequence's KV cache first
        self.generator = self.og.Generator(self.model, self.params)

    def prefill(self) -> None:
        if self.generator is None:
            self.reset()
        gen = self.generator
        gen.append_tokens(self.prompt)
        gen.generate_next_token()
        self.next_tokens = gen.get_next_tokens()

    def decode_step(self) -> None:
        gen = self.generator
        if gen is None or gen.is_done():
            raise ShapeError(
                f"Decode step past the {self.length} positions prepared; call reset() and "
                "prefill() first."
            )
        gen.generate_next_token()
        self.next_tokens = gen.get_next_tokens()

    def run_once(self) -> None:
        """One whole generation: prefill and every decode step."""
        self.reset()
        self.prefill()
        for _ in range(self.options.new_tokens - 1):
            self.decode_step()

    def generate(self) -> np.ndarray:
        """The new tokens of one generation, [batch, new_tokens] (for checks, not timed)."""
        self.reset()
        self.prefill()
        assert self.next_tokens is not None
        out = [np.array(self.next_tokens)]
        for _ in range(self.options.new_tokens - 1):
            self.decode_step()
            out.append(np.array(self.next_tokens))
        return np.stack(out, axis=1)

    def synchronize(self) -> None:
        """Nothing to wait for: each step reads its tokens back to the host."""

    def settings(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "runtime": "ortgenai",
            "onnxruntime_genai_version": version("onnxruntime-genai"),
            "device": self.device,
            "device_type": str(self.model.device_type),
            "precision": self.options.precision,
            "threads_requested": self.options.threads,
            "model_folder": str(self.folder),
            "converted_from": self.converted_from,
            "model_type": self.facts.model_type,
            "generation": "greedy, EOS ignored (min_length = max_length)",
            "prompt_tokens": self.options.prompt_tokens,
            "new_tokens": self.options.new_tokens,
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS",) if k in os.environ},
        }

    def reset_peak_memory(self) -> None:
        """ORT GenAI keeps no peak of its own; the process's peak is recorded by the engine."""

    def peak_memory(self) -> DeviceMemory:
        if not self.device.startswith("cuda"):
            return DeviceMemory(
                notes=(
                    "allocator peaks: n/a (ORT GenAI does not report them)",
                    "GPU process memory: n/a (not an NVIDIA GPU run)",
                )
            )
        index = int(self.device.split(":", 1)[1]) if ":" in self.device else 0
        process, why = nvml_process_bytes(index)
        notes = ["allocator peaks: n/a (ORT GenAI does not report them)"]
        return DeviceMemory(process_bytes=process, notes=tuple(notes + ([why] if why else [])))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.generator = None
        self.params = None
        self.model = None
