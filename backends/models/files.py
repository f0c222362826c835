"""Model files as Wattbench reads them: ONNX graphs and TorchScript archives.

Reading a file is split in two. ``inspect_file`` runs in the caller: it stats the file, refuses
anything but a regular file, and looks at a small header (and a zip archive's last 64 KiB),
never more. ``read_facts`` parses the file and must run in a disposable process (the probe, see
``probe``, or a run's worker): a parser fed a hostile file may hang, inflate or crash.
``entry_with_shapes`` then joins the user's input shapes to what the file declares, in the
caller again. torch.export archives (.pt2) are refused: see ``torch_export_refused``.
Every refusal is a ModelError / ShapeError saying what is wrong with the file and what to do.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wattbench.backends.models import hf
from wattbench.backends.models.base import BATCH, Dim, InputSpec, ModelEntry
from wattbench.backends.models.inputs import parse_shape
from wattbench.domain.errors import ModelError, ShapeError

log = logging.getLogger(__name__)

SHAPE_HELP = "give its shape, NAME=1x3x224x224:float32"
TORCH_SUFFIXES = {".pt": "torchscript", ".pth": "torchscript", ".pt2": "torch-export"}
HEADER_BYTES = 64  # what format detection reads from the start of a file
ZIP_TAIL_BYTES = 65_535 + 22  # a zip's end record (22 bytes) and its longest comment
ONNX_MAX_BYTES = (1 << 31) - 1  # protobuf parses no message larger than 2 GiB

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

    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
        _check_onnx_header(path, head, os.fstat(f.fileno()).st_size)
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


# -- TorchScript files -----------------------------------------------------------------------


def explicit_inputs(shapes: Mapping[str, str]) -> tuple[InputSpec, ...]:
    out = []
    for name, text in shapes.items():
        dims, dtype = parse_shape(text)
        out.append(InputSpec(name, dims, dtype))
    return tuple(out)


def jit_load(path: str) -> Any:
    """torch.jit.load without its deprecation warning: TorchScript files are still read. The
    TorchScript loader rebuilds only TorchScript types (no pickle of arbitrary objects), but
    the file's code runs in the process that loads it (``__setstate__`` at load, ``forward``
    at run): call it in a disposable process only."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path, map_location="cpu")


def _unreadable_torchscript(path: Path, why: str) -> ModelError:
    return ModelError(
        f"{path} is not a readable TorchScript file ({why}). Save it with torch.jit.save, or "
        "give an .onnx file."
    )


def torchscript_facts(path: Path) -> FileFacts:
    """Load a TorchScript archive (in a disposable process): its forward's argument names and
    its parameter count; the input shapes come from the user (``entry_with_shapes``)."""
    try:
        module = jit_load(str(path))
    except Exception as exc:  # torch raises RuntimeError/ValueError/zipfile errors
        raise _unreadable_torchscript(
            path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    try:
        names = [a.name for a in module.forward.schema.arguments[1:]]
    except (AttributeError, RuntimeError):
        names = []
    params = sum(int(p.numel()) for p in module.parameters())
    entry = _file_entry(path, "torchscript", "TorchScript file", (), params)
    return FileFacts(entry, tuple(names))


def torchscript_entry(facts: FileFacts, shapes: Mapping[str, str] | None) -> ModelEntry:
    """A TorchScript file's entry with the input shapes the user gave, checked against the
    names its forward takes (the file declares no shapes)."""
    path = Path(facts.entry.path or facts.entry.ref)
    names = list(facts.arguments)
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
    return replace(facts.entry, inputs=explicit_inputs(shapes))


def torch_export_refused(path: Path) -> ModelError:
    """Why a torch.export archive is not opened (torch.export.load cannot be made safe)."""
    return ModelError(
        f"{path} is a torch.export archive (.pt2), which Wattbench does not open: "
        "torch.export.load unpickles parts of it with code execution and evaluates expressions "
        "written in its graph, so a .pt2 file can run any code on this machine. Export the "
        "model to ONNX (torch.onnx.export) or save it as TorchScript (torch.jit.save), and give "
        "that file.",
        field="model",
    )


# -- one file: what it is, and what it declares ---------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """What reading a model file found: its entry (a TorchScript file's without inputs, which
    the user gives) and, for TorchScript, the names of its forward's arguments."""

    entry: ModelEntry
    arguments: tuple[str, ...] = ()


