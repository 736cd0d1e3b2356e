"""The job store on a real Redis: bounds, takeover of idle entries, finishing once."""

from __future__ import annotations

from typing import cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from billing import keys
from service.errors import Conflict, RateLimited, Unavailable
from service.jobs.job import NewJob
from service.jobs.store import JobStore


def job(client: str, execution_id: str, body_hash: str = "h", batch: str | None = None) -> NewJob:
    return NewJob(client, execution_id, {"code": "1"}, body_hash, "basic", False, None, batch)


async def test_bounds_per_client_and_overall(redis_client: aioredis.Redis) -> None:
    store = JobStore(redis_client, ttl_s=600, max_queued=3, max_queued_per_client=2)
    await store.ensure_group()
    assert await store.submit(job("a", "1"))
    assert await store.submit(job("a", "2"))
    with pytest.raises(RateLimited) as limited:
        await store.submit(job("a", "3"))
    assert limited.value.headers["Retry-After"]
    assert await store.submit(job("b", "1"))
    with pytest.raises(Unavailable) as full:
        await store.submit(job("c", "1"))
    assert full.value.status == 503
    assert full.value.headers["Retry-After"]
    assert not await store.submit(job("a", "1"))  # the same submission again: nothing queued
    with pytest.raises(Conflict):
        await store.submit(job("a", "1", body_hash="other"))
    assert await store.depth() == 3


async def test_idle_entries_are_taken_over_and_finished_once(
    redis_client: aioredis.Redis,
) -> None:
    store = JobStore(redis_client, ttl_s=600, max_queued=10, max_queued_per_client=10)
    await store.ensure_group()
    await store.submit(job("a", "x"))
    entry = await store.read("runner-1", block_ms=100)
    assert entry is not None
    entry_id, client, execution_id = entry
    assert (client, execution_id) == ("a", "x")
    assert await store.read("runner-2", block_ms=10) is None  # held by runner-1
    assert await store.reclaim("runner-2", idle_ms=60_000) is None  # not idle long enough
    taken = await store.reclaim("runner-2", idle_ms=0)
    assert taken == entry
    stored = await store.get("a", "x")
    assert stored is not None
    await store.start(stored, "runner-2")
    assert await store.finish(stored, "succeeded", b'{"success":true}') == 0
    assert await store.finish(stored, "failed", b"{}") == -1  # a second finish changes nothing
    await store.ack(entry_id)
    done = await store.get("a", "x")
    assert done is not None
    assert (done.status, done.response, done.attempts) == ("succeeded", b'{"success":true}', 1)
    assert await redis_client.zcard(keys.jobs_of("a")) == 0
    assert await store.depth() == 0


async def test_a_batch_counts_each_item_once(redis_client: aioredis.Redis) -> None:
    store = JobStore(redis_client, ttl_s=600, max_queued=10, max_queued_per_client=10)
    await store.ensure_group()
    assert await store.create_batch("a", "b1", ["i1", "i2"], "https://hooks.example/x")
    assert not await store.create_batch("a", "b1", ["i1", "i2"], None)
    for item in ("i1", "i2"):
        await store.submit(job("a", item, batch="b1"))
    first = await store.get("a", "i1")
    second = await store.get("a", "i2")
    assert first is not None
    assert second is not None
    assert await store.finish(first, "succeeded", b"{}") == 1
    assert await store.finish(first, "succeeded", b"{}") == -1
    assert await store.finish(second, "failed", b"{}") == 0
    assert await store.batch("a", "b1") == (["i1", "i2"], 0, "https://hooks.example/x")


async def test_a_submission_that_fails_part_way_can_be_submitted_again(
    redis_client: aioredis.Redis,
) -> None:
    """A submitter that fails between its two writes (hash and stream: different slots on a
    cluster) must not leave a job that is ``queued`` but in no stream entry."""
    store = JobStore(redis_client, ttl_s=600, max_queued=10, max_queued_per_client=10)
    await store.ensure_group()
    last = "18446744073709551615-18446744073709551615"  # the last ID: the next XADD fails
    await redis_client.execute_command("XSETID", keys.JOBS, last)  # type: ignore[no-untyped-call]
    with pytest.raises(ResponseError):
        await store.submit(job("a", "x"))
    await redis_client.delete(keys.JOBS)
    await store.ensure_group()
    assert await store.submit(job("a", "x"))  # the client retries: queued now
    entry = await store.read("runner-1", block_ms=100)
    assert entry is not None
    assert entry[1:] == ("a", "x")
    found = await store.job_of_entry(*entry)
    assert found is not None
    assert found.status == "queued"


async def test_entries_without_their_job(redis_client: aioredis.Redis) -> None:
    """An entry whose job is not written is kept while it may still be, dropped when old;
    an entry other than the one the job names (a repeated submission) is dropped."""
    store = JobStore(redis_client, ttl_s=600, max_queued=10, max_queued_per_client=10)
    await redis_client.xadd(keys.JOBS, {"client": "a", "id": "old"}, id="1000-0")
    await store.ensure_group()
    await redis_client.xadd(keys.JOBS, {"client": "a", "id": "young"})
    assert await store.submit(job("a", "real"))
    await redis_client.xadd(keys.JOBS, {"client": "a", "id": "real"})  # a second entry
    entries = []
    while (entry := await store.read("runner-1", block_ms=10)) is not None:
        entries.append(entry)
    assert [e[2] for e in entries] == ["old", "young", "real", "real"]
    old, young, real, extra = entries
    assert await store.job_of_entry(*old) is None  # orphaned long ago: dropped
    assert await store.job_of_entry(*young) is None  # may still be written: kept
    assert await store.job_of_entry(*extra) is None  # not the job's entry: dropped
    found = await store.job_of_entry(*real)
    assert found is not None
    assert found.entry_id == real[0]
    pending = await redis_client.xpending_range(keys.JOBS, "runners", "-", "+", 10)
    held = sorted(cast("bytes", p["message_id"]).decode() for p in pending)
    assert held == sorted([young[0], real[0]])
    assert await store.depth() == 2
