"""A fleet host as its agent advertises it: plain values (service/fleet_agent.py makes them,
service/fleet.py reads them back from the scheduler, checked as untrusted input)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostDevice:
    """One compute device of a host and the runtimes that can use it."""

    id: str  # "cpu", "cuda:0"
    kind: str
    name: str
    runtimes: tuple[str, ...] = ()  # the runtimes that can use it
    power: tuple[str, ...] = ()  # the power sources that read it ("rapl package-0")


@dataclass(frozen=True)
class HostPower:
    """One power source of a host, read or not, and why not."""

    name: str
    device: str
    ok: bool
    estimate: bool = False
    why: str | None = None


@dataclass(frozen=True)
class HostInventory:
    """What an agent says about its host when it joins (computed once, at its start)."""

    hostname: str
    cpu: str | None = None
    architecture: str | None = None
    logical_cpus: int | None = None
    devices: tuple[HostDevice, ...] = ()
    power: tuple[HostPower, ...] = ()
    notes: tuple[str, ...] = ()
    wattbench_version: str = ""

    @property
    def measured_power(self) -> bool:
        """At least one source measures (not estimates) this host's power."""
        return any(p.ok and not p.estimate for p in self.power)


@dataclass(frozen=True)
class FleetHost:
    """A connected agent: its name, where it listens, its inventory and its queue."""

    name: str
    address: str  # the agent's worker address at the scheduler ("tcp://10.0.0.5:40123")
    inventory: HostInventory | None  # None: it advertised none we could read
    running: int = 0  # runs in progress on it (0 or 1: one at a time)
    problem: str | None = None  # why its inventory could not be read

    @property
    def summary(self) -> str:
        """One line: the CPU, the other devices and whether power is measured."""
        inv = self.inventory
        if inv is None:
            return f"inventory n/a ({self.problem or 'not advertised'})"
        others = [d.name or d.id for d in inv.devices if d.kind != "cpu" and d.runtimes]
        cpu = inv.cpu or "CPU n/a"
        if inv.logical_cpus:
            cpu += f" ({inv.logical_cpus} CPUs)"
        power = "power measured" if inv.measured_power else "power n/a (estimate only)"
        return "; ".join([cpu, *others, power])
