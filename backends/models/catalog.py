"""The model catalog: built-in workloads, the onnx package's test models, and model files.

``list_models`` lists what Wattbench knows by name; ``resolve_model`` turns a reference (a
catalog ref or a file path) into a :class:`ModelEntry` with declared inputs, raising
``ModelError`` / ``ShapeError`` with a message that says what to do; ``concrete_inputs``
fixes every dimension (batch, user dims) into the shapes the runtime synthesizes data for.
A model file is read in a probe process (``probe``), never in the caller's.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from wattbench.backends.models import builtin, files, genai_build, hf, llm_shapes, probe
from wattbench.backends.models.base import BATCH, InputSpec, ModelEntry
from wattbench.backends.models.files import onnx_signature
from wattbench.backends.models.inputs import format_shape, normalize_dtype, parse_shape
from wattbench.domain.errors import ModelError, ShapeError
from wattbench.domain.events import CancelToken

log = logging.getLogger(__name__)

ZOO_PREFIX = "onnx-zoo:"
BUILTIN_PREFIX = "builtin:"
DIM_HELP = "set its size, NAME=SIZE (e.g. seq_len=128; the batch is the batch size)"


# -- the onnx package's test models ("onnx-zoo") -------------------------------------------


def zoo_dir() -> Path | None:
    """onnx/backend/test/data/light of the installed onnx package, or None without onnx."""
    import importlib.util

    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "backend" / "test" / "data" / "light"
    return path if path.is_dir() else None


def zoo_names() -> list[str]:
    root = zoo_dir()
    if root is None:
        return []
    return sorted(p.stem.removeprefix("light_") for p in root.glob("*.onnx"))


@functools.cache
def _zoo_entry(name: str) -> ModelEntry:
    root = zoo_dir()
    if root is None:
        raise ModelError("The onnx package is not installed, so onnx-zoo models are missing.")
    path = root / f"light_{name}.onnx"
    if not path.is_file():
        raise ModelError(
            f"Unknown onnx-zoo model {name!r}: choose one of "
            f"{', '.join(ZOO_PREFIX + n for n in zoo_names())} (see the model catalog)."
        )
    inputs, params = onnx_signature(path)
    return ModelEntry(
        ref=ZOO_PREFIX + name,
        name=name,
        family="onnx-zoo",
        format="onnx",
        description=f"{name} architecture from the onnx package's test data (constant weights)",
        inputs=inputs,
        path=str(path),
        parameters=params,
    )


def zoo_entries() -> list[ModelEntry]:
    out = []
    for name in zoo_names():
        try:
            out.append(_zoo_entry(name))
        except ModelError as exc:  # a damaged file in the onnx package: list the others
            log.warning("skipping onnx-zoo:%s: %s", name, exc)
    return out


def list_models() -> list[ModelEntry]:
    """Every model known by name: the built-ins, the onnx-zoo models, the shape-only
    language models, then the checkpoints of the local Hugging Face cache (names and sizes:
    nothing in them is opened)."""
    cached = [hf.cache_entry(c) for c in hf.cached_checkpoints()]
    return builtin.entries() + zoo_entries() + llm_shapes.entries() + cached


# -- resolving -----------------------------------------------------------------------------


def resolve_model(
    ref: str,
    dims: Mapping[str, int] | None = None,
    input_shapes: Mapping[str, str] | None = None,
    *,
    cancel: CancelToken | None = None,
) -> ModelEntry:
    """The entry of a catalog ref or a model file. With ``dims`` given (even empty), also
    checks that every dynamic dimension is set, so a missing one fails here, before a run.
    A file is read in a probe process, which ``cancel`` (or Ctrl-C) stops."""
    ref = ref.strip()
    if ref.startswith(BUILTIN_PREFIX):
        entry = builtin.entry(builtin.get(ref))
    elif ref.startswith(ZOO_PREFIX):
        entry = _zoo_entry(ref.removeprefix(ZOO_PREFIX))
    elif ref.startswith(llm_shapes.PREFIX):
        entry = llm_shapes.entry(ref)
    elif ref.startswith(hf.PREFIX):
        entry = _checkpoint_entry(hf.cache_folder(ref), cancel)
        entry = replace(entry, ref=ref, name=ref.removeprefix(hf.PREFIX))
    else:
        entry = _file_entry(ref, input_shapes, cancel)
    if input_shapes and entry.format != "torchscript":
        entry = _override_shapes(entry, input_shapes)
    if dims is not None:
        concrete_inputs(entry, dims.get(BATCH, natural_batch(entry)), dims, input_shapes)
    return entry


def natural_batch(entry: ModelEntry) -> int:
    """The batch to check a model with when none is asked for: its fixed leading dimension if
    it has one (a file exported at batch 4 is not "wrong" before a batch is chosen), else 1."""
    for spec in entry.inputs:
        if len(spec.shape) > 1 and isinstance(spec.shape[0], int) and entry.family != "builtin":
            return spec.shape[0]
    return 1


def canonical_ref(ref: str) -> str:
    """The catalog ref a bare name means ("mlp-small" -> "builtin:mlp-small"), when the name
    is in the catalog and no file of that name exists; anything else is returned as given."""
    ref = ref.strip()
    if ":" in ref or Path(ref).expanduser().exists():
        return ref
    if ref in builtin.BUILTINS:
        return BUILTIN_PREFIX + ref
    if ref in zoo_names():
        return ZOO_PREFIX + ref
    if ref in llm_shapes.ARCHITECTURES:
        return llm_shapes.PREFIX + ref
    return ref


def model_format(ref: str) -> str:
    """The format a ref names, read from its prefix or suffix alone (nothing is opened)."""
    if ref.startswith(BUILTIN_PREFIX):
        return "torch-module"
    if ref.startswith(ZOO_PREFIX):
        return "onnx"
    if genai_build.is_genai_folder(Path(ref).expanduser()):
        return genai_build.GENAI_FORMAT
    if ref.startswith(llm_shapes.PREFIX):
        return llm_shapes.FORMAT
    if ref.startswith(hf.PREFIX) or Path(ref).expanduser().is_dir():
        return hf.FORMAT
    return files.file_format(Path(ref))


def _did_you_mean(ref: str) -> str:
    import difflib

    names = [BUILTIN_PREFIX + k for k in builtin.BUILTINS] + [ZOO_PREFIX + n for n in zoo_names()]
    names += [llm_shapes.PREFIX + k for k in llm_shapes.ARCHITECTURES]
    bare = {n.split(":", 1)[1]: n for n in names}
    close = difflib.get_close_matches(ref, list(bare), n=1, cutoff=0.6)
    if close:
        return f" Did you mean {bare[close[0]]}? (see the model catalog)"
    if ":" in ref and not ref.startswith(("/", ".")):
        return " Catalog refs start with builtin:, onnx-zoo:, llm: or hf: (see the model catalog)."
    return ""


def _file_entry(
    ref: str, input_shapes: Mapping[str, str] | None, cancel: CancelToken | None
) -> ModelEntry:
    path = Path(ref).expanduser()
    try:
        st = path.stat()  # a look at the name only: nothing is opened yet
    except FileNotFoundError:
        raise ModelError(
            f"Model file {ref} does not exist.{_did_you_mean(ref)}", field="model"
        ) from None
    except OSError as exc:
        raise ModelError(f"Cannot look at the model file {ref}: {exc.strerror}.") from exc
    if stat.S_ISDIR(st.st_mode) and genai_build.is_genai_folder(path):
        return genai_build.genai_entry(path)
    if stat.S_ISDIR(st.st_mode):
        if not hf.is_checkpoint(path):
            raise ModelError(
                f"{ref} is a folder without a config.json; give a model file (.onnx, .pt) or a "
                "Hugging Face checkpoint folder (config.json + safetensors weights).",
                field="model",
            )
        return _checkpoint_entry(path.resolve(), cancel)
    if not os.access(path, os.R_OK):
        raise ModelError(f"Model file {ref} is not readable by this user; check its permissions.")
    path = path.resolve()
    fmt = files.file_format(path)
    if fmt == "torch-export":
        raise files.torch_export_refused(path)
    st = files.inspect_file(path, fmt)  # .onnx, or any other name: it must parse as ONNX
    facts = probe.read_facts(path, fmt, st, cancel)
    return files.entry_with_shapes(facts, input_shapes)


def _checkpoint_entry(folder: Path, cancel: CancelToken | None) -> ModelEntry:
    """A checkpoint folder's entry, its config.json and weight headers read in the probe."""
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise ModelError(f"Cannot look at the checkpoint folder {folder}: {exc.strerror}.") from exc
    return probe.read_facts(folder, hf.FORMAT, st, cancel).entry


