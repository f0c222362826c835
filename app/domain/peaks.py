"""Documented dense peaks of accelerators, MFU against them, and per-card figures of cards
that show as several devices.

MFU (model FLOPs utilisation) is the achieved TFLOP/s over the device's documented dense peak
at the precision used. The peaks below are the vendors' own figures, without structured
sparsity: where a datasheet gives a tensor figure only with 2:4 sparsity, the dense figure is
half of it and the entry says so. A device that is not in the table, a CPU, or a precision the
device has no documented figure for gives no peak, and MFU is "n/a" with its reason.

One physical card may show as several devices: an AMD Instinct MI250 or MI250X is two dies
(GCDs), each a runtime device of its own, while the card has one power reading. The runtime
names the die, so a die's peak is the card's peak divided by its dies; :func:`per_card` groups
the dies of one card back into per-card figures, each labelled with how it was formed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wattbench.domain import units
from wattbench.domain.errors import BadInputError

PEAK_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_PRECISION_ALIASES = {
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "tf32": "tf32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
}
_CPU_WORDS = frozenset(
    {"cpu", "xeon", "epyc", "ryzen", "threadripper", "opteron", "neoverse", "graviton"}
)


@dataclass(frozen=True)
class DevicePeaks:
    """One device model's documented dense peaks, in TFLOP/s for the whole card."""

    model: str
    tflops: tuple[tuple[str, float], ...]  # (precision, dense TFLOP/s)
    source: str
    all_of: tuple[frozenset[str], ...]  # each set: one of these words is in the runtime's name
    none_of: frozenset[str] = frozenset()  # none of these is
    dies_per_card: int = 1  # runtime devices one card shows as
    peak_per_card: bool = True  # the figures are the whole card's (all its dies together)
    compute_units_per_die: int | None = None  # tells apart models one runtime name covers

    def card_tflops(self, precision: str) -> float | None:
        return dict(self.tflops).get(precision)


def _words(*alternatives: str) -> frozenset[str]:
    return frozenset(alternatives)


_SXM = _words("sxm", "sxm4")
_HOPPER_SXM = _words("sxm", "sxm5", "hbm3")
_NOT_PCIE_NVL = _words("pcie", "nvl")
_A100 = (("fp32", 19.5), ("tf32", 156.0), ("bf16", 312.0), ("fp16", 312.0))
_A100_SOURCE = "NVIDIA A100 datasheet, SXM; dense, the sparse figures are twice these"
_HOPPER_SXM_PEAKS = (("fp32", 67.0), ("tf32", 494.5), ("bf16", 989.5), ("fp16", 989.5))

