"""ONNX Runtime GenAI model folders: recognising them, and building them from a local Hugging
Face checkpoint with ORT GenAI's own model builder.

A GenAI folder holds ``genai_config.json`` beside its ONNX decoder (``model.onnx`` and its
external data). ``genai_entry`` describes one for the catalog from that small JSON file alone.
``build`` converts a checkpoint folder (config.json + safetensors) into one, in a child process
with a time limit (``python -m onnxruntime_genai.models.builder``, offline, no code from the
folder), cached under the cache folder by the checkpoint's content hash, the precision and the
target: a second call finds the folder and builds nothing. Folders Wattbench built carry
``wattbench-build.json`` (what they were built from and how).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattbench.backends.models import hf
from wattbench.backends.models.base import InputSpec, ModelEntry
from wattbench.backends.models.onnx_export import cache_dir
from wattbench.domain.errors import ModelError, UnsupportedOptionError

log = logging.getLogger(__name__)

GENAI_FORMAT = "onnx-genai"
GENAI_CONFIG = "genai_config.json"
BUILD_RECORD = "wattbench-build.json"
JSON_MAX_BYTES = 4 << 20  # config files are a few KiB; a larger one is not a config
TIME_LIMIT_ENV = "WATTBENCH_GENAI_BUILD_TIME_LIMIT_S"
# Bumped when the way Wattbench calls the builder changes, so older folders are not reused.
BUILD_FORMAT = "g1"
# What the builder makes, per target: precision -> the builder's -p value.
BUILD_PRECISIONS: dict[str, tuple[str, ...]] = {
    "cpu": ("fp32", "int4"),
    "cuda": ("fp32", "fp16", "bf16", "int4"),
}


@dataclass(frozen=True)
class GenaiFacts:
    """What genai_config.json (and a build record, when there is one) says of a folder."""

    model_type: str
    vocab_size: int
    context_length: int
    layers: int
    pad_token_id: int | None
    precision: str | None  # from the build record; None for a folder built elsewhere
    target: str | None  # cpu | cuda, from the build record
    source: str | None  # the checkpoint it was built from


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A small JSON object file; ModelError saying what is wrong with it."""
    try:
        size = path.stat().st_size
        if size > JSON_MAX_BYTES:
            raise ModelError(f"{path} is {size} bytes: too large for a {what}.", field="model")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path.parent} has no {path.name} ({what}).", field="model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"Cannot read the {what} {path}: {exc}.", field="model") from exc
    if not isinstance(data, dict):
        raise ModelError(f"The {what} {path} is not a JSON object.", field="model")
    return data


def _int(data: dict[str, Any], key: str, where: Path) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{where} has no usable {key!r} (got {value!r}).", field="model")
    return value


def is_genai_folder(path: Path) -> bool:
    return path.is_dir() and (path / GENAI_CONFIG).is_file()


def genai_facts(folder: Path) -> GenaiFacts:
    config_path = folder / GENAI_CONFIG
    config = read_json(config_path, "GenAI configuration")
    model = config.get("model")
    decoder = model.get("decoder") if isinstance(model, dict) else None
    if not isinstance(model, dict) or not isinstance(decoder, dict):
        raise ModelError(f"{config_path} has no model.decoder section.", field="model")
    filename = decoder.get("filename")
    if not isinstance(filename, str) or not (folder / filename).is_file():
        raise ModelError(
            f"{config_path} names the decoder {filename!r}, which is not in {folder}.",
            field="model",
        )
    pad = model.get("pad_token_id")
    record = (
        read_json(folder / BUILD_RECORD, "build record")
        if (folder / BUILD_RECORD).is_file()
        else {}
    )
    return GenaiFacts(
        model_type=str(model.get("type", "?")),
        vocab_size=_int(model, "vocab_size", config_path),
        context_length=_int(model, "context_length", config_path),
        layers=_int(decoder, "num_hidden_layers", config_path),
        pad_token_id=pad if isinstance(pad, int) and not isinstance(pad, bool) else None,
        precision=record.get("precision"),
        target=record.get("target"),
        source=record.get("source"),
    )


def genai_entry(folder: Path) -> ModelEntry:
    """The catalog entry of a GenAI folder (read from its JSON files only)."""
    folder = folder.resolve()
    facts = genai_facts(folder)
    built = f", {facts.precision} for {facts.target}" if facts.precision else ""
    return ModelEntry(
        ref=str(folder),
        name=folder.name,
        family="file",
        format=GENAI_FORMAT,
        description=f"ONNX Runtime GenAI {facts.model_type} decoder, {facts.layers} layers{built}",
        inputs=(InputSpec("input_ids", ("batch", "seq_len"), "int32", facts.vocab_size),),
        generative=True,
        path=str(folder),
        default_dims=(("seq_len", 32),),
    )


# -- the checkpoint's identity ---------------------------------------------------------------


def _files(folder: Path) -> list[tuple[str, int, int]]:
    out = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or not path.is_file():
                continue
            st = path.stat()
            out.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns))
    return out


