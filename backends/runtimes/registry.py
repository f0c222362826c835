"""Find runtimes through the ``wattbench.runtimes`` entry point group, and validate a run.

The built-ins register through the same group as a third-party plugin would; when the
package metadata is missing (a source tree used without install) they are added directly.
``check_options`` refuses, before any run, what a runtime or device cannot do.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from wattbench.backends.runtimes.base import Runtime, RuntimeOptions
from wattbench.domain.errors import ShapeError, UnsupportedOptionError

if TYPE_CHECKING:
    from wattbench.domain.spec import RunSpec

log = logging.getLogger(__name__)

GROUP = "wattbench.runtimes"
BUILTIN = {
    "torch": "wattbench.backends.runtimes.torch_rt:TorchRuntime",
    "onnxruntime": "wattbench.backends.runtimes.ort_rt:OrtRuntime",
}


def _load_target(target: str) -> Any:
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def _factories() -> dict[str, Any]:
    """name -> class (or factory) of every runtime plugin found."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the built-ins
            log.warning("runtime plugin %s (%s) cannot be loaded: %s", ep.name, ep.value, exc)
    for name, target in BUILTIN.items():
        if name not in found:
            found[name] = _load_target(target)
    return found


def runtime_names() -> list[str]:
    return sorted(_factories())


@functools.cache
def get_runtime(name: str) -> Runtime:
    """The runtime plugin called ``name`` ("torch", "onnxruntime")."""
    factories = _factories()
    if name not in factories:
        raise UnsupportedOptionError(
            f"Unknown runtime {name!r}: choose one of {', '.join(sorted(factories))}."
        )
    runtime = factories[name]()
    if not isinstance(runtime, Runtime):
        raise UnsupportedOptionError(
            f"Runtime plugin {name!r} does not implement the Runtime "
            "interface (available, devices, check, load)."
        )
    return runtime


def options_from_spec(spec: RunSpec) -> RuntimeOptions:
    return RuntimeOptions(
        precision=spec.precision,
        batch_size=spec.batch_size,
        threads=spec.threads,
        dims=spec.dims,
        input_shapes=spec.input_shapes,
        ort_provider=spec.ort_provider,
        ort_graph_optimization=spec.ort_graph_optimization,
        prompt_tokens=spec.prompt_tokens,
        new_tokens=spec.new_tokens,
        seed=spec.repeat,
    )


def check_options(spec: RunSpec) -> None:
    """Raise a BadInputError (ModelError, ShapeError, DeviceError, UnsupportedOptionError)
    with a message when ``spec`` cannot run; return None when it can. No model is loaded."""
    from wattbench.backends.models import catalog
    from wattbench.domain.spec import Scenario

    runtime = get_runtime(spec.runtime)
    avail = runtime.available()
    if not avail.ok:
        raise UnsupportedOptionError(f"Runtime {spec.runtime} is not usable: {avail.reason}")
    dims = spec.dims_map
    shapes = dict(spec.input_shapes)
    entry = catalog.resolve_model(
        spec.model, dims={**dims, catalog.BATCH: spec.batch_size}, input_shapes=shapes
    )
    catalog.concrete_inputs(entry, spec.batch_size, dims, shapes)
    if spec.scenario is Scenario.GENERATION:
        if not entry.generative:
            raise UnsupportedOptionError(
                f"{spec.model} is not a generative model: the generation scenario needs a "
                "decoder with a KV cache (builtin:gpt-small, builtin:gpt2); use single-stream "
                "or offline."
            )
        if spec.runtime != "torch":
            raise UnsupportedOptionError(
                "The generation scenario (KV-cache decoding) runs on --runtime torch only."
            )
        if spec.new_tokens < 2:
            raise UnsupportedOptionError("Generation needs at least 2 new tokens (TPOT).")
        limit = catalog.max_positions(entry)
        if limit is not None and spec.prompt_tokens + spec.new_tokens > limit:
            raise ShapeError(
                f"{spec.model} holds at most {limit} positions: prompt {spec.prompt_tokens} + "
                f"{spec.new_tokens} new tokens is too long."
            )
    runtime.check(entry, spec.device, options_from_spec(spec))


def reset_caches() -> None:
    """Forget found plugins, runtime instances and parsed model files (tests call this)."""
    from wattbench.backends.models import catalog

    _factories.cache_clear()
    get_runtime.cache_clear()
    catalog.reset_caches()
