"""Model files as Wattbench reads them: ONNX graphs, TorchScript archives, torch.export files.

Each reader returns a ``ModelEntry`` with the inputs the file declares (or the shapes the user
gave), or raises ModelError / ShapeError saying what is wrong with the file and what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wattbench.backends.models.base import BATCH, Dim, InputSpec, ModelEntry
from wattbench.backends.models.inputs import parse_shape
from wattbench.domain.errors import ModelError, ShapeError

log = logging.getLogger(__name__)

SHAPE_HELP = "give its shape, NAME=1x3x224x224:float32"
TORCH_SUFFIXES = {".pt": "torchscript", ".pth": "torchscript", ".pt2": "torch-export"}

# ONNX TensorProto element types -> numpy dtype names.
ONNX_DTYPES = {
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


def _file_entry(
    path: Path, fmt: str, kind: str, inputs: tuple[InputSpec, ...], params: int | None
) -> ModelEntry:
    """The catalog entry of a model file, named by the file."""
    return ModelEntry(
        ref=str(path),
        name=path.stem,
        family="file",
        format=fmt,
        description=f"{kind} {path.name}",
        inputs=inputs,
        path=str(path),
        parameters=params,
    )


def read_onnx(path: Path) -> Any:
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


def onnx_signature(path: Path) -> tuple[tuple[InputSpec, ...], int | None]:
    """Declared inputs (initializers excluded) and parameter count of an ONNX file."""

    model = read_onnx(path)
    graph = model.graph
    init = {t.name for t in graph.initializer}
    params = parameter_count(graph)
    specs: list[InputSpec] = []
    for value in graph.input:
        if value.name in init:
            continue
        ttype = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise ModelError(
                f"{path}: input {value.name!r} is not a tensor; Wattbench feeds tensors only."
            )
        dtype = ONNX_DTYPES.get(ttype.elem_type)
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


def parameter_count(graph: Any) -> int | None:
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


def onnx_file_entry(path: Path) -> ModelEntry:
    inputs, params = onnx_signature(path)
    return _file_entry(path, "onnx", "ONNX file", inputs, params)


# -- TorchScript and torch.export files ----------------------------------------------------


def explicit_inputs(shapes: Mapping[str, str]) -> tuple[InputSpec, ...]:
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


def torchscript_entry(path: Path, shapes: Mapping[str, str] | None) -> ModelEntry:

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
    return _file_entry(path, "torchscript", "TorchScript file", explicit_inputs(shapes), params)


def export_entry(path: Path) -> ModelEntry:
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
    return _file_entry(path, "torch-export", "torch.export file", tuple(specs), params)
