"""The machines of a report, described once: what differs between them, and what they share.

A system description is a nested mapping (``backends.system.describe_system``); its fields get
readable names and units here ("Memory 23.5 GiB", never ``memory_total_bytes 25276502016``),
and what describes the moment of a run rather than the machine is left out
(``machine_identity``). The raw descriptions stay in the JSON report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wattbench.domain import units
from wattbench.domain.result import host_of, machine_identity

log = logging.getLogger(__name__)

MAX_VALUE_CHARS = 160
MAX_SYSTEM_VALUE_CHARS = 400  # a raw value in the JSON report
NOT_RECORDED = "not recorded"
# fields shown in the one line of what every machine shares, in this order
SHARED_HEADLINE = ("OS", "Architecture", "CPU", "Memory", "GPU", "Python", "torch",
                   "onnxruntime")  # fmt: skip
MAX_SHARED_SHOWN = 6


@dataclass(frozen=True)
class SystemEntry:
    title: str
    used_by: tuple[str, ...]  # group labels (or run labels) measured on this machine
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Machine:
    title: str  # host name (with "#2" when two descriptions share it)
    used_by: tuple[str, ...]  # configuration (or run) labels measured on it
    fields: Mapping[str, str]  # readable name -> readable value, in reading order


@dataclass(frozen=True)
class Machines:
    machines: tuple[Machine, ...]
    differing: tuple[str, ...]  # field names whose values differ between the machines
    shared: tuple[tuple[str, str], ...]  # fields equal on every machine, in reading order

    def shared_line(self) -> str:
        """'Linux 6.8.0 · x86_64 · Python 3.11.7 (and 9 more identical settings)'."""
        if not self.shared:
            return ""
        by_name = dict(self.shared)
        shown = [f"{n} {by_name[n]}" for n in SHARED_HEADLINE if n in by_name]
        shown = shown[:MAX_SHARED_SHOWN]
        rest = len(self.shared) - len(shown)
        text = "; ".join(shown) if shown else ""
        if rest > 0:
            text += f"{' (and' if text else ''} {rest} more identical setting" + (
                "s" if rest > 1 else "") + (")" if shown else "")  # fmt: skip
        return text.strip()


def _yes_no(v: Any) -> str:
    return "yes" if v is True else "no" if v is False else _text(v)


def _text(v: Any) -> str:
    if v is None:
        return NOT_RECORDED
    if isinstance(v, bool):
        return _yes_no(v)
    if isinstance(v, int | float):
        return units.number(float(v)) if isinstance(v, float) else units.count(v)
    if isinstance(v, list | tuple):
        return ", ".join(_text(x) for x in v) if v else "none"
    if isinstance(v, Mapping):
        return "; ".join(f"{k} {_text(x)}" for k, x in v.items()) if v else "none"
    text = units.printable(v)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _suffixed(key: str, v: Any) -> str:
    """A value in the unit its key names (``_bytes``, ``_mhz``, ``_s``)."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        if key.endswith("_bytes"):
            return units.size_bytes(float(v))
        if key.endswith("_mhz"):
            return f"{units.number(float(v))} MHz"
        if key.endswith("_s"):
            return units.duration_s(float(v))
    return _text(v)


def _name(path: str) -> str:
    """'cpu_frequency.frequency_driver' -> 'CPU frequency driver' (a field with no better name)."""
    words = " ".join(p for p in path.replace(".", " ").replace("_", " ").split())
    for suffix in (" bytes", " mhz", " s"):
        if words.endswith(suffix):
            words = words[: -len(suffix)]
    words = words.replace("cpu", "CPU").replace("gpus", "GPUs").replace("os ", "OS ")
    return words[:1].upper() + words[1:]


def _gpu_models(gpus: Any) -> str | None:
    """'NVIDIA GeForce RTX 4090', '2 × NVIDIA A100', 'none' from describe_system's
    {nvidia: [...], drm: [...]} or from a plain list of GPUs with a name or model each."""
    if isinstance(gpus, list | tuple):
        found: list[Any] = list(gpus)
        shown: list[Any] = []
    elif isinstance(gpus, Mapping):
        found = list(gpus.get("nvidia") or ())
        shown = list(gpus.get("drm") or ())
    else:
        return None
    names = [str(g.get("model") or g.get("name") or "unnamed") for g in found
             if isinstance(g, Mapping)]  # fmt: skip
    if not names:  # display devices only when no compute GPU is named
        names = [str(g.get("vendor") or "display device") for g in shown
                 if isinstance(g, Mapping)]  # fmt: skip
    if not names:
        return "none"
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    return ", ".join(n if c == 1 else f"{c} × {n}" for n, c in counts.items())


def _cores(cpu: Mapping[str, Any]) -> str | None:
    phys, logical = cpu.get("physical_cores"), cpu.get("logical_cpus")
    if phys is None and logical is None:
        return None
    parts = [f"{phys} cores" if phys is not None else "",
             f"{logical} threads" if logical is not None else ""]  # fmt: skip
    return ", ".join(p for p in parts if p)


# readable fields taken from known places: (name, reader); a reader returns None when absent
_Reader = Callable[[Mapping[str, Any]], str | None]


def _get(path: str) -> _Reader:
    def read(system: Mapping[str, Any]) -> str | None:
        node: Any = system
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return _suffixed(path, node)

    return read


def _cpu(system: Mapping[str, Any]) -> Mapping[str, Any]:
    cpu = system.get("cpu")
    return cpu if isinstance(cpu, Mapping) else {}


