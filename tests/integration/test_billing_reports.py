"""Reports, the KV mirror (export -> wipe -> import) and the rollup on a real Redis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from billing import keys
from billing.kv import export_pages, export_to_dir, import_file
from billing.kvformat import parse_file
from billing.maintenance import rollup
from billing.plans import Plans
from billing.reports import build_report, render_csv
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

PLAN = Plans.load().get("premium")


async def populate(redis: aioredis.Redis, var_dir: Path) -> list[UsageRecord]:
    """3 clients, executions on 2024-05-30..2024-06-02."""
    store = UsageStore(redis, Spool(var_dir))
    recs = []
    for i in range(24):
        at = datetime(2024, 5, 30, 10, tzinfo=UTC) + timedelta(hours=3 * i)
        rec = UsageRecord.priced(
            PLAN, client_id=f"client-{i % 3}", execution_id=f"r{i}", at=at, fuel=12_345_678 * i,
            cpu_ms=0.7 * i, wall_ms=1.1 * i, peak_memory_bytes=300_000 + i, error=i % 4 == 0,
        )  # fmt: skip
        await store.record(rec, "h", b"")
        recs.append(rec)
    return recs


async def snapshot(redis: aioredis.Redis) -> dict[object, object]:
    names = await redis.keys("usage:*")
    return {n: await redis.hgetall(n) for n in names}


async def test_reports_add_up(redis_client: aioredis.Redis, var_dir: Path) -> None:
    recs = await populate(redis_client, var_dir)
    everything = await build_report(redis_client, date(2024, 5, 1), date(2024, 6, 30))
    assert [r.period for r in everything.rows] == ["2024-05", "2024-06"] * 3
    assert everything.total.executions == 24
    assert everything.total.fuel == sum(r.fuel for r in recs)
    assert everything.total.errors == sum(r.error for r in recs)
    days = await build_report(redis_client, date(2024, 5, 30), date(2024, 6, 2))
    assert {r.period for r in days.rows} == {"2024-05-30", "2024-05-31", "2024-06-01", "2024-06-02"}
    assert days.total == everything.total  # day records and month records agree
    one = await build_report(redis_client, date(2024, 5, 31), date(2024, 5, 31), "client-1")
    expected = [r for r in recs if r.client_id == "client-1" and r.at.date() == date(2024, 5, 31)]
    assert one.total.executions == len(expected) > 0
    assert one.total.cost_pusd == sum(r.increments().cost_pusd for r in expected)
    csv_text = render_csv(days)
    assert csv_text.count("\n") == len(days.rows) + 2


async def test_kv_round_trip_and_idempotent_import(
    redis_client: aioredis.Redis, var_dir: Path, tmp_path: Path
) -> None:
    await populate(redis_client, var_dir)
    await redis_client.expire(keys.usage("client-0", "2024-05-30"), 86_400 * 30)
    before = await snapshot(redis_client)
    paths = await export_to_dir(redis_client, tmp_path / "kv", max_pairs=7)
    assert len(paths) == 3  # 18 records (3 clients x (4 days + 2 months)), 7 per file
    pairs = [p for path in paths for p in orjson.loads(path.read_bytes())]
    assert len(pairs) == 18
    assert all("{" not in p["key"] and isinstance(p["value"], str) for p in pairs)
    assert not any("expiration_ttl" in p for p in pairs)  # KV never expires billing data
    assert sum("ttlS" in p["metadata"] for p in pairs) == 1  # codexec's TTL travels along
    await redis_client.flushdb()
    for path in paths:
        summary = await import_file(redis_client, path)
        assert summary.skipped == 0
    assert await snapshot(redis_client) == before
    ttl = await redis_client.ttl(keys.usage("client-0", "2024-05-30"))
    assert 86_400 * 29 < ttl <= 86_400 * 30
    for path in paths:  # twice: nothing doubles
        assert (await import_file(redis_client, path)).written == 0
    assert await snapshot(redis_client) == before
    # an older copy never rolls back newer data; a newer one replaces it
    store = UsageStore(redis_client, Spool(var_dir))
    late = UsageRecord.priced(
        PLAN, client_id="client-0", execution_id="late", at=datetime(2024, 6, 2, 23, tzinfo=UTC),
        fuel=1, cpu_ms=1, wall_ms=1, peak_memory_bytes=1,
    )  # fmt: skip
    await store.record(late, "h", b"")
    newer = await snapshot(redis_client)
    for path in paths:
        await import_file(redis_client, path)
    assert await snapshot(redis_client) == newer
    export_again = await export_pages(redis_client, "client-0")
    assert len(parse_file(export_again[0])) == 6


async def test_rollup_recomputes_months_and_expires_days(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    await populate(redis_client, var_dir)
    month = keys.usage("client-2", "2024-06")
    good = await redis_client.hgetall(month)
    await redis_client.hincrby(month, "executions", 100)  # damage the monthly record
    now = datetime(2024, 6, 20, tzinfo=UTC)
    summary = await rollup(redis_client, 25, now)  # cutoff 2024-05-26: nothing expires
    assert summary.clients == 3
    assert summary.months_changed == 1
    assert summary.daily_expired == 0
    assert await redis_client.hgetall(month) == good
    assert (await rollup(redis_client, 25, now)).months_changed == 0
    may = await redis_client.hgetall(keys.usage("client-0", "2024-05"))
    # cutoff 2024-06-01: May's days go, May's month stays, June is recomputed
    summary = await rollup(redis_client, 19, now)
    assert summary.daily_expired == 6
    assert summary.ledger_trimmed == 0  # ledger IDs are recording times (today): all kept
    assert not await redis_client.exists(keys.usage("client-0", "2024-05-31"))
    assert await redis_client.hgetall(keys.usage("client-0", "2024-05")) == may
    assert await redis_client.exists(keys.usage("client-0", "2024-06-01"))
    assert not await redis_client.exists(keys.rollup_scratch("client-0"))
    report = await build_report(redis_client, date(2024, 5, 1), date(2024, 6, 30))
    assert report.total.executions == 24
    later = await rollup(redis_client, 1, datetime.now(UTC) + timedelta(days=3))
    assert later.ledger_trimmed == 24
    assert await redis_client.xlen(keys.ledger("client-0")) == 0
