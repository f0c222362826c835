"""Small pieces shared by the power sources: the sysfs root, file reading, status records.

Every sysfs reader takes an ``opener`` with the signature of :func:`os.open`
(``opener(path, flags) -> fd``); the default is :data:`OPENER` (``os.open``). Tests set an
opener that raises the same ``PermissionError`` the kernel raises for a root-only file,
because the tests may run as root and root can read a mode-000 file; everything after the
open is the real code.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from wattbench.backends.sensors.base import Domain, Reading, SourceContext, SourceDefaults
from wattbench.domain.errors import SensorError

log = logging.getLogger(__name__)

SYSFS_ROOT_ENV = "WATTBENCH_SYSFS_ROOT"
DEFAULT_SYSFS_ROOT = "/sys"

Opener = Callable[[str, int], int]
OPENER: Opener = os.open  # the default opener of every sysfs reader (tests replace it)


def default_opener() -> Opener:
    return OPENER


STATUS_OK = "ok"
STATUS_UNREADABLE = "unreadable"
STATUS_ABSENT = "absent"


def resolve_sys_root(sys_root: str | None = None) -> str:
    """The sysfs root: the argument, else $WATTBENCH_SYSFS_ROOT, else /sys."""
    if sys_root:
        return sys_root
    return os.environ.get(SYSFS_ROOT_ENV) or DEFAULT_SYSFS_ROOT


def read_text(path: str, opener: Opener = os.open) -> str:
    """Read a small sysfs attribute as stripped text (raises OSError as the kernel does)."""
    fd = opener(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)


def read_optional(path: str, opener: Opener = os.open) -> str | None:
    """Read an attribute that may be missing or unreadable; None when it cannot be read."""
    try:
        return read_text(path, opener)
    except OSError:
        return None


def read_optional_float(path: str, opener: Opener = os.open) -> float | None:
    text = read_optional(path, opener)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


class ValueFile:
    """A numeric sysfs attribute kept open and re-read with pread at offset 0 (one syscall).

    sysfs regenerates an attribute's text on every read at offset 0, so holding the
    descriptor is both correct and cheap at 10 Hz.
    """

    def __init__(self, path: str, opener: Opener = os.open) -> None:
        self.path = path
        self._fd: int | None = opener(path, os.O_RDONLY)

    def read(self) -> float:
        if self._fd is None:
            raise OSError(errno.EBADF, "closed", self.path)
        return float(os.pread(self._fd, 64, 0).decode("ascii", "replace").strip())

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None


def os_error_reason(exc: OSError) -> str:
    """A short human reason for an OSError raised while reading a sensor file."""
    code = exc.errno
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ENXIO:
        return "the sensor domain is switched off (ENXIO)"
    if code == errno.ENODATA:
        return "the driver has no data for this sensor (ENODATA)"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class DomainStatus:
    """One line of the sensor inventory: a domain that is readable, unreadable, or absent."""

    source: str  # "rapl", "hwmon", "nvml", "amdsmi", "estimate"
    id: str  # the domain id when there is one, else a source-level id ("rapl", "nvml")
    name: str
    device: str  # "cpu", "cuda:0", "node", "" when unknown
    status: str  # ok | unreadable | absent
    why: str | None = None  # for unreadable / absent
    fix: str | None = None  # the exact fix, when there is one
    path: str | None = None  # the file or API it reads
    note: str | None = None  # e.g. "duplicate of rapl:package-0: not summed"
    domain: Domain | None = field(default=None, compare=False)
    used: bool = True  # False when measured but left out of sums (duplicate / overlap)


def in_container() -> bool:
    """Best guess whether this process runs in a container (for the 'powercap hidden' hint)."""
    if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
        return True
    if os.environ.get("container"):  # noqa: SIM112 - systemd sets it lowercase
        return True
    try:
        with open("/proc/1/cgroup", encoding="utf-8", errors="replace") as fh:
            text = fh.read(65536)
    except OSError:
        return False
    return any(word in text for word in ("docker", "kubepods", "containerd", "libpod", "lxc"))


class SysfsSource(SourceDefaults):
    """What the sysfs readers (RAPL, hwmon) share: the tree they read, the value files of their
    readable domains, a status for every domain found, and reading them all in one tick.

    A subclass sets ``name`` and ``subdir`` and fills the lists in ``_scan`` through ``_add``.
    """

    name = "sysfs"
    subdir: tuple[str, ...] = ()

    @classmethod
    def open(cls, ctx: SourceContext) -> Self:
        """The entry point factory: the tree under ``ctx.sys_root``."""
        return cls(ctx.sys_root)

    def __init__(self, sys_root: str | None = None, *, opener: Opener | None = None) -> None:
        self.sys_root = resolve_sys_root(sys_root)
        self.base = os.path.join(self.sys_root, *self.subdir)
        self._opener = opener or default_opener()
        self._domains: list[Domain] = []
        self._files: list[ValueFile] = []
        self.statuses: list[DomainStatus] = []
        self.errors: list[SensorError] = []
        self._scan()

    def _scan(self) -> None:
        raise NotImplementedError

    def _absent(self, why: str, fix: str | None = None) -> None:
        """The source as a whole cannot be used here (no tree, nothing listed, nothing found)."""
        self.statuses.append(
            DomainStatus(
                source=self.name,
                id=self.name,
                name=self.name,
                device=self.device_class,
                status=STATUS_ABSENT,
                why=why,
                fix=fix,
                path=self.base,
            )
        )

    def _add(self, domain: Domain, vf: ValueFile, status: DomainStatus) -> None:
        self._domains.append(domain)
        self._files.append(vf)
        self.statuses.append(status)

    # -- PowerSource -----------------------------------------------------------------------
    def domains(self) -> list[Domain]:
        return list(self._domains)

    def read(self) -> list[Reading]:
        out: list[Reading] = []
        for dom, vf in zip(self._domains, self._files, strict=True):
            try:
                value = vf.read()
            except (OSError, ValueError) as exc:
                log.debug("%s: %s unreadable this tick: %s", self.name, dom.id, exc)
                continue
            out.append(Reading(dom.id, time.perf_counter_ns(), value))
        return out

    def close(self) -> None:
        for vf in self._files:
            vf.close()
        self._files = []
        self._domains = []