# Every figure was read from the vendor's datasheet or specification page (the words say
# which); devices with no such page found are left out rather than guessed.
DOCUMENTED_PEAKS: tuple[DevicePeaks, ...] = (
    DevicePeaks(
        "NVIDIA V100 SXM2",
        (("fp32", 15.7), ("fp16", 125.0)),
        "NVIDIA V100 datasheet, SXM2: single precision 15.7, deep learning (FP16 tensor) 125",
        (_words("v100"), _words("sxm2")),
    ),
    DevicePeaks(
        "NVIDIA A100 SXM4 40 GB", _A100, _A100_SOURCE, (_words("a100"), _SXM, _words("40gb"))
    ),
    DevicePeaks(
        "NVIDIA A100 SXM4 80 GB", _A100, _A100_SOURCE, (_words("a100"), _SXM, _words("80gb"))
    ),
    DevicePeaks(
        "NVIDIA A10",
        (("fp32", 31.2), ("tf32", 62.5), ("bf16", 125.0), ("fp16", 125.0)),
        "NVIDIA A10 datasheet; dense, the sparse figures are twice these",
        (_words("a10"),),
    ),
    DevicePeaks(
        "NVIDIA L4",
        (("fp32", 30.3), ("tf32", 60.0), ("bf16", 121.0), ("fp16", 121.0)),
        "NVIDIA L4 datasheet: FP32 30.3; tensor figures given with sparsity "
        "(TF32 120, BF16/FP16 242), halved",
        (_words("l4"),),
    ),
    DevicePeaks(
        "NVIDIA H100 SXM",
        _HOPPER_SXM_PEAKS,
        "NVIDIA H100 datasheet, SXM: FP32 67; tensor figures given with sparsity "
        "(TF32 989, BF16/FP16 1,979), halved",
        (_words("h100"), _HOPPER_SXM),
        _NOT_PCIE_NVL,
    ),
    DevicePeaks(
        "NVIDIA H100 PCIe",
        (("fp32", 51.0), ("tf32", 378.0), ("bf16", 756.5), ("fp16", 756.5)),
        "NVIDIA H100 datasheet, PCIe: FP32 51; tensor figures given with sparsity "
        "(TF32 756, BF16/FP16 1,513), halved",
        (_words("h100"), _words("pcie")),
        _words("nvl"),
    ),
    DevicePeaks(
        "NVIDIA H200 SXM",
        _HOPPER_SXM_PEAKS,
        "NVIDIA H200 SXM datasheet: FP32 67; tensor figures given with sparsity "
        "(TF32 989, BF16/FP16 1,979), halved",
        (_words("h200"),),
        _NOT_PCIE_NVL,
    ),
    DevicePeaks(
        "AMD Instinct MI250",
        (("fp32", 90.5), ("bf16", 362.1), ("fp16", 362.1)),
        "AMD ROCm MI250 microarchitecture page: per OAM card of two GCDs; FP32 is matrix FP32",
        (_words("mi250"),),
        dies_per_card=2,
        compute_units_per_die=104,
    ),
    DevicePeaks(
        "AMD Instinct MI250X",
        (("fp32", 95.7), ("bf16", 383.0), ("fp16", 383.0)),
        "AMD Instinct MI250X specifications: per OAM card of two GCDs; FP32 is matrix FP32",
        (_words("mi250x"),),
        dies_per_card=2,
        compute_units_per_die=110,
    ),
    DevicePeaks(
        "AMD Instinct MI300X",
        (("fp32", 163.4), ("tf32", 653.7), ("bf16", 1307.4), ("fp16", 1307.4)),
        "AMD ROCm MI300 microarchitecture page: MI300X OAM, dense",
        (_words("mi300x"),),
    ),
)


@dataclass(frozen=True)
class Peak:
    """The documented dense peak one runtime device is measured against."""

    tflops: float
    precision: str
    model: str
    source: str
    per_die: bool = False  # a die of a multi-die card: the card's peak over its dies
    dies_per_card: int = 1
    note: str = ""  # how the runtime's name was resolved, where it fits more than one model

    @property
    def label(self) -> str:
        where = " per die" if self.per_die else ""
        note = f"; {self.note}" if self.note else ""
        return (
            f"documented peak {tflops_text(self.tflops)} TFLOP/s {self.precision} dense{where} "
            f"({self.source}{note})"
        )


def tflops_text(value: float) -> str:
    """A documented figure as documented: 989.5, 1,307.4, 181.05 (no rounding away)."""
    return f"{value:,.6g}"


def name_words(device_name: str) -> frozenset[str]:
    """The words of a runtime's device name: lower case, '80 GB' as '80gb', punctuation out."""
    text = re.sub(r"(\d+)\s*gb\b", r"\1gb", device_name.lower())
    return frozenset(w for w in re.split(r"[^a-z0-9]+", text) if w)


def precision_key(precision: str) -> str | None:
    """'bf16', 'bfloat16', 'torch.bfloat16' -> 'bf16'; None for a precision with no peaks here."""
    key = precision.strip().lower().removeprefix("torch.")
    return _PRECISION_ALIASES.get(key)


def _matches(device_name: str) -> list[DevicePeaks]:
    words = name_words(device_name)
    return [
        e
        for e in DOCUMENTED_PEAKS
        if all(words & alternatives for alternatives in e.all_of) and not words & e.none_of
    ]


def _resolve(
    device_name: str, compute_units: int | None
) -> tuple[DevicePeaks | None, tuple[DevicePeaks, ...]]:
    """The entry for a runtime's name, and the other entries the name fits as well."""
    found = _matches(device_name)
    if len(found) > 1 and compute_units is not None:
        found = [e for e in found if e.compute_units_per_die == compute_units] or found
    best = max(found, key=lambda e: max(t for _, t in e.tflops), default=None)
    return best, tuple(e for e in found if e is not best)