def _os(system: Mapping[str, Any]) -> str | None:
    parts = [str(system[k]) for k in ("os", "os_release") if system.get(k)]
    return " ".join(parts) or None


KNOWN: tuple[tuple[str, _Reader, tuple[str, ...]], ...] = (
    # (name, reader, the raw paths it covers)
    ("Host", lambda s: host_of(s), ("host", "hostname", "host_name", "node", "computer_name")),
    ("OS", _os, ("os", "os_release")),
    ("CPU", lambda s: _text(_cpu(s).get("model")) if "model" in _cpu(s) else None,
     ("cpu.model",)),
    ("CPU cores", lambda s: _cores(_cpu(s)), ("cpu.physical_cores", "cpu.logical_cpus")),
    ("CPU sockets", _get("cpu.sockets"), ("cpu.sockets",)),
    ("CPU max clock", _get("cpu.max_mhz"), ("cpu.max_mhz",)),
    ("Architecture", _get("cpu.architecture"), ("cpu.architecture",)),
    ("CPU instruction sets", _get("cpu.isa"), ("cpu.isa",)),
    ("Memory", _get("memory_total_bytes"), ("memory_total_bytes",)),
    ("Swap", _get("swap_total_bytes"), ("swap_total_bytes",)),
    ("GPU", lambda s: _gpu_models(s.get("gpus")), ("gpus",)),
    ("NVIDIA driver", _get("gpus.nvidia_driver"), ("gpus.nvidia_driver",)),
    ("CPU governor", _get("cpu_frequency.governor"), ("cpu_frequency.governor",)),
    ("CPU frequency driver", _get("cpu_frequency.frequency_driver"),
     ("cpu_frequency.frequency_driver",)),
    ("Turbo", _get("cpu_frequency.turbo"), ("cpu_frequency.turbo",)),
    ("Python", _get("python"), ("python",)),
)  # fmt: skip
_COVERED = {p for _, _, paths in KNOWN for p in paths}


def describe(system: Mapping[str, Any]) -> dict[str, str]:
    """A machine's fields as readable (name, value) pairs, known fields first, then the rest
    (package versions by package name, other fields by a name made from their key)."""
    identity = machine_identity(system)
    out: dict[str, str] = {}
    for name, read, _ in KNOWN:
        value = read(identity)
        if value is not None:
            out[name] = value
    for key, value in identity.items():
        if key == "versions" and isinstance(value, Mapping):
            for pkg, ver in value.items():
                out.setdefault(str(pkg), _text(ver))
            continue
        _rest(out, str(key), value)
    return out


def _rest(out: dict[str, str], path: str, value: Any) -> None:
    if path in _COVERED:
        return
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _rest(out, f"{path}.{k}", v)
        return
    out.setdefault(_name(path), _suffixed(path, value))


def machines(described: Sequence[tuple[Mapping[str, Any], str]]) -> Machines:
    """The distinct machines among (system description, who measured on it) pairs."""
    by_key: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for system, who in described:
        key = json.dumps(machine_identity(system), sort_keys=True, default=str)
        entry = by_key.setdefault(key, (system, []))
        if who not in entry[1]:
            entry[1].append(who)
    out: list[Machine] = []
    seen: dict[str, int] = {}
    for system, used_by in by_key.values():
        fields = describe(system)
        host = fields.get("Host", "unknown host")
        seen[host] = seen.get(host, 0) + 1
        title = host if seen[host] == 1 else f"{host} #{seen[host]}"
        out.append(Machine(title, tuple(used_by), fields))
    names: dict[str, None] = {}
    for m in out:
        names.update(dict.fromkeys(m.fields))
    differing = tuple(n for n in names
                      if len({m.fields.get(n, NOT_RECORDED) for m in out}) > 1)  # fmt: skip
    shared = tuple((n, out[0].fields[n]) for n in names
                   if n not in differing and n != "Host")  # fmt: skip
    return Machines(tuple(out), differing, shared)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings and lists as ('a.b[0].c', 'text') pairs, in their recorded order."""
    out: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        if not value and prefix:
            out.append((prefix, "(none)"))
        for k, v in value.items():
            out.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list | tuple):
        if not value and prefix:
            out.append((prefix, "(none)"))
        for i, v in enumerate(value):
            out.extend(flatten(v, f"{prefix}[{i}]"))
    else:
        text = "unknown" if value is None else str(value)
        if len(text) > MAX_SYSTEM_VALUE_CHARS:
            text = text[: MAX_SYSTEM_VALUE_CHARS - 1] + "…"
        out.append((prefix or "value", text))
    return out


def raw_systems(
    described: Sequence[tuple[Mapping[str, Any], str, str]],
) -> tuple[SystemEntry, ...]:
    """One entry per distinct raw system description (for the JSON report), from (description,
    who measured on it, host) triples."""
    by_key: dict[str, tuple[Mapping[str, Any], str, list[str]]] = {}
    for system, who, host in described:
        key = json.dumps(system, sort_keys=True, default=str)
        entry = by_key.setdefault(key, (system, host, []))
        if who not in entry[2]:
            entry[2].append(who)
    out = []
    hosts_seen: dict[str, int] = {}
    for system, host, used_by in by_key.values():
        hosts_seen[host] = hosts_seen.get(host, 0) + 1
        title = host if hosts_seen[host] == 1 else f"{host} (description #{hosts_seen[host]})"
        items = tuple(flatten(system)) or (("system", "not recorded"),)
        out.append(SystemEntry(title, tuple(used_by), items))
    return tuple(out)
