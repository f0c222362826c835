"""Hugging Face checkpoint folders: config.json + safetensors weights, read without their code.

A folder is what ``save_pretrained`` writes, or a snapshot of the local HF cache
(``models--org--name/snapshots/<rev>/``, which ``hf:org/name`` names). Nothing is downloaded and
no code from the folder runs: ``read_checkpoint`` (in the probe process, like any model file)
reads config.json as JSON and each safetensors file's header (an 8-byte length, then that much
JSON naming every tensor's type, shape and byte range), checked against the file's size. It
refuses a config that asks for the checkpoint's own code (``auto_map``) or names an architecture
the installed transformers does not have, a folder without safetensors weights (pickled .bin
weights are never opened), and a damaged weight file. The run's worker then loads the folder
with transformers, offline and with ``trust_remote_code=False``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattbench.backends.models import llm_shapes
from wattbench.backends.models.base import InputSpec, ModelEntry
from wattbench.domain.errors import ModelError

PREFIX = "hf:"
FAMILY = "hf"
FORMAT = "hf-safetensors"
CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
MAX_CONFIG_BYTES = 4 << 20
MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on a header
REMOTE_CODE = "needs code from the checkpoint, which Wattbench never runs"
_MODEL_TYPE = re.compile(r"^[a-z0-9_]+$")
_ARCH = re.compile(r"^[A-Za-z0-9_]+$")
# bytes per element of safetensors dtypes
_DTYPE_BYTES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
    "I16": 2, "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a folder holding a config.json (a look at names only)."""
    return path.is_dir() and (path / CONFIG).is_file()


# -- the local Hugging Face cache -------------------------------------------------------------


def cache_root() -> Path:
    """The hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


@dataclass(frozen=True)
class CachedCheckpoint:
    repo: str  # "org/name"
    folder: Path  # the snapshot folder
    revision: str
    size_bytes: int  # the files of the snapshot (its blobs)


def _snapshot(repo_dir: Path) -> Path | None:
    """The snapshot refs/main points at, else the newest snapshot with a config.json."""
    snapshots = repo_dir / "snapshots"
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        with open(ref, "rb") as f:
            rev = f.read(128).decode("ascii", "replace").strip()
        if re.fullmatch(r"[0-9a-f]{7,64}", rev) and (snapshots / rev / CONFIG).is_file():
            return snapshots / rev
    found = [p for p in snapshots.glob("*") if (p / CONFIG).is_file()] if snapshots.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def _size(folder: Path) -> int:
    total = 0
    for p in folder.iterdir():
        try:
            if p.is_file():  # follows the cache's links to its blobs
                total += p.stat().st_size
        except OSError:
            continue
    return total


def cached_checkpoints() -> list[CachedCheckpoint]:
    """Model repositories of the local HF cache with a snapshot holding a config.json."""
    root = cache_root()
    if not root.is_dir():
        return []
    out = []
    for repo_dir in sorted(root.glob("models--*")):
        snap = _snapshot(repo_dir)
        if snap is None:
            continue
        repo = repo_dir.name.removeprefix("models--").replace("--", "/")
        out.append(CachedCheckpoint(repo, snap, snap.name, _size(snap)))
    return out


def cache_folder(ref: str) -> Path:
    """The snapshot folder of ``hf:org/name`` in the local cache (never downloaded)."""
    repo = ref.removeprefix(PREFIX).strip().strip("/")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?", repo) or ".." in repo:
        raise ModelError(f"{ref} is not a repository name (hf:org/name).", field="model")
    repo_dir = cache_root() / f"models--{repo.replace('/', '--')}"
    snap = _snapshot(repo_dir) if repo_dir.is_dir() else None
    if snap is None:
        raise ModelError(
            f"{repo} is not in the local Hugging Face cache ({cache_root()}); Wattbench never "
            "downloads. Download it on a connected machine (huggingface-cli download) and copy "
            "the cache, or give the checkpoint folder's path.",
            field="model",
        )
    return snap


def cache_entry(c: CachedCheckpoint) -> ModelEntry:
    """A listing's entry for a cached checkpoint: names and sizes only, nothing opened."""
    return ModelEntry(
        ref=PREFIX + c.repo,
        name=c.repo,
        family=FAMILY,
        format=FORMAT,
        description=f"local HF cache, revision {c.revision[:12]}, {c.size_bytes / 1e9:,.2f} GB",
        inputs=(),
        generative=True,
        path=str(c.folder),
    )


# -- reading a folder (probe side) ------------------------------------------------------------


def _refuse(folder: Path, why: str) -> ModelError:
    return ModelError(f"{folder} cannot be used: {why}", field="model")