def device_model(device_name: str, compute_units: int | None = None) -> DevicePeaks | None:
    """The table's entry for a runtime's device name; where the name fits several models
    ('AMD Instinct MI250X / MI250'), the compute units per die tell them apart, else the one with
    the highest peaks is taken (MFU then is not overstated)."""
    return _resolve(device_name, compute_units)[0]


def peak_for(device_name: str, precision: str, *, compute_units: int | None = None) -> Peak | None:
    """The documented dense peak of one runtime device at ``precision``, or None.

    ``device_name`` is what the runtime reports ('NVIDIA H200', 'NVIDIA A100-SXM4-80GB',
    'AMD Instinct MI250X / MI250'); for a die of a multi-die card the peak is the card's divided
    by its dies. ``compute_units`` (per device) settles names that fit more than one model."""
    key = precision_key(precision)
    entry, others = _resolve(device_name, compute_units)
    card = entry.card_tflops(key) if entry is not None and key is not None else None
    if entry is None or key is None or card is None:
        return None
    note = ""
    if others:
        note = (
            f"the name '{units.printable(device_name)}' also fits "
            f"{', '.join(e.model for e in others)}: the higher peak is taken, so MFU is not "
            "overstated"
        )
    n = entry.dies_per_card
    source = entry.source
    if n > 1:
        source = f"1/{n} of the {entry.model}'s {tflops_text(card)} per card; {source}"
    return Peak(card / n, key, entry.model, source, n > 1, n, note)


def no_peak_reason(device_name: str, precision: str) -> str:
    """Why a device has no peak: 'n/a: no documented peak for <name> at <precision>'."""
    words = name_words(device_name)
    if words & _CPU_WORDS or {"intel", "core"} <= words:
        return "n/a: no documented peak for this CPU"
    name = units.printable(device_name.strip()) or "this device"
    return f"n/a: no documented peak for {name} at {units.printable(precision)}"


def mfu(
    achieved_tflops: float,
    peak: Peak | None,
    *,
    device_name: str = "",
    precision: str = "",
) -> tuple[float | None, str]:
    """MFU as a fraction and its words, or None and the reason it is n/a.

    ``achieved_tflops`` is the measured model FLOPs per second (in TFLOP/s) of the device the
    peak is for (one die for a die's peak)."""
    if peak is None:
        return None, no_peak_reason(device_name, precision or "this precision")
    if not math.isfinite(achieved_tflops) or achieved_tflops < 0:
        return None, f"n/a: the achieved TFLOP/s is not a measured figure ({achieved_tflops!r})"
    fraction = achieved_tflops / peak.tflops
    if fraction > 1.0:
        return None, (
            f"n/a: {units.number(achieved_tflops, 4)} TFLOP/s is above the {peak.label}: the "
            "model's FLOP count or the device's name does not fit"
        )
    return fraction, (
        f"MFU {units.percent(fraction, 3)}: {units.number(achieved_tflops, 4)} TFLOP/s "
        f"measured / {peak.label}"
    )


@dataclass(frozen=True)
class DeviceFigures:
    """One runtime device's figures over a measured interval."""

    device: str  # 'cuda:0'
    name: str  # the runtime's device name
    tokens_per_s: float
    energy_j: float | None  # over the same interval; None: no reading on this device


@dataclass(frozen=True)
class CardFigures:
    """The figures of one physical card: its dies' together, or one device's unchanged."""

    card: str  # 'cuda card 0', or the device for a card that is one device
    model: str
    devices: tuple[DeviceFigures, ...]
    tokens_per_s: float | None  # None: not a whole card (see label)
    energy_j: float | None
    j_per_token: float | None
    complete: bool
    label: str


def _index(device: str) -> tuple[str, int] | None:
    kind, sep, index = device.rpartition(":")
    return (kind, int(index)) if sep and kind and index.isdigit() else None


