"""Hostile model files for the probe tests, each built here from nothing but torch and zlib.

- ``evil_pt2``: a real torch.export archive whose weight is a pickle that touches a marker file
  when torch.export.load reads it.
- ``evil_torch_save``: a torch.save'd file (named .pt) carrying the same pickle.
- ``hanging_torchscript``: a TorchScript archive whose ``__setstate__`` (run by the loader)
  never returns.
- ``printing_torchscript``: a valid TorchScript archive whose ``__setstate__`` prints to stdout.
- ``inflating_archive``: a TorchScript-named zip of a few MB whose ``data.pkl`` inflates to
  3 GiB of zeros.
- ``probe_processes``: the probe processes running under a process, seen by psutil.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import psutil

PROBE_MODULE = "wattbench.backends.models.probe"
INFLATED_BYTES = 3 << 30


class _Touch:
    """Unpickled, it creates ``marker``: what a hostile pickle can do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _pickled(marker: Path) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(_Touch(marker), buf)
    return buf.getvalue()


def evil_pt2(folder: Path, marker: Path) -> Path:
    """A torch.export archive of a Linear layer whose weight is the touching pickle."""
    import torch

    program = torch.export.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),))
    clean = folder / "clean.pt2"
    torch.export.save(program, str(clean))
    path = folder / "evil.pt2"
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("weights/model_weights_config.json"):
                config = json.loads(data)
                config["config"]["weight"]["use_pickle"] = True
                data = json.dumps(config).encode()
            elif info.filename.endswith("weights/weight_0"):
                data = _pickled(marker)
            out.writestr(info, data)
    clean.unlink()
    return path


def evil_torch_save(folder: Path, marker: Path) -> Path:
    import torch

    path = folder / "weights.pt"
    torch.save({"weight": _Touch(marker)}, str(path))
    return path


def _scripted(folder: Path, name: str, setstate_body: str) -> Path:
    """A TorchScript archive of a module whose ``__setstate__`` ends with ``setstate_body``
    (TorchScript compiles from source, so the module is written to a file and imported)."""
    import importlib.util

    import torch

    source = folder / f"{name}_module.py"
    source.write_text(
        "from typing import Tuple\n"
        "import torch\n\n\n"
        "class M(torch.nn.Module):\n"
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n"
        "        self.n = 1\n\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        return x * self.n\n\n"
        "    @torch.jit.export\n"
        "    def __getstate__(self) -> Tuple[int, bool]:\n"
        "        return (self.n, self.training)\n\n"
        "    @torch.jit.export\n"
        "    def __setstate__(self, state: Tuple[int, bool]) -> None:\n"
        "        self.n = state[0]\n"
        "        self.training = state[1]\n"
        f"{setstate_body}"
    )
    spec = importlib.util.spec_from_file_location(f"hostile_{name}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = folder / f"{name}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module.M()).save(str(path))
    return path


def hanging_torchscript(folder: Path) -> Path:
    loop = "        i = 0\n        while i >= 0:\n            i = (i + 1) % 7\n"
    return _scripted(folder, "hang", loop)


def printing_torchscript(folder: Path) -> Path:
    noise = "        for _ in range(2000):\n            print('not a reply', self.n)\n"
    return _scripted(folder, "noisy", noise)


def _local_header(name: bytes, method: int, crc: int, csize: int, usize: int) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, csize, usize,
                       len(name), 0) + name  # fmt: skip


def _central_header(
    name: bytes, method: int, crc: int, csize: int, usize: int, offset: int
) -> bytes:
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, csize,
                       usize, len(name), 0, 0, 0, 0, 0, offset) + name  # fmt: skip


def inflating_archive(folder: Path) -> Path:
    """A real TorchScript archive with its data.pkl replaced by 3 GiB of deflated zeros."""
    clean = printing_torchscript(folder)  # any small valid archive
    chunk = bytes(64 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    # after a full flush the compressor starts afresh: every 64 MiB of zeros packs the same
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    end = packer.flush(zlib.Z_FINISH)
    count = INFLATED_BYTES // len(chunk)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    path = folder / "inflating.pt"
    central = []
    with zipfile.ZipFile(clean) as src, open(path, "wb") as out:
        for info in src.infolist():
            name = info.filename.encode()
            offset = out.tell()
            if info.filename.endswith("/data.pkl"):
                size = len(block) * count + len(end)
                out.write(_local_header(name, 8, crc, size, INFLATED_BYTES))
                for _ in range(count):
                    out.write(block)
                out.write(end)
                central.append(_central_header(name, 8, crc, size, INFLATED_BYTES, offset))
            else:
                data = src.read(info.filename)
                c = zlib.crc32(data)
                out.write(_local_header(name, 0, c, len(data), len(data)) + data)
                central.append(_central_header(name, 0, c, len(data), len(data), offset))
        start = out.tell()
        directory = b"".join(central)
        out.write(directory)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central),
                              len(directory), start, 0))  # fmt: skip
    return path


def probe_processes(parent: psutil.Process | None = None) -> list[psutil.Process]:
    """The probe processes below ``parent`` (this process by default)."""
    found = []
    for child in (parent or psutil.Process()).children(recursive=True):
        try:
            if PROBE_MODULE in " ".join(child.cmdline()) and child.status() != "zombie":
                found.append(child)
        except psutil.Error:  # gone meanwhile
            continue
    return found
