"""What the capacity planner needs from stored runs and from the user, in no front end's words.

Each configuration of the runs (replicates pooled as in a comparison) becomes a server: its
measured throughput per device, its power at load and idle (measured in the system view when
there is one, else the device's own domains — the rest of the server then uncounted, said so —
else an estimate, labelled), and the price, tariff and utilization of its device's cost profile;
what the user states about a device's servers (``ServerInput``) replaces them, shown as input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wattbench.domain.cost import CostProfile
from wattbench.domain.energy import view_parts
from wattbench.domain.errors import BadInputError
from wattbench.domain.result import RunResult, RunStatus
from wattbench.engine.capacity import (
    ESTIMATE,
    INPUT,
    MEASURED,
    CapacityRow,
    Facility,
    ServerConfig,
    Sourced,
    plan_capacity,
)
from wattbench.engine.compare import compare_runs, quality_causes
from wattbench.engine.metrics import ConfigGroup

_POWER = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(w|kw|mw|gw)?\s*$", re.IGNORECASE)
_SCALE = {"w": 1.0, "kw": 1e3, "mw": 1e6, "gw": 1e9}
SERVER_KEYS = ("devices", "power", "idle", "price")


def parse_power(text: str, *, field: str = "budget") -> float:
    """'1MW', '10 kW', '250W' or '250' (watts) → watts."""
    m = _POWER.match(text)
    if m is None or not float(m.group(1)) > 0:
        raise BadInputError(
            f"Cannot read the power {text!r}: write a positive number with W, kW or MW "
            "(for example 1MW or 250W).",
            field=field,
        )
    return float(m.group(1)) * _SCALE[(m.group(2) or "w").lower()]


@dataclass(frozen=True)
class ServerInput:
    """What the user states about the servers of one device (None: from the runs/profile)."""

    device: str
    devices: int | None = None  # devices per server
    power_w: float | None = None  # the server at load
    idle_w: float | None = None
    price_usd: float | None = None  # one server


def parse_server(device: str, text: str) -> ServerInput:
    """'devices=8,power=10kW,idle=3kW,price=300000' for a device."""
    values: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in SERVER_KEYS:
            raise BadInputError(
                f"Cannot read {part!r} for the servers of {device}: write key=value pairs with "
                f"keys {', '.join(SERVER_KEYS)} (for example devices=8,power=10kW,price=300000).",
                field="server",
            )
        if key in ("power", "idle"):
            values[key] = parse_power(value, field="server")
        else:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number > 0):
                raise BadInputError(
                    f"The {key} of the servers of {device} must be a positive number.",
                    field="server",
                )
            values[key] = number
    devices = values.get("devices")
    if devices is not None and devices != int(devices):
        raise BadInputError(f"Devices per server is a whole number (got {devices:g}).")
    return ServerInput(
        device,
        None if devices is None else int(devices),
        values.get("power"),
        values.get("idle"),
        values.get("price"),
    )


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _run_power(run: RunResult) -> tuple[float, float | None, str, str] | None:
    """(load W, idle W or None, source, note) of one run: system view, device view, estimate."""
    for view, estimates, source, note in (
        ("system", False, MEASURED, "system power, measured"),
        ("device", False, MEASURED, "device power only, measured: the rest of the server is "
                                    "not counted"),
        ("system", True, ESTIMATE, "estimated from a power model"),
        ("device", True, ESTIMATE, "device power, estimated from a power model"),
    ):  # fmt: skip
        parts = view_parts(run, view, estimates=estimates)
        if parts:
            load = sum(p.avg_power_w for p in parts)
            idles = [p.idle_power_w for p in parts]
            idle = None if any(i is None for i in idles) else sum(i or 0.0 for i in idles)
            return load, idle, source, note
    return None


def server_config(
    group: ConfigGroup, profile: CostProfile | None, given: ServerInput | None
) -> ServerConfig:
    """One configuration as a server (see the module doc)."""
    spec = group.spec
    gen = spec.scenario.value == "generation"
    unit = "output tokens/s" if gen else "inferences/s"
    est = group.estimate("throughput")
    throughput = None
    if est.value is not None:
        per = est.value.value * (spec.new_tokens if gen else 1)
        throughput = Sourced(per, MEASURED, est.method)
    devices = given.devices if given and given.devices else 1
    powers = [p for p in (_run_power(r) for r in group.runs) if p is not None]
    power: Sourced | None = None
    idle: Sourced | None = None
    if given and given.power_w:
        power = Sourced(given.power_w, INPUT, "stated for the server")
    elif powers:
        source, note = powers[0][2], powers[0][3]
        times = f" × {devices} devices" if devices > 1 else ""
        power = Sourced(_mean([p[0] for p in powers]) * devices, source, note + times)
        idles = [p[1] for p in powers if p[1] is not None]
        if len(idles) == len(powers):
            idle = Sourced(_mean(idles) * devices, source, "idle, before the run")
    if given and given.idle_w:
        idle = Sourced(given.idle_w, INPUT, "stated for the server")
    price: Sourced | None = None
    if given and given.price_usd:
        price = Sourced(given.price_usd, INPUT, "stated for the server")
    elif profile is not None and profile.purchase_price_usd is not None:
        times = f" × {devices} devices" if devices > 1 else ""
        price = Sourced(profile.purchase_price_usd * devices, INPUT,
                        f"cost profile of {profile.device}{times}")  # fmt: skip
    tariff = None
    if profile is not None and profile.electricity_usd_per_kwh is not None:
        tariff = Sourced(
            profile.electricity_usd_per_kwh, INPUT, f"cost profile of {profile.device}"
        )
    u = profile.utilization if profile is not None else 1.0
    utilization = Sourced(
        u, INPUT, "cost profile" if profile is not None else "default: always busy"
    )
    why = []
    if throughput is None:
        why.append(f"no throughput: {est.na_reason}")
    if power is None:
        why.append(f"no power reading or estimate: give --server {spec.device} power=…")
    causes = quality_causes(group.runs)
    if causes:
        why.append(f"unreliable runs: {', '.join(causes)}")
    return ServerConfig(group.label, unit, throughput, devices, power, idle, price, tariff,
                        utilization, "; ".join(why))  # fmt: skip


def capacity_plan(
    runs: Sequence[RunResult],
    facility: Facility,
    profiles: Mapping[str, CostProfile],
    servers: Sequence[ServerInput] = (),
) -> list[CapacityRow]:
    """One row per configuration of the finished runs, in order of appearance."""
    done = [r for r in runs if r.status is RunStatus.DONE]
    if not done:
        raise BadInputError("None of these runs finished: there is nothing to plan with.")
    given = {s.device: s for s in servers}
    unknown = [d for d in given if all(r.spec.device != d for r in done)]
    if unknown:
        raise BadInputError(
            f"--server names {unknown[0]}, which none of these runs ran on.", field="server"
        )
    comparison = compare_runs(done, metrics=("throughput",), cost_profiles=profiles)
    rows = []
    for g in comparison.groups:
        config = server_config(g, profiles.get(g.spec.device), given.get(g.spec.device))
        rows.append(plan_capacity(facility, config))
    return rows