def _energy(dies: Sequence[DeviceFigures]) -> tuple[float | None, str]:
    readings = [d.energy_j for d in dies]
    if all(r is None for r in readings):
        return None, "no power reading"
    if all(r is not None for r in readings):
        return math.fsum(r for r in readings if r is not None), "each die its own power reading"
    first = readings[0]
    if first is not None and all(r is None for r in readings[1:]):
        return first, f"one power reading (on {dies[0].device}) for the card"
    have = ", ".join(d.device for d in dies if d.energy_j is not None)
    return None, f"energy n/a: readings on {have} only, neither the card's one nor every die's"


def _j_per_token(energy_j: float | None, tokens_per_s: float, interval_s: float) -> float | None:
    tokens = tokens_per_s * interval_s
    return energy_j / tokens if energy_j is not None and tokens > 0 else None


def _check(devices: Sequence[DeviceFigures], interval_s: float) -> None:
    if not math.isfinite(interval_s) or interval_s <= 0:
        raise BadInputError(
            f"The measured interval must be a positive number of seconds (got {interval_s!r})."
        )
    seen: set[str] = set()
    for d in devices:
        if d.device in seen:
            raise BadInputError(
                f"Device {units.printable(d.device)} is given twice: give each once."
            )
        seen.add(d.device)
        if not math.isfinite(d.tokens_per_s) or d.tokens_per_s < 0:
            raise BadInputError(
                f"Tokens per second of {units.printable(d.device)} must be a measured figure, "
                f"not {d.tokens_per_s!r}."
            )
        if d.energy_j is not None and (not math.isfinite(d.energy_j) or d.energy_j < 0):
            raise BadInputError(
                f"The energy of {units.printable(d.device)} must be a measured figure in J or "
                f"none, not {d.energy_j!r}."
            )


def _card(
    card: str, model: str, n: int, dies: Sequence[DeviceFigures], interval_s: float
) -> CardFigures:
    """One card's figures from its ``dies`` of ``n`` (n = 1: a card that is one device)."""
    names = ", ".join(units.printable(d.device) for d in dies)
    unplaced = n > 1 and _index(dies[0].device) is None
    if len(dies) < n or unplaced:
        why = (
            f"a die of a {n}-die card with no device index in '{names}' to find its card by"
            if unplaced
            else f"incomplete card: {len(dies)} of its {n} dies measured ({names})"
        )
        label = f"{why}; per-card figures n/a, the per-die figures stand alone"
        return CardFigures(card, model, tuple(dies), None, None, None, False, label)
    tokens_per_s = math.fsum(d.tokens_per_s for d in dies)
    energy_j, energy_words = _energy(dies)
    label = f"per card: {n} dies ({names}), {energy_words}" if n > 1 else "per card = per device"
    j_per_token = _j_per_token(energy_j, tokens_per_s, interval_s)
    return CardFigures(card, model, tuple(dies), tokens_per_s, energy_j, j_per_token, True, label)


def per_card(devices: Sequence[DeviceFigures], interval_s: float) -> list[CardFigures]:
    """The per-card figures of one host's devices, measured over the same ``interval_s``.

    The dies of a multi-die card (``dies_per_card`` of its model in the table) are grouped by
    device index: dies k·n … k·n+n-1 of one runtime are card k, the order in which the runtime
    enumerates the dies of one card. A whole card's tokens/s are its dies' summed; its energy is
    the dies' summed where each die has a reading, or taken once where the card has one reading
    (given on its first die, the others None); J/token is the card's energy over its tokens.
    A card with dies missing is said to be incomplete, with no per-card figures. Every other
    device is a card of its own, unchanged."""
    _check(devices, interval_s)
    cards: dict[str, tuple[str, int, list[DeviceFigures]]] = {}  # in device index order
    for d in sorted(devices, key=lambda d: _index(d.device) or (d.device, -1)):
        entry, others = _resolve(d.name, None)
        n = entry.dies_per_card if entry is not None else 1
        model = entry.model if entry is not None and not others else units.printable(d.name)
        place = _index(d.device)
        card = d.device
        if n > 1 and place is not None:
            card = f"{place[0]} card {place[1] // n} ({model})"
        cards.setdefault(card, (model, n, []))[2].append(d)
    return [_card(card, model, n, dies, interval_s) for card, (model, n, dies) in cards.items()]
