"""Concurrent records share pipelines: each is still billed once, failures spool only their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from billing import keys
from billing.batching import ScriptBatcher
from billing.plans import Plans
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

AT = datetime(2024, 8, 15, 9, 30, tzinfo=UTC)


def make(execution_id: str, client: str = "acme") -> UsageRecord:
    return UsageRecord.priced(
        Plans.load().get("standard"), client_id=client, execution_id=execution_id, at=AT,
        fuel=2_000_000, cpu_ms=0.25, wall_ms=0.5, peak_memory_bytes=1 << 19,
    )  # fmt: skip


def count_pipelines(store: UsageStore) -> list[int]:
    """Sizes of the pipelines the store's batcher sends (instrumented)."""
    sizes: list[int] = []
    batcher = store._record
    original = batcher._pipeline

    async def counted(commands: Any) -> list[Any]:
        sizes.append(len(commands))
        return await original(commands)

    batcher._pipeline = counted  # type: ignore[method-assign]
    return sizes


async def test_concurrent_records_share_pipelines_and_bill_once(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    sizes = count_pipelines(store)
    ids = [f"b{i}" for i in range(120)] + [f"b{i}" for i in range(0, 120, 3)]  # 40 retries
    clients = ["acme", "other"]
    outcomes = await asyncio.gather(
        *(store.record(make(i, clients[n % 2]), "h", i.encode()) for n, i in enumerate(ids))
    )
    assert sizes, "concurrent records were not pipelined"
    assert max(sizes) > 1
    assert sum(sizes) < len(ids)  # the first call went alone, the rest were batched
    assert not any(o.spooled for o in outcomes)
    duplicates = [o for o in outcomes if o.duplicate]
    assert len(duplicates) == 40
    assert all(o.stored is not None and o.stored.response.startswith(b"b") for o in duplicates)
    billed = 0
    for client in clients:
        totals = await store.totals(client, "2024-08-15")
        assert totals == await store.totals(client, "2024-08")
        billed += totals.executions
        assert totals.cost_pusd == totals.executions * make("x").increments().cost_pusd
        assert await redis_client.xlen(keys.ledger(client)) == totals.executions
    assert billed == 120


async def test_a_failing_record_in_a_batch_spools_only_itself(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    sizes = count_pipelines(store)
    await redis_client.set(keys.usage("broken", "2024-08-15"), "not a hash")  # WRONGTYPE
    recs = [make(f"ok{i}") for i in range(10)] + [make("bad", "broken")]
    recs += [make(f"ok{i}") for i in range(10, 20)]
    outcomes = await asyncio.gather(*(store.record(r, "h", b"{}") for r in recs))
    assert max(sizes) > 1
    assert [o.spooled for o in outcomes] == [r.client_id == "broken" for r in recs]
    assert store.spool_depth() == 1
    # the failed script wrote nothing (reads and checks come before the first write)
    assert await store.lookup("broken", "bad") is None
    assert await redis_client.xlen(keys.ledger("broken")) == 0
    assert (await store.totals("broken", "2024-08")).executions == 0
    assert (await store.totals("acme", "2024-08")).executions == 20
    await redis_client.delete(keys.usage("broken", "2024-08-15"))
    assert await store.replay_spool() == 1
    assert (await store.totals("broken", "2024-08-15")).executions == 1
    assert (await store.totals("broken", "2024-08")).executions == 1


async def test_an_outage_mid_batch_spools_the_batch_and_replay_bills_once(
    redis_server: str, redis_client: aioredis.Redis, var_dir: Path
) -> None:
    client = aioredis.Redis.from_url(
        redis_server, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )  # fmt: skip
    store = UsageStore(client, Spool(var_dir))
    sizes = count_pipelines(store)
    try:
        await store.record(make("before"), "h", b"{}")
        # The server stops answering while the batch is in flight: every caller times out,
        # although the server may still run some of the scripts once it resumes.
        await redis_client.execute_command("CLIENT", "PAUSE", 600, "ALL")
        outcomes = await asyncio.gather(
            *(store.record(make(f"p{i}"), "h", b"{}") for i in range(30))
        )
        assert all(o.spooled for o in outcomes)
        assert max(sizes) > 1
        assert store.spool_depth() == 30
        await asyncio.sleep(0.7)
        assert await store.replay_spool() == 30
        assert store.spool_depth() == 0
        for period in ("2024-08-15", "2024-08"):
            assert (await store.totals("acme", period)).executions == 31
        assert await redis_client.xlen(keys.ledger("acme")) == 31
        assert await store.replay_spool() == 0
    finally:
        await client.aclose()


async def test_scripts_flushed_from_the_server_are_reloaded(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    await store.record(make("first"), "h", b"")
    await redis_client.script_flush()
    outcomes = await asyncio.gather(*(store.record(make(f"f{i}"), "h", b"") for i in range(25)))
    assert not any(o.spooled or o.duplicate for o in outcomes)
    await redis_client.script_flush()
    assert not (await store.record(make("last"), "h", b"")).spooled
    assert (await store.totals("acme", "2024-08")).executions == 27


async def test_cancelled_callers_do_not_break_the_batch(redis_client: aioredis.Redis) -> None:
    batcher = ScriptBatcher(redis_client, "return ARGV[1]", max_in_flight=1)
    first = asyncio.ensure_future(batcher((0, "a")))
    waiting = [asyncio.ensure_future(batcher((0, str(i)))) for i in range(5)]
    await asyncio.sleep(0)
    waiting[2].cancel()
    assert await first == b"a"
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert results[:2] + results[3:] == [b"0", b"1", b"3", b"4"]
    assert isinstance(results[2], asyncio.CancelledError)
    with pytest.raises(ValueError, match="at least 1"):
        ScriptBatcher(redis_client, "return 1", max_in_flight=0)
