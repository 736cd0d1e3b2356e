"""The job store on a real Redis: bounds, takeover of idle entries, finishing once."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from billing import keys
from service.errors import Conflict, RateLimited, Unavailable
from service.jobs.store import JobStore, NewJob


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