def _read_json(path: Path, folder: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise _refuse(folder, f"{path.name} is larger than {MAX_CONFIG_BYTES >> 20} MiB.")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refuse(folder, f"{path.name} is not valid JSON ({exc}); save it again.") from exc
    if not isinstance(value, dict):
        raise _refuse(folder, f"{path.name} is not a JSON object.")
    return value


def _check_architecture(folder: Path, cfg: dict[str, Any]) -> str:
    """The architecture class a config names, refused when it needs the checkpoint's code."""
    if "auto_map" in cfg or cfg.get("trust_remote_code"):
        raise _refuse(
            folder,
            f"its config.json has an auto_map: the model {REMOTE_CODE}. Use a checkpoint of an "
            "architecture built into transformers.",
        )
    if "quantization_config" in cfg:
        method = cfg["quantization_config"]
        method = method.get("quant_method", "?") if isinstance(method, dict) else "?"
        raise _refuse(
            folder,
            f"it is a quantized checkpoint ({method}), which needs libraries beyond torch and "
            "transformers. Give the full-precision checkpoint and choose the precision with "
            "--precision.",
        )
    model_type = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    arch = archs[0] if isinstance(archs, list) and archs else None
    if not isinstance(model_type, str) or not _MODEL_TYPE.match(model_type):
        raise _refuse(folder, "its config.json names no model_type; save it with transformers.")
    if not isinstance(arch, str) or not _ARCH.match(arch) or not arch.endswith("ForCausalLM"):
        raise _refuse(
            folder,
            f"its config.json names no causal language model ({arch!r}); Wattbench runs "
            "checkpoints of decoders (…ForCausalLM).",
        )
    spec = importlib.util.find_spec("transformers")  # found, not imported
    if spec is None or spec.origin is None:
        raise _refuse(folder, "transformers is not installed (pip install transformers).")
    modeling = Path(spec.origin).parent / "models" / model_type / f"modeling_{model_type}.py"
    known = modeling.is_file() and f"class {arch}(" in modeling.read_text(encoding="utf-8")
    if not known:
        raise _refuse(
            folder,
            f"transformers does not know the architecture {arch} ({model_type}): it {REMOTE_CODE}"
            ", or a newer transformers. Use a checkpoint of an architecture built into "
            "transformers.",
        )
    return arch


def safetensors_parameters(path: Path, folder: Path) -> int:
    """Elements in a safetensors file, from its header, checked against the file's size."""
    damaged = f"{path.name} is a damaged safetensors file"
    again = "; download or save the checkpoint again."
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise _refuse(folder, f"{damaged} (shorter than its 8-byte header length){again}")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise _refuse(folder, f"{damaged} (its header length {n} exceeds the file){again}")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _refuse(folder, f"{damaged} (its header is not JSON){again}") from None
    if not isinstance(header, dict):
        raise _refuse(folder, f"{damaged} (its header is not a JSON object){again}")
    count, end = 0, 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = [int(d) for d in t["shape"]]
            start, stop = (int(x) for x in t["data_offsets"])
            width = _DTYPE_BYTES.get(t["dtype"], 1)
        except (KeyError, TypeError, ValueError):
            raise _refuse(
                folder, f"{damaged} (tensor {name!r} is described wrongly){again}"
            ) from None
        elements = 1
        for d in shape:
            elements *= d
        if stop - start != elements * width or start < 0:
            raise _refuse(folder, f"{damaged} (tensor {name!r} has the wrong byte size){again}")
        count += elements
        end = max(end, stop)
    if 8 + n + end != size:
        raise _refuse(
            folder, f"{damaged} ({size} bytes where its header describes {8 + n + end}){again}"
        )
    return count


def _weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX
    if index.is_file():
        weight_map = _read_json(index, folder).get("weight_map")
        if not isinstance(weight_map, dict):
            raise _refuse(folder, f"{INDEX} has no weight_map; save the checkpoint again.")
        names = sorted({str(v) for v in weight_map.values()})
        missing = [n for n in names if "/" in n or not (folder / n).is_file()]
        if missing:
            raise _refuse(
                folder, f"weight shards {', '.join(missing)} are missing; copy the whole folder."
            )
        return [folder / n for n in names]
    found = sorted(folder.glob("*.safetensors"))
    if not found:
        pickled = any(folder.glob("*.bin")) or any(folder.glob("*.pt"))
        extra = (
            " It has pickled weights (.bin), which Wattbench never opens (pickles can run code):"
            " save it with save_pretrained(..., safe_serialization=True)."
            if pickled
            else " Copy the weights (model.safetensors) into it, or use an llm: architecture "
            "with random weights (see the model catalog)."
        )
        raise _refuse(folder, f"it holds no safetensors weights.{extra}")
    return found


def read_checkpoint(folder: Path) -> ModelEntry:
    """The entry of a checkpoint folder (in a disposable process: see the module docstring)."""
    cfg_path = folder / CONFIG
    if not cfg_path.is_file():
        raise _refuse(folder, "it has no config.json; give a folder save_pretrained wrote.")
    cfg = _read_json(cfg_path, folder)
    arch = _check_architecture(folder, cfg)
    shape = llm_shapes.decoder_shape(cfg)
    params = sum(safetensors_parameters(p, folder) for p in _weight_files(folder))
    return ModelEntry(
        ref=str(folder),
        name=folder.name,
        family=FAMILY,
        format=FORMAT,
        description=(
            f"HF checkpoint {arch} ({shape.layers} layers, hidden {shape.hidden}, vocab "
            f"{shape.vocab})"
        ),
        inputs=(InputSpec("input_ids", ("batch", "seq_len"), "int64", high=shape.vocab),),
        generative=True,
        path=str(folder),
        parameters=params,
        default_dims=(("seq_len", min(llm_shapes.DEFAULT_SEQ_LEN, shape.max_positions)),),
        decoder=shape,
    )


def checkpoint_hash(folder: Path) -> str:
    """sha256 over config.json and each weight file's header and size: the architecture and
    the tensor layout (the weights' bytes are not read: a checkpoint is gigabytes)."""
    h = hashlib.sha256((folder / CONFIG).read_bytes())
    for path in _weight_files(folder):
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            h.update(path.name.encode() + size.to_bytes(8, "little") + f.read(n))
    return h.hexdigest()
