"""Find runtimes through the ``wattbench.runtimes`` entry point group.

The built-ins (torch, onnxruntime) register through that group in pyproject.toml exactly as a
third-party plugin would; nothing here lists them. A plugin that cannot be loaded is reported
(``broken_plugins``) and skipped, never fatal to the others.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from wattbench.backends.runtimes.base import Runtime
from wattbench.domain.errors import UnsupportedOptionError

log = logging.getLogger(__name__)

GROUP = "wattbench.runtimes"
PACKAGE = "wattbench"  # the distribution whose plugins are the built-ins
_BROKEN: dict[str, str] = {}
_BUILTIN: set[str] = set()


@functools.cache
def _factories() -> dict[str, Any]:
    """name -> class (or factory) of every runtime plugin found."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    _BROKEN.clear()
    _BUILTIN.clear()
    for ep in entry_points(group=GROUP):
        if ep.dist is not None and ep.dist.name == PACKAGE:
            _BUILTIN.add(ep.name)
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the others
            log.warning("runtime plugin %s (%s) cannot be loaded: %s", ep.name, ep.value, exc)
            _BROKEN[ep.name] = f"{ep.value} cannot be loaded: {type(exc).__name__}: {exc}"
    return found


def broken_plugins() -> dict[str, str]:
    """Registered runtime plugins that could not be loaded, with why."""
    _factories()
    return dict(_BROKEN)


def runtime_names() -> list[str]:
    return sorted(_factories())


@functools.cache
def get_runtime(name: str) -> Runtime:
    """The runtime plugin called ``name`` ("torch", "onnxruntime")."""
    factories = _factories()
    if name not in factories:
        raise UnsupportedOptionError(
            f"Unknown runtime {name!r}: choose one of {', '.join(sorted(factories))}.",
            field="runtime",
        )
    runtime = factories[name]()
    if not isinstance(runtime, Runtime):
        raise UnsupportedOptionError(
            f"Runtime plugin {name!r} does not implement the Runtime "
            "interface (name, formats, available, devices, check, load).",
            field="runtime",
        )
    return runtime


def runtime_for(model_format: str) -> str | None:
    """The runtime a model of this format runs on when none is chosen: the one that lists the
    format first among its formats (its native format); on a tie a built-in before a plugin
    of another package, then by name."""
    ranked = []
    for name in runtime_names():
        try:
            formats = get_runtime(name).formats
        except UnsupportedOptionError:  # a broken plugin: it runs nothing
            continue
        if model_format in formats:
            ranked.append((formats.index(model_format), name not in _BUILTIN, name))
    return min(ranked)[2] if ranked else None


def loadable_formats(name: str) -> tuple[str, ...]:
    """The model formats runtime ``name`` runs: its own (``formats``), then those it converts
    first (an optional ``converts``), which never make it a model's default runtime."""
    runtime = get_runtime(name)
    return tuple(runtime.formats) + tuple(getattr(runtime, "converts", ()))


def reset_caches() -> None:
    """Forget found plugins, runtime instances and parsed model files (tests call this)."""
    from wattbench.backends.models import catalog

    _factories.cache_clear()
    get_runtime.cache_clear()
    catalog.reset_caches()