@functools.cache
def _folder_sha256(folder: str, listing: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for rel, size, _ in listing:
        h.update(f"{rel}\0{size}\0".encode())
        with open(Path(folder) / rel, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def folder_sha256(folder: Path) -> str:
    """The content hash of a model folder: every regular file's name, size and bytes (hidden
    files left out). Read whole, streamed, once per listing (names, sizes, modification
    times): the hash is kept in the cache folder, so a checkpoint of gigabytes is read once.
    Call it where the model is loaded (a worker)."""
    folder = folder.resolve()
    listing = tuple(_files(folder))
    signature = hashlib.sha256(repr((str(folder), listing)).encode()).hexdigest()
    memo = cache_dir() / "genai" / "hashes" / signature
    try:
        known = memo.read_text(encoding="ascii").strip()
        if len(known) == 64:
            return known
    except (OSError, UnicodeDecodeError):
        pass
    digest = _folder_sha256(str(folder), listing)
    memo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=signature + ".", suffix=".tmp", dir=memo.parent)
    with os.fdopen(fd, "w", encoding="ascii") as f:  # a name of its own: threads hash at once
        f.write(digest)
    os.replace(tmp, memo)
    return digest


# -- checks before a conversion ----------------------------------------------------------


def check_target(precision: str, target: str) -> None:
    """UnsupportedOptionError when the builder cannot make ``precision`` for ``target``."""
    allowed = BUILD_PRECISIONS.get(target)
    if allowed is None:
        raise UnsupportedOptionError(
            f"ORT GenAI models are built for {' or '.join(BUILD_PRECISIONS)}, not {target}.",
            field="device",
        )
    if precision not in allowed:
        raise UnsupportedOptionError(
            f"ORT GenAI's model builder makes {', '.join(allowed)} models for {target}, "
            f"not {precision}.",
            field="precision",
        )


# -- building --------------------------------------------------------------------------------


def build_dir(checkpoint: Path, precision: str, target: str) -> Path:
    """Where the GenAI folder of this checkpoint, precision and target is cached."""
    from importlib.metadata import version

    key = "\0".join(
        (folder_sha256(checkpoint), precision, target, BUILD_FORMAT, version("onnxruntime-genai"))
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir() / "genai" / f"{digest}-{precision}-{target}"


def time_limit_s(checkpoint: Path) -> float:
    """The builder's time limit: 10 min + 2 min per GiB of weights, or the environment's."""
    env = os.environ.get(TIME_LIMIT_ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            value = 0.0
        if value > 0:
            return value
        raise ModelError(f"{TIME_LIMIT_ENV} must be a positive number of seconds (got {env!r}).")
    weights = sum(p.stat().st_size for p in checkpoint.glob("*.safetensors"))
    return 600.0 + 120.0 * weights / (1 << 30)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per cached folder (two workers asking for it wait for one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tie_to_parent() -> None:
    from wattbench.backends.lifetime import die_with_parent

    die_with_parent(os.getppid())


def _run_builder(checkpoint: Path, out: Path, precision: str, target: str, limit: float) -> None:
    work = out.parent / (out.name + ".hf-cache")
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i",
        str(checkpoint),
        "-o",
        str(out),
        "-p",
        precision,
        "-e",
        target,
        "-c",
        str(work),
        "--extra_options",
        "hf_token=false",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log.info("building the %s %s GenAI model of %s in %s", precision, target, checkpoint, out)
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=limit,
            preexec_fn=_tie_to_parent,  # the builder dies with the worker that started it
        )
    except subprocess.TimeoutExpired:
        raise ModelError(
            f"ORT GenAI's model builder took longer than {limit:.0f} s on {checkpoint}; set "
            f"{TIME_LIMIT_ENV} to allow longer.",
            field="model",
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0 or not (out / GENAI_CONFIG).is_file():
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        last = next((ln for ln in reversed(lines) if ln.strip()), "no message")
        raise ModelError(
            f"ORT GenAI's model builder could not convert {checkpoint} to {precision} for "
            f"{target} (exit {proc.returncode}): {last[-400:]}",
            field="model",
        )


def build(checkpoint: Path, precision: str, target: str) -> Path:
    """The GenAI folder of ``checkpoint`` at ``precision`` for ``target`` (cpu | cuda): built
    once with ORT GenAI's model builder, then found in the cache."""
    checkpoint = checkpoint.resolve()
    check_target(precision, target)
    hf.read_checkpoint(checkpoint)  # the builder reads only what Wattbench accepts
    out = build_dir(checkpoint, precision, target)
    with _locked(out):
        if (out / BUILD_RECORD).is_file() and (out / GENAI_CONFIG).is_file():
            return out
        tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent))
        try:
            _run_builder(checkpoint, tmp, precision, target, time_limit_s(checkpoint))
            record = {"precision": precision, "target": target, "source": str(checkpoint)}
            (tmp / BUILD_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
            shutil.rmtree(out, ignore_errors=True)  # a half-made folder of an older build
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
