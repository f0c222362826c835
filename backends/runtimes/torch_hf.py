"""Language models on torch through transformers: local HF checkpoints and shape-only models.

``load_decoder`` builds the model in the run's worker: a checkpoint folder with
``from_pretrained`` strictly offline (``local_files_only``, HF_HUB_OFFLINE) and never with the
checkpoint's own code (``trust_remote_code=False``; the folder was already checked by
``hf.read_checkpoint``), an ``llm:`` architecture with ``from_config`` and random weights made
directly on the device in the run's dtype (no second copy). ``HFGenerative`` then generates
the way serving is measured: the prompt (``prompt_tokens`` synthetic token ids, seeded) is
prefilled for every concurrent sequence of the batch, then one token per step with the KV
cache, greedy, the end-of-sequence token ignored, exactly ``new_tokens`` tokens.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wattbench.backends.models import hf, llm_shapes
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.base import RuntimeOptions
from wattbench.backends.runtimes.torch_loaded import TorchLoaded, greedy_tokens
from wattbench.domain.errors import ModelError, ShapeError

if TYPE_CHECKING:
    import torch

FAMILIES = (hf.FAMILY, llm_shapes.FAMILY)
FORMATS = (hf.FORMAT, llm_shapes.FORMAT)


def _offline() -> Any:
    """transformers, imported with every download path of the hub switched off."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def _random_weights(model: ModelEntry, dev: torch.device, dtype: Any) -> Any:
    import torch

    transformers = _offline()
    cfg = llm_shapes.get(model.ref).hf_config
    config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(llm_shapes.SEED)
        with dev:  # the weights are made where they run, in the run's dtype: one copy
            return transformers.AutoModelForCausalLM.from_config(
                config, dtype=dtype, trust_remote_code=False
            )


def _checkpoint(model: ModelEntry, dev: torch.device, dtype: Any) -> Any:
    transformers = _offline()
    assert model.path is not None
    try:
        module = transformers.AutoModelForCausalLM.from_pretrained(
            model.path,
            dtype=dtype,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
        )
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"transformers cannot load the checkpoint {model.path}: {first}. Check that the "
            "folder is complete (config.json and every weight file).",
            field="model",
        ) from exc
    return module.to(dev)


def decoder_module(model: ModelEntry, dev: torch.device, dtype: Any) -> Any:
    """The transformers module of a checkpoint or an llm: architecture, on ``dev``."""
    if model.family == llm_shapes.FAMILY:
        return _random_weights(model, dev, dtype)
    return _checkpoint(model, dev, dtype)


def load_decoder(
    model: ModelEntry,
    dev: torch.device,
    dtype: Any,
    options: RuntimeOptions,
    quantize: Callable[[Any], Any] | None = None,
) -> HFGenerative:
    """The model of ``model`` (a checkpoint or an llm: architecture) loaded on ``dev``,
    its weights then passed through ``quantize`` when given (weight-only int8)."""
    try:
        module = decoder_module(model, dev, dtype)
        if quantize is not None:
            module = quantize(module)
    except RuntimeError as exc:
        raise ModelError(f"Cannot build {model.ref} on {dev}: {exc}") from exc
    return HFGenerative(module.eval(), model, dev, dtype, options)


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class HFGenerative(TorchLoaded):
    """A transformers causal LM: ``run_once`` is one forward of the prompt-length inputs;
    generation prefills the prompt and decodes one token per step with the KV cache."""

    def __init__(
        self, module: Any, model: ModelEntry, dev: torch.device, dtype: Any, options: RuntimeOptions
    ) -> None:
        super().__init__(module, model, dev, dtype, options)
        import torch

        assert model.decoder is not None
        length = options.prompt_tokens + options.new_tokens
        if options.generation and length > model.decoder.max_positions:
            raise ShapeError(
                f"{model.ref} holds at most {model.decoder.max_positions} positions: prompt "
                f"{options.prompt_tokens} + {options.new_tokens} new tokens is too long.",
                field="new_tokens",
            )
        self.length = length
        gen = torch.Generator().manual_seed(options.seed)
        self.prompt = torch.randint(
            0, model.decoder.vocab, (options.batch_size, options.prompt_tokens), generator=gen
        ).to(dev)
        self.cache: Any = None
        self.pos = 0
        self.next_ids = self.prompt[:, :1]
        # the cache argument's name: "cache" in transformers 5, "past_key_values" before
        params = inspect.signature(module.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def reset(self) -> None:
        self.cache = None  # the next prefill starts a new cache
        self.pos = 0

    def prefill(self) -> None:
        out = self.module(input_ids=self.prompt, use_cache=True, logits_to_keep=1)
        self.cache = _cache_of(out)
        self.next_ids = out.logits[:, -1].argmax(dim=-1, keepdim=True)
        self.pos = self.prompt.shape[1]
        self.synchronize()

    def decode_step(self) -> None:
        if self.cache is None or self.pos >= self.length:
            raise ShapeError(
                f"Decode step past the {self.length} positions prepared; call reset() and "
                "prefill() first."
            )
        kwargs = {self._cache_arg: self.cache}
        out = self.module(input_ids=self.next_ids, use_cache=True, **kwargs)
        self.cache = _cache_of(out)
        self.next_ids = out.logits[:, -1].argmax(dim=-1, keepdim=True)
        self.pos += 1
        self.synchronize()

    def generate(self) -> Any:
        """Greedy tokens of the batch, [batch, new_tokens] (for checks, not timed)."""
        return greedy_tokens(self)

    def settings(self) -> dict[str, Any]:
        import transformers

        weights = llm_shapes.RANDOM if self.model.family == llm_shapes.FAMILY else "checkpoint"
        return super().settings() | {
            "generation": "greedy, EOS ignored, transformers DynamicCache",
            "transformers_version": transformers.__version__,
            "weights": weights,
            "prompt_tokens": self.options.prompt_tokens,
            "new_tokens": self.options.new_tokens,
        }

    def close(self) -> None:
        self.cache = None
        super().close()
