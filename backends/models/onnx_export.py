"""Export the built-in torch models to ONNX, cached on disk, so one model runs on both runtimes.

The file name carries the definition hash, so a changed definition is exported anew and a
stale file is never reused. Writes go to a temporary file renamed into place, so concurrent
workers never read a half-written model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wattbench.backends.models import builtin
from wattbench.domain.errors import ModelError

log = logging.getLogger(__name__)

CACHE_ENV = "WATTBENCH_CACHE_DIR"
# A single-file ONNX model holds at most 2 GB (protobuf limit); every built-in is below that.
_SINGLE_FILE_MAX_BYTES = 1_800_000_000
# Bumped when the export procedure changes, so that older cached files are not reused.
EXPORT_FORMAT = "x2"


def cache_dir() -> Path:
    """Wattbench's cache folder: $WATTBENCH_CACHE_DIR, else the platform's user cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env)
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("wattbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def onnx_cache_dir() -> Path:
    path = cache_dir() / "onnx"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dynamic_dims(key: str) -> tuple[str, ...]:
    """Dimensions left dynamic in the exported graph."""
    family = builtin.get(key).family
    return ("batch", "seq_len") if family in ("bert", "gpt") else ("batch",)


def export_path(key: str) -> Path:
    """Where the export of built-in ``key`` lives: <cache>/onnx/<definition-hash>-<dims>.onnx."""
    dims = "-".join(dynamic_dims(key))
    return onnx_cache_dir() / f"{builtin.definition_hash(key)}-{dims}-{EXPORT_FORMAT}.onnx"


def atomic_target(path: Path) -> Path:
    """A temporary name in ``path``'s folder, to be os.replace()d onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def _quiet_torch() -> Iterator[io.StringIO]:
    """Silence the exporter's progress prints, log lines and deprecation warnings."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    buf = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _example(key: str) -> tuple[tuple[Any, ...], dict[str, dict[int, str]]]:
    """Example inputs (batch 2, seq_len 16) and the dynamic axes of each input."""
    import torch

    d = builtin.get(key)
    c = d.kwargs
    if d.family == "mlp":
        return (torch.randn(2, c["in_features"]),), {"x": {0: "batch"}}
    if d.family == "resnet":
        size = c["image_size"]
        return (torch.randn(2, 3, size, size),), {"image": {0: "batch"}}
    ids = torch.randint(0, c["vocab"], (2, 16))
    axes = {0: "batch", 1: "seq_len"}
    if d.family == "bert":
        mask = torch.ones(2, 16, dtype=torch.int64)
        return (ids, mask), {"input_ids": axes, "attention_mask": axes}
    return (ids,), {"input_ids": axes}


def _export_dynamo(
    module: Any, args: tuple[Any, ...], axes: dict[str, dict[int, str]], target: Path
) -> None:
    import torch

    dims: dict[str, Any] = {}
    shapes = {
        name: {i: dims.setdefault(dim, torch.export.Dim(dim)) for i, dim in ax.items()}
        for name, ax in axes.items()
    }
    program = torch.onnx.export(
        module,
        args,
        dynamo=True,
        dynamic_shapes=shapes,
        output_names=["output"],
        external_data=False,
        verbose=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(target), external_data=False)


def _export_legacy(
    module: Any, args: tuple[Any, ...], axes: dict[str, dict[int, str]], target: Path
) -> None:
    import torch

    torch.onnx.export(
        module,
        args,
        str(target),
        dynamo=False,
        input_names=list(axes),
        output_names=["output"],
        dynamic_axes={**axes, "output": next(iter(axes.values()))},
        opset_version=17,
        do_constant_folding=True,
    )


def export_builtin(key: str) -> Path:
    """The ONNX file of built-in ``key`` (exported once, then read from the cache)."""
    path = export_path(key)
    if path.exists():
        return path
    import torch

    if builtin.parameter_count(builtin.get(key)) * 4 > _SINGLE_FILE_MAX_BYTES:
        raise ModelError(
            f"builtin:{key} is too large for a single-file ONNX export; run it on "
            "the torch runtime."
        )
    module = builtin.build_module(key)
    args, axes = _example(key)
    target = atomic_target(path)
    log.info("exporting builtin:%s to ONNX at %s", key, path)
    try:
        with _quiet_torch(), torch.inference_mode(False), torch.no_grad():
            try:  # the TorchScript-based exporter: mature for these graphs and ~10x faster
                _export_legacy(module, args, axes, target)
            except Exception as exc:  # gone or failing in some torch version: use dynamo
                log.warning(
                    "TorchScript ONNX export of builtin:%s failed (%s); trying dynamo=True",
                    key,
                    exc,
                )
                _export_dynamo(module, args, axes, target)
        os.replace(target, path)
    except Exception as exc:
        raise ModelError(
            f"Could not export builtin:{key} to ONNX ({type(exc).__name__}: {exc}). "
            "Run it on the torch runtime, or report this with the log of a verbose run."
        ) from exc
    finally:
        target.unlink(missing_ok=True)
    return path
