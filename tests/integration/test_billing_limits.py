"""Quotas (402), the rate limiter (429) and API keys against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from billing import keys
from billing.apikeys import ApiKeys, hash_key
from billing.errors import BillingError, QuotaExceeded, RateLimitExceeded
from billing.gate import Gate
from billing.plans import Plan, Plans
from billing.quotas import Quotas
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


def plan_with(rate: float, burst: int, budget: str | None = None) -> Plan:
    return PLANS.get("basic").model_copy(
        update={
            "rate_per_second": rate,
            "burst": burst,
            "monthly_budget": None if budget is None else Decimal(budget),
        }
    )


async def test_gate_token_bucket(redis_client: aioredis.Redis) -> None:
    gate = Gate(redis_client, lease_fraction=0.0)  # one token per call: every call asks Redis
    slow = plan_with(1.0, 3)
    for _ in range(3):
        await gate.admit("acme", slow)
    with pytest.raises(RateLimitExceeded) as refused:
        await gate.admit("acme", slow)
    assert 0.5 < refused.value.retry_after <= 1.0
    await gate.admit("other", slow)  # buckets are per client
    assert 0 < await redis_client.pttl(keys.rate("acme")) <= 4000
    slower = plan_with(0.5, 1)
    await gate.admit("slow", slower)
    with pytest.raises(RateLimitExceeded) as refused:
        await gate.admit("slow", slower)
    assert 1.5 < refused.value.retry_after <= 2.0  # refused calls take nothing


async def test_gate_leases_tokens_but_never_exceeds_the_bucket(
    redis_client: aioredis.Redis,
) -> None:
    plan = plan_with(100.0, 20)  # lease of 5 tokens at fraction 0.05
    gates = [Gate(redis_client), Gate(redis_client)]  # two processes sharing the bucket
    await redis_client.config_resetstat()
    admitted = 0
    for i in range(60):
        try:
            await gates[i % 2].admit("acme", plan)
            admitted += 1
        except RateLimitExceeded:
            pass
    # 20 in the bucket, plus what refills at 100/s while the loop runs (well under 0.3 s).
    assert 20 <= admitted <= 20 + 30
    calls = (await redis_client.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
    assert calls < 60, "leases should save most round trips"


async def test_gate_refuses_when_budget_spent(redis_client: aioredis.Redis) -> None:
    gate = Gate(redis_client, quota_ttl_s=0.0)
    plan = plan_with(1000.0, 1000, budget="0.000001")
    await gate.admit("acme", plan)
    await redis_client.hset(
        keys.usage("acme", keys.month_period(datetime.now(UTC))), "cost_pusd", 10**6
    )
    with pytest.raises(QuotaExceeded):
        await gate.admit("acme", plan)
    await Quotas(redis_client, PLANS).set_budget("acme", None)  # unlimited override
    await gate.admit("acme", plan)


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
