"""The spool on its own: durable appends, replay, partial failure, an unwritable disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from billing.errors import StoreUnavailable
from billing.spool import Spool


async def test_append_replay_and_depth(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.depth() == 0
    for i in range(5):
        spool.append({"i": i})
    assert spool.depth() == 5
    seen: list[dict[str, Any]] = []

    async def handle(entry: dict[str, Any]) -> None:
        seen.append(entry)

    assert await spool.replay(handle) == 5
    assert seen == [{"i": i} for i in range(5)]
    assert spool.depth() == 0
    assert await spool.replay(handle) == 0


async def test_failed_replay_keeps_everything_for_next_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append({"i": i})
    calls = 0

    async def flaky(entry: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if entry["i"] == 1:
            raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await spool.replay(flaky)
    spool.append({"i": 3})  # appends go on while a replay file waits
    assert spool.depth() == 4
    seen: list[int] = []

    async def ok(entry: dict[str, Any]) -> None:
        seen.append(entry["i"])

    assert await spool.replay(ok) == 4
    assert sorted(seen) == [0, 1, 2, 3]  # 0 is sent again: the execution ID makes that safe
    assert spool.depth() == 0


async def test_other_processes_files_are_replayed(tmp_path: Path) -> None:
    (tmp_path / "spool-999999.jsonl").write_bytes(b'{"i": 1}\n{"i": 2\n')  # 2nd line torn
    seen: list[int] = []

    async def ok(entry: dict[str, Any]) -> None:
        seen.append(entry["i"])

    assert Spool(tmp_path).depth(all_processes=True) == 2
    assert await Spool(tmp_path).replay(ok) == 1
    assert seen == [1]
    assert list(tmp_path.iterdir()) == []


def test_unwritable_spool_raises_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable, match="spool not writable"):
        Spool(blocker / "spool").append({"i": 1})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_raises_store_unavailable(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.path.symlink_to("/dev/full")
    with pytest.raises(StoreUnavailable):
        spool.append({"i": 1})
