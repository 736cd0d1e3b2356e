"""Regression (issue 6, `make chaos` disk-full fault): a spool append cut short by ENOSPC.

The write of a line that does not fit used to leave its first bytes in the spool file; the
caller got StoreUnavailable (503, fine), but the next successful append was glued onto that
fragment, so replay skipped the merged line as malformed and an ANSWERED execution was never
billed. An append that fails must leave the file as it was, and an append after a torn tail
(e.g. a crash mid-write) must start on a fresh line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from billing import spool as spool_module
from billing.errors import StoreUnavailable
from billing.spool import Spool


def _replayed(spool: Spool) -> list[dict[str, Any]]:
    import asyncio

    seen: list[dict[str, Any]] = []

    async def handle(entry: dict[str, Any]) -> None:
        seen.append(entry)

    asyncio.run(spool.replay(handle))
    return seen


def test_enospc_mid_line_leaves_no_fragment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path)
    spool.append({"i": 0})
    real_write = os.write
    calls = 0

    def short_then_full(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data[:10]))  # the disk takes 10 bytes...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then is full

    monkeypatch.setattr(spool_module.os, "write", short_then_full)
    with pytest.raises(StoreUnavailable):
        spool.append({"i": 1, "pad": "x" * 100})
    monkeypatch.setattr(spool_module.os, "write", real_write)
    spool.append({"i": 2})  # space again: this answered execution must be replayed
    assert spool.depth() == 2
    assert _replayed(spool) == [{"i": 0}, {"i": 2}]


def test_append_after_a_torn_tail_starts_a_new_line(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append({"i": 0})
    with spool.path.open("ab") as f:  # what a crash in the middle of a write leaves
        f.write(b'{"i": 1, "tru')
    spool.append({"i": 2})
    assert _replayed(spool) == [{"i": 0}, {"i": 2}]