def _override_shapes(entry: ModelEntry, shapes: Mapping[str, str]) -> ModelEntry:
    known = {s.name: s for s in entry.inputs}
    unknown = [n for n in shapes if n not in known]
    if unknown:
        raise ShapeError(
            f"{entry.name} has no input named {', '.join(unknown)}; its inputs are "
            f"{', '.join(known)}.",
            field="input_shapes",
        )
    new = []
    for spec in entry.inputs:
        if spec.name not in shapes:
            new.append(spec)
            continue
        dims, dtype = parse_shape(shapes[spec.name])
        _check_fits(entry, spec, dims, dtype)
        new.append(InputSpec(spec.name, dims, dtype, spec.high))
    return replace(entry, inputs=tuple(new))


def _check_fits(entry: ModelEntry, spec: InputSpec, dims: tuple[int, ...], dtype: str) -> None:
    if len(dims) != len(spec.shape) or any(
        isinstance(d, int) and d != g for d, g in zip(spec.shape, dims, strict=False)
    ):
        raise ShapeError(
            f"Shape {format_shape(dims)} does not fit input {spec.name!r} of {entry.name}, which "
            f"is {format_shape(spec.shape)} ({len(spec.shape)} dimensions).",
            field="input_shapes",
        )
    if normalize_dtype(dtype) != spec.dtype:
        raise ShapeError(
            f"Input {spec.name!r} of {entry.name} is {spec.dtype}, not {dtype}.",
            field="input_shapes",
        )


