"""Recording against a real Redis: counters, idempotency, concurrency, ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from billing import keys
from billing.money import to_pico
from billing.plans import Plans
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

AT = datetime(2024, 5, 31, 23, 59, 59, 500_000, tzinfo=UTC)


def make(execution_id: str, *, client: str = "acme", at: datetime = AT, n: int = 1) -> UsageRecord:
    return UsageRecord.priced(
        Plans.load().get("standard"),
        client_id=client,
        execution_id=execution_id,
        at=at,
        fuel=1_000_003 * n,
        cpu_ms=0.4 * n,
        wall_ms=1.25 * n,
        peak_memory_bytes=262_144 * n,
        error=n % 3 == 0,
    )


async def test_record_adds_to_daily_and_monthly(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    recs = [make(f"e{n}", n=n) for n in range(1, 6)]
    for rec in recs:
        out = await store.record(rec, "h", b"{}")
        assert (out.duplicate, out.spooled, out.stored) == (False, False, None)
    for period in ("2024-05-31", "2024-05"):
        t = await store.totals("acme", period)
        assert t.executions == 5
        assert t.errors == 1
        assert t.fuel == sum(r.fuel for r in recs)
        assert t.mem_bytes == 262_144 * 15
        assert t.cost_pusd == sum(to_pico(r.charge.cost) for r in recs)
        assert t.cpu_ms == sum(r.charge.billed_cpu_ms for r in recs)
        assert t.cpu_us == sum(round(r.cpu_ms * 1000) for r in recs)
        assert t.updated_at == AT.replace(microsecond=500_000)
    assert (await store.totals("acme", "2024-06")).executions == 0
    assert (await store.totals("other", "2024-05")).executions == 0
    assert await redis_client.xlen(keys.ledger("acme")) == 5
    entry = (await redis_client.xrange(keys.ledger("acme"), count=1))[0][1]
    assert entry[b"id"] == b"e1"
    assert int(entry[b"cost_pusd"]) == to_pico(recs[0].charge.cost)


async def test_same_execution_id_is_billed_once(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    first = await store.record(make("dup"), "hash-1", b'{"result": 1}')
    again = await store.record(make("dup", n=7), "hash-2", b'{"result": 2}')
    assert not first.duplicate
    assert again.duplicate
    assert again.stored is not None
    assert again.stored.body_hash == "hash-1"
    assert again.stored.response == b'{"result": 1}'
    assert (await store.totals("acme", "2024-05")).executions == 1
    assert (await store.totals("acme", "2024-05")).fuel == make("dup").fuel
    looked = await store.lookup("acme", "dup")
    assert looked is not None
    assert looked.response == b'{"result": 1}'
    assert await store.lookup("acme", "never") is None
    assert await store.lookup("other", "dup") is None  # IDs are per client
    ttl = await redis_client.ttl(keys.execution("acme", "dup"))
    assert 86_000 < ttl <= 86_400


async def test_response_bytes_survive_newlines(redis_client: aioredis.Redis, var_dir: Path) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    body = b"\x00line1\nline2\n\xff"
    await store.record(make("bin"), "abc", body)
    looked = await store.lookup("acme", "bin")
    assert looked is not None
    assert (looked.body_hash, looked.response) == ("abc", body)


async def test_concurrent_records_with_duplicates_are_exact(
    redis_server: str, redis_client: aioredis.Redis, var_dir: Path
) -> None:
    # A blocking pool: more concurrent calls than connections wait instead of failing
    # (redis-py's default pool raises MaxConnectionsError past 100, which would spool).
    pool = aioredis.BlockingConnectionPool.from_url(redis_server, max_connections=20, timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    store = UsageStore(client, Spool(var_dir))
    # 200 calls: 150 distinct IDs, 50 of which are sent twice, all at once
    ids = [f"c{i}" for i in range(150)] + [f"c{i}" for i in range(50)]
    try:
        outcomes = await asyncio.gather(*(store.record(make(i), "h", i.encode()) for i in ids))
    finally:
        await client.aclose(close_connection_pool=True)
    store = UsageStore(redis_client, Spool(var_dir))
    assert not any(o.spooled for o in outcomes)
    assert sum(o.duplicate for o in outcomes) == 50
    for period in ("2024-05-31", "2024-05"):
        t = await store.totals("acme", period)
        assert t.executions == 150
        assert t.fuel == 150 * make("x").fuel
        assert t.cost_pusd == 150 * to_pico(make("x").charge.cost)
    assert await redis_client.xlen(keys.ledger("acme")) == 150


async def test_ledger_is_capped(redis_client: aioredis.Redis, var_dir: Path) -> None:
    store = UsageStore(redis_client, Spool(var_dir), ledger_maxlen=10)
    for i in range(500):
        await store.record(make(f"l{i}"), "h", b"")
    assert await redis_client.xlen(keys.ledger("acme")) < 500