def file_format(path: Path) -> str:
    """The format a file's name says (nothing is opened): torchscript, torch-export or onnx
    (any other name must parse as ONNX)."""
    return TORCH_SUFFIXES.get(path.suffix.lower(), "onnx")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _not_regular(path: Path, mode: int) -> ModelError:
    return ModelError(
        f"{path} is {_kind(mode)}, not a model file: give a regular .onnx or TorchScript file.",
        field="model",
    )


def inspect_file(path: Path, fmt: str) -> os.stat_result:
    """Refuse what cannot be a model file of ``fmt`` by a small header alone, in the caller:
    anything but a regular file (stat first, nothing opened), an empty or oversized ONNX file,
    a TorchScript file that is not a whole zip archive. Returns the file's stat."""
    try:
        st, head, tail = _ends(path, fmt == "torchscript")
    except OSError as exc:
        raise ModelError(f"Cannot read the model file {path}: {exc.strerror or exc}.") from exc
    if fmt == "torchscript":
        _check_zip(path, head, tail)
    else:
        _check_onnx_header(path, head, st.st_size)
    return st


def _ends(path: Path, with_tail: bool) -> tuple[os.stat_result, bytes, bytes]:
    """A regular file's stat, its header and (``with_tail``) its last bytes."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)  # the file opened is the one checked, even if the path was swapped
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        head = _read_at(fd, 0, HEADER_BYTES)
        tail = (
            _read_at(fd, max(0, st.st_size - ZIP_TAIL_BYTES), ZIP_TAIL_BYTES) if with_tail else b""
        )
    finally:
        os.close(fd)
    return st, head, tail


def _read_at(fd: int, offset: int, size: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def _check_zip(path: Path, head: bytes, tail: bytes) -> None:
    if head[:1] == b"\x80":
        raise _unreadable_torchscript(
            path,
            "it is a pickle, as torch.save writes, which Wattbench never unpickles: pickles "
            "can run any code",
        )
    if head[:4] != b"PK\x03\x04":
        raise _unreadable_torchscript(path, "it is not a zip archive")
    if b"PK\x05\x06" not in tail:
        raise _unreadable_torchscript(path, "a truncated or damaged zip archive")


def _check_onnx_header(path: Path, head: bytes, size: int) -> None:
    if not head:
        raise ModelError(f"{path} is empty: it is not an ONNX model.")
    # an ONNX ModelProto opens with a protobuf field tag: a field number of at least 1 and a
    # wire type of 0-5 that does not close a group
    if head[0] >> 3 == 0 or head[0] & 7 in (4, 6, 7):
        raise ModelError(
            f"{path} is not an ONNX file (it does not parse as an ONNX ModelProto). "
            "Give an .onnx model exported with torch.onnx or a converter."
        )
    if size > ONNX_MAX_BYTES:
        raise ModelError(
            f"{path} is {size / (1 << 30):.1f} GiB: an ONNX file holds at most 2 GiB (the "
            "protobuf limit), so this is not one. Larger models keep their weights in external "
            "data files beside the .onnx file; export it that way."
        )


def read_facts(path: Path, fmt: str) -> FileFacts:
    """Parse a model file: in a disposable process only (see the module docstring)."""
    if fmt == "torch-export":
        raise torch_export_refused(path)
    if fmt == "torchscript":
        return torchscript_facts(path)
    if fmt == hf.FORMAT:  # a checkpoint folder: its config.json and weight headers
        return FileFacts(hf.read_checkpoint(path))
    return FileFacts(onnx_file_entry(path))


def entry_with_shapes(facts: FileFacts, shapes: Mapping[str, str] | None) -> ModelEntry:
    """The entry a file's facts make, with a TorchScript file's input shapes joined."""
    if facts.entry.format == "torchscript":
        return torchscript_entry(facts, shapes)
    return facts.entry