def _check_dims_exist(entry: ModelEntry, names: set[str], shapes: Mapping[str, str]) -> None:
    """A size given for a dimension no input has (a typo, another model's name) would be
    ignored silently: refuse it, naming the dimensions the model has."""
    has = {
        d
        for spec in entry.inputs
        if spec.name not in shapes
        for d in spec.shape
        if isinstance(d, str)
    }
    unknown = sorted(names - has)
    if unknown:
        which = ", ".join(repr(n) for n in unknown)
        named = ", ".join(sorted(has - {BATCH})) or "none but the batch"
        raise ShapeError(
            f"{entry.name} has no dimension {which} (its named dimensions: {named}); leave "
            "it out or give one of those.",
            field="dims",
        )


def concrete_inputs(
    entry: ModelEntry,
    batch_size: int,
    dims: Mapping[str, int] | None = None,
    input_shapes: Mapping[str, str] | None = None,
) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, dtype) of every input with each dimension fixed.

    "batch" is ``batch_size``; other named dimensions come from ``dims``, then the entry's
    defaults. A fixed leading dimension must equal ``batch_size`` (the model has a fixed batch).
    """
    given = dict(entry.default_dims)
    given.update(dims or {})
    given[BATCH] = batch_size
    shapes = dict(input_shapes or {})
    _check_dims_exist(entry, set(dims or {}) - {BATCH}, shapes)
    out: list[tuple[str, tuple[int, ...], str]] = []
    for spec in entry.inputs:
        if spec.name in shapes:
            fixed, dtype = parse_shape(shapes[spec.name])
            if entry.format != "torchscript":
                _check_fits(entry, spec, fixed, dtype)
            if len(fixed) >= 2 and fixed[0] != batch_size:
                raise ShapeError(
                    f"Input {spec.name!r} is given as {format_shape(fixed)}: its first (batch) "
                    f"dimension {fixed[0]} differs from the batch size {batch_size}. Make them "
                    "agree (the batch size and the input shape) so that throughput counts items "
                    "right.",
                    field="input_shapes",
                )
            out.append((spec.name, fixed, dtype))
            continue
        shape: list[int] = []
        for i, d in enumerate(spec.shape):
            if isinstance(d, int):
                if (
                    i == 0
                    and spec.shape
                    and len(spec.shape) > 1
                    and d != batch_size
                    and (entry.family != "builtin")
                ):
                    raise ShapeError(
                        f"{entry.name} has a fixed batch of {d} (input {spec.name!r} is "
                        f"{format_shape(spec.shape)}); batch {batch_size} does not fit. Run it "
                        f"at batch size {d}, or give a model exported with a dynamic batch.",
                        field="batch_size",
                    )
                shape.append(d)
                continue
            if d not in given:
                raise ShapeError(
                    f"Input {spec.name!r} of {entry.name} has the dynamic dimension {d!r} "
                    f"({format_shape(spec.shape)}) and no size was given: "
                    f"{DIM_HELP.replace('NAME', d, 1)}."
                )
            size = int(given[d])
            if size < 1:
                raise ShapeError(f"Dimension {d!r} must be at least 1 (got {size}).")
            shape.append(size)
        out.append((spec.name, tuple(shape), spec.dtype))
    _check_limits(entry, given)
    return out


def max_positions(entry: ModelEntry) -> int | None:
    """The longest sequence a transformer takes (its position table), else None."""
    if entry.decoder is not None:
        return entry.decoder.max_positions
    if entry.family != "builtin":
        return None
    c = builtin.get(entry.ref).kwargs
    limit = c.get("max_positions") or c.get("positions")
    return int(limit) if limit is not None else None


def _check_limits(entry: ModelEntry, given: Mapping[str, int]) -> None:
    """Built-in transformers have a maximum sequence length (their position table)."""
    limit = max_positions(entry)
    if limit is not None and "seq_len" in given and given["seq_len"] > limit:
        raise ShapeError(
            f"{entry.ref} takes at most {limit} tokens; seq_len {given['seq_len']} is too long "
            f"(seq_len=N with N ≤ {limit}).",
            field="dims",
        )


def highs(entry: ModelEntry) -> dict[str, int]:
    """Exclusive upper bounds of integer inputs (vocabulary sizes) for input synthesis."""
    return {s.name: s.high for s in entry.inputs if s.high is not None}


# -- identity ------------------------------------------------------------------------------


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_sha256(entry: ModelEntry) -> str:
    """What identifies the model's definition: the built-in definition hash, else the file's
    sha256 (so runs of a changed model are never compared with the old one's). A file is
    read whole, streamed: call it where the model is loaded (a run's worker), never in a
    front end's process."""
    if entry.family == "builtin":
        return builtin.definition_hash(entry.name)
    if entry.family == llm_shapes.FAMILY:
        return llm_shapes.definition_hash(entry.ref)
    if entry.family == hf.FAMILY and entry.path is not None:
        return hf.checkpoint_hash(Path(entry.path))
    if entry.path is None:
        raise ModelError(f"{entry.ref} has no file to hash.")
    st = os.stat(entry.path)
    if stat.S_ISDIR(st.st_mode):  # a GenAI folder: every file in it
        return genai_build.folder_sha256(Path(entry.path))
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{entry.path} is no longer a regular file; give the model file again.")
    return _file_sha256(entry.path, st.st_size, st.st_mtime_ns)


def reset_caches() -> None:
    """Forget parsed files and hashes (tests change files between calls)."""
    _zoo_entry.cache_clear()
    _file_sha256.cache_clear()
    probe.forget()
