"""Nothing lost: Redis stops mid-load, records go to the spool, replay bills each exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from billing.embedded import EmbeddedRedis
from billing.plans import Plans
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

PLAN = Plans.load().get("basic")
AT = datetime(2024, 7, 1, 12, tzinfo=UTC)


def make(execution_id: str) -> UsageRecord:
    return UsageRecord.priced(
        PLAN,
        client_id="acme",
        execution_id=execution_id,
        at=AT,
        fuel=3_000_000,
        cpu_ms=0.2,
        wall_ms=0.3,
        peak_memory_bytes=1 << 20,
    )


def fast_failing_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=0.5, socket_timeout=2, retry=Retry(NoBackoff(), 0)
    )


@pytest.mark.parametrize(
    ("how", "extra"),
    [("stop", ()), ("kill", ("--appendfsync", "always"))],
)
async def test_outage_mid_load_loses_nothing(
    tmp_path: Path, how: str, extra: tuple[str, ...]
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=True, extra_args=extra).start()
    client = fast_failing_client(server.url)
    store = UsageStore(client, Spool(tmp_path / "spool"))
    answered: set[str] = set()
    spooled = 0
    # 4 workers x 75 calls; every 5th call repeats an earlier ID (a client retry)
    plan = [[f"w{w}-{i - i % 5 if i % 5 == 4 else i}" for i in range(75)] for w in range(4)]

    async def worker(ids: list[str]) -> None:
        nonlocal spooled
        for execution_id in ids:
            outcome = await store.record(make(execution_id), "h", b"{}")
            answered.add(execution_id)
            spooled += outcome.spooled
            await asyncio.sleep(0.002)

    async def chaos() -> None:
        while len(answered) < 60:
            await asyncio.sleep(0.005)
        if how == "stop":
            await asyncio.to_thread(server.stop)
        else:
            server.kill()
        while len(answered) < 150:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(server.start)

    try:
        await asyncio.gather(chaos(), *(worker(ids) for ids in plan))
        # Records use their own held connections; a pooled one left idle through the restart
        # is stale, and this client does not retry: start the reads below on fresh ones.
        await client.connection_pool.disconnect()
        assert spooled > 0, "the outage did not hit any record"
        assert store.spool_depth() == spooled
        replayed = await store.replay_spool()
        assert replayed == spooled
        assert store.spool_depth() == 0
        totals = await store.totals("acme", "2024-07-01")
        assert totals.executions == len(answered) == 4 * 60
        assert (await store.totals("acme", "2024-07")).executions == len(answered)
        assert totals.cost_pusd == len(answered) * make("x").increments().cost_pusd
        # replaying again (e.g. at the next start-up) changes nothing
        assert await store.replay_spool() == 0
        assert (await store.totals("acme", "2024-07")).executions == len(answered)
    finally:
        await client.aclose()
        server.stop()


async def test_replay_while_redis_is_still_down_keeps_the_spool(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    client = fast_failing_client(server.url)
    store = UsageStore(client, Spool(tmp_path / "spool"))
    try:
        await store.record(make("before"), "h", b"{}")
        server.stop()
        outcome = await store.record(make("during"), "h", b"{}")
        assert outcome.spooled
        assert await store.lookup("acme", "before") is None  # degrades, does not raise
        assert await store.replay_spool() == 0
        assert store.spool_depth() == 1
        server.start()
        assert await store.replay_spool() == 1
        assert (await store.totals("acme", "2024-07")).executions == 2
        stored = await store.lookup("acme", "during")
        assert stored is not None
        assert stored.response == b"{}"
    finally:
        await client.aclose()
        server.stop()
