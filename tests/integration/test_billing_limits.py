"""Quotas (402), the rate limiter (429) and API keys against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from billing import keys
from billing.apikeys import ApiKeys, hash_key
from billing.errors import BillingError, QuotaExceeded
from billing.plans import Plans
from billing.quotas import Quotas
from billing.ratelimit import RateLimiter
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

PLANS = Plans.load()
NOW = datetime(2024, 8, 15, tzinfo=UTC)


async def spend(redis: aioredis.Redis, var_dir: Path, usd_cents: int) -> None:
    plan = PLANS.get("basic").model_copy(update={"price_per_execution": Decimal("0.01")})
    store = UsageStore(redis, Spool(var_dir))
    for i in range(usd_cents):
        rec = UsageRecord.priced(
            plan, client_id="acme", execution_id=f"q{i}", at=NOW, fuel=0, cpu_ms=0,
            wall_ms=0, peak_memory_bytes=0,
        )  # fmt: skip
        await store.record(rec, "h", b"")


async def test_budget_from_plan_and_override(redis_client: aioredis.Redis, var_dir: Path) -> None:
    quotas = Quotas(redis_client, PLANS)
    tight = PLANS.get("basic").model_copy(update={"monthly_budget": Decimal("0.05")})
    await quotas.check("acme", tight, now=NOW)
    await spend(redis_client, var_dir, 4)
    await quotas.check("acme", tight, now=NOW)
    assert await quotas.remaining("acme", tight, now=NOW) == Decimal("0.01")
    await spend(redis_client, var_dir, 5)  # ids q0..q4: one new execution
    with pytest.raises(QuotaExceeded) as info:
        await quotas.check("acme", tight, now=NOW)
    assert info.value.remaining == "0"
    await quotas.check("acme", tight, now=datetime(2024, 9, 1, tzinfo=UTC))  # a new month
    await quotas.set_budget("acme", Decimal("1"))
    await quotas.check("acme", tight, now=NOW)
    await quotas.set_budget("acme", Decimal("0.03"))
    with pytest.raises(QuotaExceeded):
        await quotas.check("acme", "basic", now=NOW)
    await quotas.set_budget("acme", None)  # unlimited
    await quotas.check("acme", tight, now=NOW)
    assert await quotas.remaining("acme", tight, now=NOW) is None
    await quotas.clear_budget("acme")
    with pytest.raises(QuotaExceeded):
        await quotas.check("acme", tight, now=NOW)
    await quotas.check("other", tight, now=NOW)


async def test_token_bucket(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    assert [await limiter.acquire("acme", 1.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.acquire("acme", 1.0, 3)
    assert 0.5 < wait <= 1.0
    assert await limiter.acquire("other", 1.0, 3) == 0.0  # buckets are per client
    assert 0 < await redis_client.pttl(keys.rate("acme")) <= 4000
    assert await limiter.acquire("slow", 0.5, 1) == 0.0
    assert 1.5 < await limiter.acquire("slow", 0.5, 1) <= 2.0  # refused calls take nothing


async def test_api_keys(redis_client: aioredis.Redis) -> None:
    store = ApiKeys(redis_client)
    plaintext = await store.create("acme", "premium")
    assert plaintext.startswith("cx_")
    assert len(plaintext) >= 40
    assert await redis_client.exists(keys.api_key(hash_key(plaintext)))
    assert plaintext.encode() not in b"".join([bytes(k) for k in await redis_client.keys("*")])
    found = await store.resolve(plaintext)
    assert found is not None
    assert (found.client_id, found.plan, found.revoked) == ("acme", "premium", None)
    assert await store.resolve(plaintext + "x") is None
    other = await store.create("beta", "basic")
    listed = await store.list()
    assert {k.client_id for k in listed} == {"acme", "beta"}
    with pytest.raises(BillingError):
        await store.revoke("abc")  # too short to be safe
    assert await store.revoke(found.prefix)
    revoked = await store.resolve(plaintext)
    assert revoked is not None
    assert revoked.revoked is not None
    still = await store.resolve(other)
    assert still is not None
    assert still.revoked is None
    assert not await store.revoke("0" * 12 if not found.prefix.startswith("0") else "1" * 12)
