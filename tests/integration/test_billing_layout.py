"""The packed usage layout next to the older plain one: records, rollup, import, budget reads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from billing import keys
from billing.gate import Gate
from billing.kv import import_records
from billing.maintenance import rollup
from billing.plans import Plans
from billing.quotas import Quotas
from billing.records import StoredRecord
from billing.spool import Spool
from billing.totals import FIELDS, UsageTotals
from billing.usage import UsageRecord, UsageStore

PLAN = Plans.load().get("standard")
BIG = 12_345_678_901_234_567_890  # > 2**63: beyond HINCRBY, exact in the packed layout


def make(execution_id: str, day: int, fuel: int = 1_000_000) -> UsageRecord:
    return UsageRecord.priced(
        PLAN, client_id="acme", execution_id=execution_id,
        at=datetime(2024, 3, day, 12, 0, 0, 123_000, tzinfo=UTC), fuel=fuel, cpu_ms=0.5,
        wall_ms=0.75, peak_memory_bytes=1 << 20,
    )  # fmt: skip


async def plain(redis: aioredis.Redis, name: str, totals: UsageTotals) -> None:
    """Write a record in the older layout (one decimal hash field per counter)."""
    await redis.hset(name, mapping={k: str(v) for k, v in totals.to_hash().items()})


async def test_records_are_one_packed_field(redis_client: aioredis.Redis, var_dir: Path) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    recs = [make("a", 1), make("b", 1, fuel=2**40), make("c", 2)]
    for rec in recs:
        await store.record(rec, "h", b"")
    raw = await redis_client.hgetall(keys.usage("acme", "2024-03-01"))
    assert list(raw) == [b"packed"]
    assert len(raw[b"packed"]) == 108
    month = await store.totals("acme", "2024-03")
    assert month == recs[0].increments() + recs[1].increments() + recs[2].increments()
    entry = (await redis_client.xrange(keys.ledger("acme")))[1][1]
    inc = recs[1].increments()
    assert entry == {
        b"id": b"b", b"plan": b"standard", b"at_ms": str(inc.updated_ms).encode(),
        **{f.encode(): str(getattr(inc, f)).encode() for f in FIELDS[:-1]},
    }  # fmt: skip


async def test_counters_add_up_exactly_past_2_to_the_53(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    fuel = 2**53 - 1  # the largest increment a record may carry
    for i in range(5):
        await store.record(make(f"x{i}", 3, fuel=fuel), "h", b"")
    assert (await store.totals("acme", "2024-03")).fuel == 5 * fuel


async def test_old_and_new_layouts_mix_and_rollup_rewrites_packed(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    old_day = UsageTotals(executions=2, fuel=7, cost_pusd=BIG, updated_ms=5)
    await plain(redis_client, keys.usage("acme", "2024-03-01"), old_day)
    await plain(redis_client, keys.usage("acme", "2024-03"), old_day)
    await redis_client.expire(keys.usage("acme", "2024-03"), 10_000)
    new = [make("n1", 1), make("n2", 2)]
    for rec in new:
        await store.record(rec, "h", b"")
    expected = old_day + new[0].increments() + new[1].increments()
    assert await store.totals("acme", "2024-03") == expected  # plain + packed in one hash
    await redis_client.hincrby(keys.usage("acme", "2024-03"), "executions", 9)  # damage
    summary = await rollup(redis_client, 30, datetime(2024, 3, 20, tzinfo=UTC))
    assert summary.months_changed == 1
    month = await redis_client.hgetall(keys.usage("acme", "2024-03"))
    assert list(month) == [b"packed"]
    assert await store.totals("acme", "2024-03") == expected
    assert 0 < await redis_client.ttl(keys.usage("acme", "2024-03")) <= 10_000
    again = await rollup(redis_client, 30, datetime(2024, 3, 20, tzinfo=UTC))
    assert again.months_changed == 0
    assert await redis_client.hgetall(keys.usage("acme", "2024-03")) == month


async def test_import_is_set_if_newer_against_either_layout(
    redis_client: aioredis.Redis,
) -> None:
    name = keys.usage("acme", "2024-03")
    await plain(redis_client, name, UsageTotals(executions=1, updated_ms=1_000))
    older = StoredRecord("acme", "2024-03", UsageTotals(executions=5, updated_ms=999))
    newer = StoredRecord(
        "acme", "2024-03", UsageTotals(executions=6, cost_pusd=BIG, updated_ms=1_001)
    )
    assert (await import_records(redis_client, [older])).written == 0
    assert (await import_records(redis_client, [newer])).written == 1
    assert list(await redis_client.hgetall(name)) == [b"packed"]
    assert (await import_records(redis_client, [newer, older])).written == 0  # packed updated_ms
    newest = StoredRecord("acme", "2024-03", UsageTotals(executions=7, updated_ms=2_000), 300)
    assert (await import_records(redis_client, [newest])).skipped == 0
    assert 0 < await redis_client.ttl(name) <= 300


async def test_budget_reads_sum_both_layouts(redis_client: aioredis.Redis, var_dir: Path) -> None:
    now = datetime(2024, 3, 5, tzinfo=UTC)
    store = UsageStore(redis_client, Spool(var_dir))
    rec = make("q", 5)
    await store.record(rec, "h", b"")
    month = keys.usage("acme", "2024-03")
    await redis_client.hset(month, "cost_pusd", 10**12)  # one USD in the older layout
    quotas = Quotas(redis_client, Plans.load())
    spent = Decimal(1) + rec.increments().cost * 1
    remaining = await quotas.remaining("acme", PLAN, now=now)
    assert PLAN.monthly_budget is not None
    assert remaining == max(Decimal(0), PLAN.monthly_budget - spent)
    gate = Gate(redis_client)
    await gate.admit("acme", PLAN, now=now)
    assert gate._leases["acme"].spent == spent
