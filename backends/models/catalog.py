"""The model catalog: built-in workloads, the onnx package's test models, and model files.

``list_models`` lists what Wattbench knows by name; ``resolve_model`` turns a reference (a
catalog ref or a file path) into a :class:`ModelEntry` with declared inputs, raising
``ModelError`` / ``ShapeError`` with a message that says what to do; ``concrete_inputs``
fixes every dimension (batch, user dims) into the shapes the runtime synthesizes data for.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wattbench.backends.models import builtin
from wattbench.backends.models.base import Dim, InputSpec, ModelEntry
from wattbench.backends.models.inputs import format_shape, normalize_dtype, parse_shape
from wattbench.domain.errors import ModelError, ShapeError

log = logging.getLogger(__name__)

ZOO_PREFIX = "onnx-zoo:"
BUILTIN_PREFIX = "builtin:"
BATCH = "batch"
DIM_HELP = "set its size, NAME=SIZE (e.g. seq_len=128; the batch is the batch size)"
SHAPE_HELP = "give its shape, NAME=1x3x224x224:float32"

# ONNX TensorProto element types -> numpy dtype names.
_ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    16: "bfloat16",
}
_TORCH_SUFFIXES = {".pt": "torchscript", ".pth": "torchscript", ".pt2": "torch-export"}


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
    inputs, params = _onnx_signature(path)
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
    """Every model known by name: the built-ins, then the onnx-zoo models."""
    return builtin.entries() + zoo_entries()


# -- ONNX files ----------------------------------------------------------------------------


def _read_onnx(path: Path) -> Any:
    """Parse and check an ONNX file; ModelError saying whether it is not ONNX or damaged."""
    import onnx
    from google.protobuf.message import DecodeError

    head = path.read_bytes()[:64]
    if not head:
        raise ModelError(f"{path} is empty: it is not an ONNX model.")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        if head[:1] != b"\x08":  # an ONNX ModelProto starts with field 1 (ir_version)
            raise ModelError(
                f"{path} is not an ONNX file (it does not parse as an ONNX ModelProto). "
                "Give an .onnx model exported with torch.onnx or a converter."
            ) from exc
        raise ModelError(
            f"{path} looks like ONNX but is corrupt (truncated or damaged: {exc}). "
            "Export or download it again."
        ) from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise ModelError(
            f"{path} is not an ONNX file (no model graph in it). "
            "Give an .onnx model exported with torch.onnx or a converter."
        )
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    try:  # a model with external data is checked from its path, which finds the data files
        onnx.checker.check_model(str(path) if external else model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path} is a corrupt or invalid ONNX model ({first}). Export it again or check "
            "it with onnx.checker."
        ) from exc
    return model


def _onnx_signature(path: Path) -> tuple[tuple[InputSpec, ...], int | None]:
    """Declared inputs (initializers excluded) and parameter count of an ONNX file."""

    model = _read_onnx(path)
    graph = model.graph
    init = {t.name for t in graph.initializer}
    params = _parameter_count(graph)
    specs: list[InputSpec] = []
    for value in graph.input:
        if value.name in init:
            continue
        ttype = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise ModelError(
                f"{path}: input {value.name!r} is not a tensor; Wattbench feeds tensors only."
            )
        dtype = _ONNX_DTYPES.get(ttype.elem_type)
        if dtype is None:
            raise ModelError(
                f"{path}: input {value.name!r} has ONNX element type {ttype.elem_type}, which "
                "Wattbench cannot synthesize."
            )
        shape: list[Dim] = []
        for i, d in enumerate(ttype.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(int(d.dim_value))
            elif i == 0:
                shape.append(BATCH)  # a dynamic leading dimension is the batch
            else:
                shape.append(d.dim_param or f"{value.name}_dim{i}")
        specs.append(InputSpec(value.name, tuple(shape), dtype))
    if not specs:
        raise ModelError(f"{path} declares no inputs; Wattbench needs at least one to feed.")
    return tuple(specs), params


def _parameter_count(graph: Any) -> int | None:
    """Weights in initializers plus tensors made by ConstantOfShape from constant shapes
    (the onnx test models build their weights that way)."""
    import numpy as np
    from onnx import numpy_helper

    consts: dict[str, Any] = {t.name: t for t in graph.initializer}
    total = sum(int(np.prod(t.dims)) for t in graph.initializer)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = node.attribute[0].t
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input and node.input[0] in consts:
            dims = numpy_helper.to_array(consts[node.input[0]])
            total += int(np.prod(dims))
    return total or None


def _onnx_file_entry(path: Path) -> ModelEntry:
    inputs, params = _onnx_signature(path)
    return ModelEntry(
        ref=str(path),
        name=path.stem,
        family="file",
        format="onnx",
        description=f"ONNX file {path.name}",
        inputs=inputs,
        path=str(path),
        parameters=params,
    )


# -- TorchScript and torch.export files ----------------------------------------------------


def _explicit_inputs(shapes: Mapping[str, str]) -> tuple[InputSpec, ...]:
    out = []
    for name, text in shapes.items():
        dims, dtype = parse_shape(text)
        out.append(InputSpec(name, dims, dtype))
    return tuple(out)


def jit_load(path: str) -> Any:
    """torch.jit.load without its deprecation warning: TorchScript files are still read."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path, map_location="cpu")


