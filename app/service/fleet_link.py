"""The connection to a fleet: where its scheduler is, how to talk to it (TCP, or TLS with the
fleet's own CA), and the hosts that joined it (``wattbench agent``), each with the inventory it
advertises, read back as untrusted input. ``service.fleet`` runs plans on them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattbench.domain import codec
from wattbench.domain.errors import BadInputError, FleetError
from wattbench.domain.fleet import FleetHost, HostInventory
from wattbench.service.fleet_agent import INVENTORY_METRIC

SCHEDULER_ENV = "WATTBENCH_SCHEDULER"
TLS_ENV = {"ca": "WATTBENCH_TLS_CA", "cert": "WATTBENCH_TLS_CERT", "key": "WATTBENCH_TLS_KEY"}
ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")
HOSTS_TTL_S = 0.5  # the hosts' list is asked for at most this often


# -- where the scheduler is, and how to talk to it ----------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS fleet: the CA that signed every certificate, this process's
    certificate and its key (one certificate may serve every role on a trusted network)."""

    ca: str
    cert: str
    key: str

    @classmethod
    def from_env(cls) -> TlsFiles | None:
        values = {k: os.environ.get(v) for k, v in TLS_ENV.items()}
        if not any(values.values()):
            return None
        return cls.given(values["ca"], values["cert"], values["key"])

    @classmethod
    def given(cls, ca: str | None, cert: str | None, key: str | None) -> TlsFiles | None:
        """The files given (all three or none); BadInputError for a partial or unreadable set."""
        if not (ca or cert or key):
            return None
        missing = [
            n for n, v in (("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)) if not v
        ]
        if missing:
            raise BadInputError(
                f"TLS needs the CA, the certificate and the key: add {', '.join(missing)}.",
                field="tls",
            )
        for path in (ca, cert, key):
            if not Path(str(path)).is_file():
                raise BadInputError(f"TLS file {path} is not there (or not a file).", field="tls")
        return cls(str(ca), str(cert), str(key))

    def security(self) -> Any:
        from distributed.security import Security

        return Security(
            tls_ca_file=self.ca,
            tls_client_cert=self.cert,
            tls_client_key=self.key,
            tls_scheduler_cert=self.cert,
            tls_scheduler_key=self.key,
            tls_worker_cert=self.cert,
            tls_worker_key=self.key,
            require_encryption=True,
        )


def scheduler_address(given: str | None) -> str:
    """The scheduler's address: ``given``, else $WATTBENCH_SCHEDULER; checked for its form."""
    address = (given or os.environ.get(SCHEDULER_ENV) or "").strip()
    if not address:
        raise BadInputError(
            "Say which scheduler: --scheduler tcp://HOST:8786 (or set WATTBENCH_SCHEDULER); "
            "start one with `wattbench scheduler`.",
            field="scheduler",
        )
    if not ADDRESS.fullmatch(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise BadInputError(
            f"A scheduler address reads tcp://HOST:PORT or tls://HOST:PORT (got {address!r}).",
            field="scheduler",
        )
    return address


def security_for(address: str, tls: TlsFiles | None) -> Any | None:
    """Dask's security for ``address``: TLS with the files for tls://, none for tcp://."""
    if address.startswith("tls://"):
        if tls is None:
            raise BadInputError(
                f"{address} speaks TLS: give --tls-ca, --tls-cert and --tls-key (or set "
                f"{', '.join(TLS_ENV.values())}).",
                field="tls",
            )
        return tls.security()
    if tls is not None:
        raise BadInputError(
            f"TLS files were given but {address} is plain TCP: use tls://{address[6:]}.",
            field="tls",
        )
    return None


# -- the connection -----------------------------------------------------------------------


def _host_of(address: str, worker: dict[str, Any]) -> FleetHost:
    name = str(worker.get("name", address))
    metrics = worker.get("metrics") or {}
    raw = metrics.get(INVENTORY_METRIC) if isinstance(metrics, dict) else None
    inventory: HostInventory | None = None
    problem = None
    if raw:
        try:
            inventory = codec.from_document(json.loads(str(raw)), HostInventory)
        except (codec.CodecError, ValueError) as exc:
            problem = f"its inventory is unreadable: {exc}"
    else:
        problem = "not a wattbench agent (no inventory)"
    running = metrics.get("executing", 0) if isinstance(metrics, dict) else 0
    return FleetHost(name, address, inventory, int(running or 0), problem)


class Fleet:
    """A connection to a fleet's scheduler (a Dask client). Thread-safe; close it."""

    def __init__(self, client: Any, address: str) -> None:
        self.client = client
        self.address = address
        self._lock = threading.Lock()
        self._hosts: tuple[float, list[FleetHost]] | None = None

    @classmethod
    def connect(
        cls, address: str | None = None, tls: TlsFiles | None = None, *, timeout_s: float = 10.0
    ) -> Fleet:
        """Connect to the scheduler (FleetError with what to do when it cannot be reached)."""
        where = scheduler_address(address)
        security = security_for(where, tls if tls is not None else TlsFiles.from_env())
        from distributed import Client

        try:
            client = Client(where, security=security, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise FleetError(
                f"The fleet's scheduler at {where} cannot be reached ({exc}). Start it with "
                "`wattbench scheduler` on that host, or check the address and the TLS files."
            ) from exc
        return cls(client, where)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hosts(self, *, fresh: bool = False) -> list[FleetHost]:
        """The hosts connected now, by name (asked of the scheduler at most every 0.5 s)."""
        with self._lock:
            now = time.monotonic()
            if not fresh and self._hosts is not None and now - self._hosts[0] < HOSTS_TTL_S:
                return self._hosts[1]
            try:
                info = self.client.scheduler_info(n_workers=-1)
            except (OSError, TimeoutError) as exc:
                raise FleetError(
                    f"The fleet's scheduler at {self.address} stopped answering ({exc})."
                ) from exc
            hosts = sorted(
                (_host_of(a, w) for a, w in info.get("workers", {}).items()), key=lambda h: h.name
            )
            self._hosts = (now, hosts)
            return hosts

    def address_of(self, name: str) -> str | None:
        return next((h.address for h in self.hosts() if h.name == name), None)

    def choose(self, names: Sequence[str]) -> list[FleetHost]:
        """The hosts named (``all``: every connected one); BadInputError naming the missing."""
        hosts = self.hosts(fresh=True)
        if not hosts:
            raise BadInputError(
                f"No host has joined the scheduler at {self.address}: start `wattbench agent "
                f"--scheduler {self.address}` on each host.",
                field="on",
            )
        if list(names) == ["all"]:
            return hosts
        by_name = {h.name: h for h in hosts}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadInputError(
                f"Not connected to the scheduler: {', '.join(missing)} (connected: "
                f"{', '.join(by_name)}).",
                field="on",
            )
        return [by_name[n] for n in dict.fromkeys(names)]


def parse_hosts(text: str) -> tuple[str, ...]:
    """``--on a,b`` or ``--on all`` as names; BadInputError for an empty list."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise BadInputError("--on names the hosts: --on HOST[,HOST…] or --on all.", field="on")
    return names


__all__ = [
    "SCHEDULER_ENV",
    "TLS_ENV",
    "Fleet",
    "TlsFiles",
    "parse_hosts",
    "scheduler_address",
    "security_for",
]
