"""The spool: measured runs that could not be stored, kept aside until a store can take them.

A run that was measured is never dropped. When the run store cannot be written as a run ends
(locked by another program for longer than the busy timeout, a full disk, a server gone, a
store that could not be opened at all), the result is written here, one file per run, and the
next ``open_store`` of any store imports the spool before anything else (``import_into``).

Files live in ``<data folder>/spool`` (``$WATTBENCH_DATA_DIR/spool`` when set): ``<run id>.wbrun``,
the run as MessagePack through ``domain.codec`` (typed decoding, plain numeric arrays only:
reading one never runs code). A file is claimed by renaming it before it is imported, so two
processes opening stores at once never import it twice; a file that cannot be read is moved to
``spool/unreadable`` with the reason logged, never deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wattbench.db.values import process_alive
from wattbench.domain import codec
from wattbench.domain.errors import StoreError, WattbenchError
from wattbench.domain.result import RunResult

log = logging.getLogger(__name__)

SUFFIX = ".wbrun"
MAX_FILE_BYTES = 8 * 1024**3  # a run of 1 M latencies is ~10 MB; anything near this is not ours
_NAME = re.compile(r"^[0-9a-zA-Z_-]{1,64}\.wbrun$")
_CLAIMED = re.compile(r"^(?P<name>[0-9a-zA-Z_-]{1,64}\.wbrun)\.importing-(?P<pid>\d+)$")


@dataclass(frozen=True)
class SpoolImport:
    """What one import of the spool did."""

    imported: tuple[str, ...] = ()  # run ids now in the store
    failed: tuple[str, ...] = ()  # "file: why": left in the spool


class Spool:
    """A folder of runs kept aside (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def default(cls) -> Spool:
        from wattbench.db.store import data_dir

        return cls(data_dir() / "spool")

    def keep(self, result: RunResult) -> Path:
        """Write ``result`` to the spool (atomically); StoreError when even that fails."""
        path = self.folder / f"{result.id}{SUFFIX}"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(codec.encode_msgpack(result))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (OSError, codec.CodecError) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(
                f"Could not keep run {result.id} aside in {self.folder} either ({exc}); its "
                "figures are only in this command's output: free disk space or fix the folder."
            ) from exc
        log.warning("run %s kept aside in %s", result.id[:8], path)
        return path

    def pending(self) -> list[Path]:
        """Spooled runs waiting for a store (including claims of processes that died)."""
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.iterdir()):
            if _NAME.match(p.name):
                out.append(p)
            elif (m := _CLAIMED.match(p.name)) and not process_alive(int(m.group("pid"))):
                with contextlib.suppress(OSError):  # its importer died: release the claim
                    out.append(p.rename(p.with_name(m.group("name"))))
        return out

    def import_into(self, save: Callable[[RunResult], None]) -> SpoolImport:
        """Store every spooled run with ``save`` (the store's save_run); remove what was
        stored. A run the store refuses stays in the spool, with why."""
        imported: list[str] = []
        failed: list[str] = []
        for path in self.pending():
            claimed = path.with_name(f"{path.name}.importing-{os.getpid()}")
            try:
                path.rename(claimed)
            except OSError:  # another process took it first
                continue
            try:
                result = self._read(claimed)
            except StoreError as exc:
                failed.append(f"{path.name}: {exc}")
                self._set_aside(claimed, path.name)
                continue
            try:
                save(result)
            except WattbenchError as exc:
                failed.append(f"{path.name}: {exc}")
                with contextlib.suppress(OSError):
                    claimed.rename(path)
                continue
            claimed.unlink()
            imported.append(result.id)
        if imported:
            log.warning("imported %d run(s) kept aside earlier: %s", len(imported), imported)
        for problem in failed:
            log.warning("a run kept aside could not be imported: %s", problem)
        return SpoolImport(tuple(imported), tuple(failed))

    def _read(self, path: Path) -> RunResult:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise StoreError(f"it is {size} bytes, more than a run can be")
            return codec.decode_msgpack(path.read_bytes(), RunResult)
        except (OSError, codec.CodecError) as exc:
            raise StoreError(f"it is not a readable run ({exc})") from exc

    def _set_aside(self, claimed: Path, name: str) -> None:
        bad = self.folder / "unreadable"
        try:
            bad.mkdir(exist_ok=True)
            claimed.rename(bad / name)
        except OSError as exc:
            log.warning("could not move %s to %s: %s", claimed, bad, exc)


__all__ = ["Spool", "SpoolImport"]
