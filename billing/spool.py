"""The local spool: usage records kept on disk while Redis cannot be reached.

Each process appends to its own file, ``<dir>/spool-<pid>.jsonl`` (one JSON object a line),
under an exclusive ``flock`` and with an ``fsync`` before returning, so an answered
execution's record survives a crash.

Replay (by any process; files of processes that died are replayed too) first renames a spool
file to ``replay-<pid>-<n>.jsonl`` under the same lock, so appends go on into a fresh file and
never wait for Redis; then it hands each line to a callback and deletes the file only when all
went through. When Redis fails half-way the replay file stays whole and is replayed again
later. Re-sending a line that already reached Redis is harmless: the record script claims the
execution ID (24 h TTL), which makes replay exactly-once.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from billing.errors import StoreUnavailable

__all__ = ["Spool"]

_counter = itertools.count()
log = logging.getLogger("codexec.billing.spool")


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


class Spool:
    """An append-only, fsync'd JSONL spool in ``directory`` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        """This process's spool file."""
        return self.directory / f"spool-{os.getpid()}.jsonl"

    def append(self, entry: dict[str, Any]) -> None:
        """Append one entry durably; :class:`StoreUnavailable` if the disk refuses it."""
        line = orjson.dumps(entry) + b"\n"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        current = os.stat(self.path).st_ino
                    except FileNotFoundError:
                        current = -1
                    if current != os.fstat(fd).st_ino:
                        continue  # renamed away for replay since we opened it
                    start = os.fstat(fd).st_size
                    data = line
                    if start and os.pread(fd, 1, start - 1) != b"\n":
                        data = b"\n" + line  # a torn tail (crash mid-write): new line
                    try:
                        view = memoryview(data)
                        while view:
                            view = view[os.write(fd, view) :]
                        os.fsync(fd)
                    except OSError:
                        # Disk full half-way: take the fragment back, or the next append
                        # would be glued to it and skipped at replay (usage lost).
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, start)
                        raise
                    return
                finally:
                    os.close(fd)  # also releases the lock
        except OSError as exc:
            raise StoreUnavailable(
                f"usage store unreachable and spool not writable: {exc}"
            ) from exc

    def depth(self, all_processes: bool = False) -> int:
        """Entries waiting: this process's (default) or every process's in the directory."""
        if not self.directory.is_dir():
            return 0
        pid = "*" if all_processes else str(os.getpid())
        paths = itertools.chain(
            self.directory.glob(f"spool-{pid}.jsonl"),
            self.directory.glob(f"replay-{pid}-*.jsonl"),
        )
        return sum(_lines(p) for p in paths)

    def _claim_spool_files(self) -> None:
        """Rename every ``spool-*`` file to a ``replay-*`` file (under the appenders' lock)."""
        for path in sorted(self.directory.glob("spool-*.jsonl")):
            pid = path.stem.removeprefix("spool-")
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size == 0:
                    continue
                target = self.directory / f"replay-{pid}-{os.getpid()}.{next(_counter)}.jsonl"
                with contextlib.suppress(FileNotFoundError):
                    path.rename(target)
            finally:
                os.close(fd)

    async def replay(self, handle: Callable[[dict[str, Any]], Awaitable[None]]) -> int:
        """Feed every spooled entry to ``handle``; return how many were handled.

        A replay file is deleted only after ``handle`` accepted all its entries; the first
        exception from ``handle`` stops the replay and propagates, leaving that file for the
        next replay. Files another replay holds are skipped.
        """
        if not self.directory.is_dir():
            return 0
        self._claim_spool_files()
        done = 0
        for path in sorted(self.directory.glob("replay-*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if not path.exists():
                    continue  # finished by another replay between glob and lock
                data = path.read_bytes()
                for line in data.splitlines():
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        # Only a write cut short by a crash, before its fsync returned and so
                        # before any answer was given, can leave a partial line.
                        log.warning("skipping a malformed spool line in %s", path)
                        continue
                    await handle(entry)
                    done += 1
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return done
