"""The New run page's model list: how each catalog entry is named and described.

The catalog's families in the order they are listed, each with the words shown after a model's
name: built-ins, ONNX zoo files, the shape-only language model architectures (whose names say
"random weights"), the checkpoints of the local Hugging Face cache, then what the user opened
(model files and checkpoint folders).
"""

from __future__ import annotations

import html
from typing import Any

# catalog family -> what the list says after the name, in the order listed
FAMILY_TITLES: dict[str, str] = {
    "builtin": "built-in",
    "onnx-zoo": "ONNX zoo",
    "llm-shape": "LLM architecture",
    "hf": "local HF cache",
}
OPENED_TITLES = {"hf": "checkpoint folder", "file": "file"}  # what the user opened


def item_text(model: Any, opened: bool = False) -> str:
    """A model's line in the list: its name and where it comes from."""
    titles = OPENED_TITLES if opened else FAMILY_TITLES
    title = titles.get(model.family, model.family)
    return f"{model.name}  ({title})"


def catalog_order(entries: list[Any]) -> list[Any]:
    """The entries of the families the page lists, family by family."""
    return [m for family in FAMILY_TITLES for m in entries if m.family == family]


def info_html(model: Any) -> str:
    """The line under the list: the description, the format, the size and the inputs."""
    inputs = (
        ", ".join(f"{i.name} {'×'.join(str(d) for d in i.shape)} {i.dtype}" for i in model.inputs)
        or "none declared"
    )
    params = f" · {model.parameters:,} parameters" if model.parameters else ""
    generative = " · generates tokens" if model.generative else ""
    return (
        f"{html.escape(model.description)}<br><small>{model.format}{params}{generative} · "
        f"inputs: {html.escape(inputs)}</small>"
    )