def _torchscript_entry(path: Path, shapes: Mapping[str, str] | None) -> ModelEntry:

    try:
        module = jit_load(str(path))
    except Exception as exc:  # torch raises RuntimeError/ValueError/zipfile errors
        raise ModelError(
            f"{path} is not a readable TorchScript file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Save it with torch.jit.save, "
            "or give an .onnx or torch.export .pt2 file."
        ) from exc
    try:
        names = [a.name for a in module.forward.schema.arguments[1:]]
    except (AttributeError, RuntimeError):
        names = []
    if not shapes:
        raise ShapeError(
            f"TorchScript file {path.name} does not declare input shapes; give each input's "
            f"shape ({', '.join(names) or 'its forward arguments'}), e.g. "
            f"{names[0] if names else 'x'}=1x3x224x224:float32.",
            field="input_shapes",
        )
    if names:
        unknown = [n for n in shapes if n not in names]
        if unknown:
            raise ShapeError(
                f"TorchScript file {path.name} has no input named {', '.join(unknown)}; its "
                f"inputs are {', '.join(names)}.",
                field="input_shapes",
            )
        missing = [n for n in names if n not in shapes]
        if missing:
            raise ShapeError(
                f"TorchScript file {path.name}: give the shape of {', '.join(missing)} too "
                f"({SHAPE_HELP}).",
                field="input_shapes",
            )
        shapes = {n: shapes[n] for n in names}
    params = sum(int(p.numel()) for p in module.parameters())
    return ModelEntry(
        ref=str(path),
        name=path.stem,
        family="file",
        format="torchscript",
        description=f"TorchScript file {path.name}",
        inputs=_explicit_inputs(shapes),
        path=str(path),
        parameters=params,
    )


def _export_entry(path: Path) -> ModelEntry:
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelError(
            f"{path} is not a readable torch.export file ({type(exc).__name__}). Save it with "
            "torch.export.save, or give an .onnx or TorchScript file."
        ) from exc
    specs: list[InputSpec] = []
    user_inputs = list(program.graph_signature.user_inputs)
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for name in user_inputs:
        val = nodes[name].meta.get("val") if name in nodes else None
        if val is None or not hasattr(val, "shape"):
            raise ModelError(f"{path}: input {name!r} is not a tensor; Wattbench feeds tensors.")
        shape: list[Dim] = []
        for i, d in enumerate(val.shape):
            if isinstance(d, int):
                shape.append(int(d))
            else:
                shape.append(BATCH if i == 0 else str(d))
        specs.append(InputSpec(name, tuple(shape), str(val.dtype).removeprefix("torch.")))
    params = sum(int(p.numel()) for p in program.state_dict.values())
    return ModelEntry(
        ref=str(path),
        name=path.stem,
        family="file",
        format="torch-export",
        description=f"torch.export file {path.name}",
        inputs=tuple(specs),
        path=str(path),
        parameters=params,
    )


# -- resolving -----------------------------------------------------------------------------


def resolve_model(
    ref: str,
    dims: Mapping[str, int] | None = None,
    input_shapes: Mapping[str, str] | None = None,
) -> ModelEntry:
    """The entry of a catalog ref or a model file. With ``dims`` given (even empty), also
    checks that every dynamic dimension is set, so a missing one fails here, before a run."""
    ref = ref.strip()
    if ref.startswith(BUILTIN_PREFIX):
        entry = builtin.entry(builtin.get(ref))
    elif ref.startswith(ZOO_PREFIX):
        entry = _zoo_entry(ref.removeprefix(ZOO_PREFIX))
    else:
        entry = _file_entry(ref, input_shapes)
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
    return ref


def model_format(ref: str) -> str:
    """The format a ref names, read from its prefix or suffix alone (nothing is opened)."""
    if ref.startswith(BUILTIN_PREFIX):
        return "torch-module"
    if ref.startswith(ZOO_PREFIX):
        return "onnx"
    return _TORCH_SUFFIXES.get(Path(ref).suffix.lower(), "onnx")


def _did_you_mean(ref: str) -> str:
    import difflib

    names = [BUILTIN_PREFIX + k for k in builtin.BUILTINS] + [ZOO_PREFIX + n for n in zoo_names()]
    bare = {n.split(":", 1)[1]: n for n in names}
    close = difflib.get_close_matches(ref, list(bare), n=1, cutoff=0.6)
    if close:
        return f" Did you mean {bare[close[0]]}? (see the model catalog)"
    if ":" in ref and not ref.startswith(("/", ".")):
        return " Catalog refs start with builtin: or onnx-zoo: (see the model catalog)."
    return ""


def _file_entry(ref: str, input_shapes: Mapping[str, str] | None) -> ModelEntry:
    path = Path(ref).expanduser()
    if not path.exists():
        raise ModelError(f"Model file {ref} does not exist.{_did_you_mean(ref)}", field="model")
    if path.is_dir():
        raise ModelError(f"{ref} is a folder; give a model file (.onnx, .pt, .pt2).")
    if not os.access(path, os.R_OK):
        raise ModelError(f"Model file {ref} is not readable by this user; check its permissions.")
    path = path.resolve()
    suffix = path.suffix.lower()
    if suffix in _TORCH_SUFFIXES:
        if _TORCH_SUFFIXES[suffix] == "torch-export":
            return _export_entry(path)
        return _torchscript_entry(path, input_shapes)
    return _onnx_file_entry(path)  # .onnx, or any other name: it must parse as ONNX


def _override_shapes(entry: ModelEntry, shapes: Mapping[str, str]) -> ModelEntry:
    from dataclasses import replace

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
    """The longest sequence a built-in transformer takes (its position table), else None."""
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
    sha256 (so runs of a changed model are never compared with the old one's)."""
    if entry.family == "builtin":
        return builtin.definition_hash(entry.name)
    if entry.path is None:
        raise ModelError(f"{entry.ref} has no file to hash.")
    st = os.stat(entry.path)
    return _file_sha256(entry.path, st.st_size, st.st_mtime_ns)


def reset_caches() -> None:
    """Forget parsed files and hashes (tests change files between calls)."""
    _zoo_entry.cache_clear()
    _file_sha256.cache_clear()
