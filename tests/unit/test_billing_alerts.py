"""Budget alerts on a real Redis: once per threshold, hysteresis, the cheap local check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from billing import keys
from billing.alerts import EVENT, Alerts, crossed, parse_thresholds
from billing.plans import Plans
from billing.webhooks import Delivery, Outbox, Webhooks

NOW = datetime(2024, 5, 10, 12, tzinfo=UTC)
MONTH = "2024-05"
PLAN = Plans.load().get("basic")  # monthly budget 10 USD, thresholds 50, 80, 100
USD = 10**12  # pico-USD


def test_parse_thresholds() -> None:
    assert parse_thresholds("90, 50,50") == (50, 90)
    for bad in ("", "0", "101", "fifty", "50,,x"):
        with pytest.raises(ValueError):
            parse_thresholds(bad)


@given(st.integers(0, 10**15), st.integers(1, 10**15))
def test_crossed_is_exact(spent: int, budget: int) -> None:
    got = crossed(spent, budget, (1, 50, 80, 100))
    assert got == sorted(got)
    assert all(spent * 100 >= budget * t for t in got)
    assert all(spent * 100 < budget * t for t in (1, 50, 80, 100) if t not in got)


async def spend(redis: aioredis.Redis, client: str, pusd: int) -> None:
    """What the record script (or a credit, when negative) does to the month's spend."""
    await redis.hincrby(keys.usage(client, MONTH), "cost_pusd", pusd)


async def alerts_sent(redis: aioredis.Redis) -> list[dict[str, object]]:
    entries: Any = await redis.xrange(keys.OUTBOX)
    out = []
    for _id, fields in entries:
        d = Delivery.from_json(fields[b"d"])
        assert d.event == EVENT
        out.append(orjson.loads(d.body)["data"])
    return out


@pytest.fixture
async def configured(redis_client: aioredis.Redis) -> aioredis.Redis:
    await Webhooks(redis_client).set_endpoint("acme", "http://127.0.0.1:9/hook")
    return redis_client


def make(redis: aioredis.Redis, **kw: float) -> Alerts:
    return Alerts(redis, Outbox(redis), **kw)  # type: ignore[arg-type]


async def test_each_threshold_fires_once_across_concurrent_processes(
    configured: aioredis.Redis,
) -> None:
    procs = [make(configured, refresh_s=0), make(configured, refresh_s=0)]
    step = USD // 10  # 0.1 USD: 1 % of the budget

    async def charge(i: int) -> list[int]:
        await spend(configured, "acme", step)
        return await procs[i % 2].after_charge("acme", PLAN, step, now=NOW)

    fired = await asyncio.gather(*(charge(i) for i in range(90)))
    assert sorted(t for f in fired for t in f) == [50, 80]
    sent = await alerts_sent(configured)
    assert sorted(s["threshold"] for s in sent) == [50, 80]  # type: ignore[type-var]
    first = next(s for s in sent if s["threshold"] == 50)
    assert first["budget"] == "10"
    assert first["month"] == MONTH
    assert first["clientId"] == "acme"


async def test_hysteresis_rearms_only_below_the_margin(configured: aioredis.Redis) -> None:
    alerts = make(configured, refresh_s=0, rearm_margin=5)
    await spend(configured, "acme", 5 * USD)
    assert await alerts.after_charge("acme", PLAN, 5 * USD, now=NOW) == [50]
    await spend(configured, "acme", -USD // 4)  # credit: 47.5 %, within the margin
    assert await alerts.after_charge("acme", PLAN, -USD // 4, now=NOW) == []  # seen: not re-armed
    assert await configured.hexists(keys.alerts("acme", MONTH), "50")
    await spend(configured, "acme", USD // 4)  # back to 50 %
    assert await alerts.after_charge("acme", PLAN, USD // 4, now=NOW) == []
    await spend(configured, "acme", -USD * 6 // 10)  # credit: 44 %, below 45 %: re-armed
    assert await alerts.after_charge("acme", PLAN, 0, now=NOW) == []
    await spend(configured, "acme", USD * 6 // 10)  # 50 % again
    assert await alerts.after_charge("acme", PLAN, USD * 6 // 10, now=NOW) == [50]
    assert [s["threshold"] for s in await alerts_sent(configured)] == [50, 50]


async def test_client_thresholds_and_budget_override(configured: aioredis.Redis) -> None:
    await Webhooks(configured).set_thresholds("acme", (25, 90))
    await configured.hset(keys.budget("acme"), "monthly", str(2 * USD))  # 2 USD override
    alerts = make(configured, refresh_s=0)
    await spend(configured, "acme", USD)  # 50 % of 2 USD
    assert await alerts.after_charge("acme", PLAN, USD, now=NOW) == [25]
    await configured.hset(keys.budget("acme"), "monthly", "none")  # unlimited: no alerts
    await spend(configured, "acme", USD)
    assert await alerts.after_charge("acme", PLAN, USD, now=NOW) == []


async def test_no_url_no_alerts(redis_client: aioredis.Redis) -> None:
    alerts = make(redis_client, refresh_s=0)
    await spend(redis_client, "nobody", 9 * USD)
    assert await alerts.after_charge("nobody", PLAN, 9 * USD, now=NOW) == []
    assert await redis_client.xlen(keys.OUTBOX) == 0
    # nothing was marked fired: once a URL is set, the crossed thresholds are sent
    await Webhooks(redis_client).set_endpoint("nobody", "http://127.0.0.1:9/hook")
    assert await alerts.after_charge("nobody", PLAN, 0, now=NOW) == [50, 80]


async def test_below_thresholds_the_check_is_local(configured: aioredis.Redis) -> None:
    alerts = make(configured, refresh_s=3600)
    await spend(configured, "acme", USD)
    assert await alerts.after_charge("acme", PLAN, USD, now=NOW) == []  # first: one script
    await configured.config_resetstat()
    for _ in range(30):  # 10 % -> 40 %: no threshold, no round trip
        await spend(configured, "acme", USD // 10)
        assert await alerts.after_charge("acme", PLAN, USD // 10, now=NOW) == []
    stats = await configured.info("commandstats")
    scripts = sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_eval"))
    assert scripts == 0
    await spend(configured, "acme", USD)  # 50 %: locally crossed -> the script fires it
    assert await alerts.after_charge("acme", PLAN, USD, now=NOW) == [50]


async def test_sweep_finds_what_other_processes_crossed(configured: aioredis.Redis) -> None:
    alerts = make(configured, refresh_s=0.2)
    await spend(configured, "acme", USD)
    assert await alerts.after_charge("acme", PLAN, USD, now=NOW) == []  # checked: 10 %
    await spend(configured, "acme", USD)
    assert await alerts.after_charge("acme", PLAN, USD, now=NOW) == []  # local: 20 %
    await spend(configured, "acme", 3 * USD)  # another process's spend: 50 % now
    assert await alerts.sweep(now=NOW) == []  # the reading is still fresh
    await asyncio.sleep(0.25)
    assert await alerts.sweep(now=NOW) == [50]
    await asyncio.sleep(0.25)
    assert await alerts.sweep(now=NOW) == []  # nothing charged here since


async def test_every_month_starts_armed(configured: aioredis.Redis) -> None:
    alerts = make(configured, refresh_s=3600)
    may_end = datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    june = datetime(2024, 6, 1, tzinfo=UTC)
    await spend(configured, "acme", 5 * USD)  # May
    assert await alerts.after_charge("acme", PLAN, 5 * USD, now=may_end) == [50]
    await configured.hincrby(keys.usage("acme", "2024-06"), "cost_pusd", 5 * USD)
    assert await alerts.after_charge("acme", PLAN, 5 * USD, now=june) == [50]
    months = sorted(s["month"] for s in await alerts_sent(configured))  # type: ignore[type-var]
    assert months == ["2024-05", "2024-06"]


async def test_an_alert_fired_by_a_process_that_died_before_queueing_it_is_sent(
    configured: aioredis.Redis,
) -> None:
    """The fired mark and the outbox are in different slots: a crash between them must not
    lose the alert (nor send it twice)."""
    dying = make(configured, refresh_s=0)
    await spend(configured, "acme", 6 * USD)
    await configured.set(keys.OUTBOX, "not a stream")  # the enqueue fails: the "crash"
    with pytest.raises(ResponseError):
        await dying.after_charge("acme", PLAN, 6 * USD, now=NOW)
    await configured.delete(keys.OUTBOX)
    assert await alerts_sent(configured) == []
    other = make(configured, refresh_s=0, resend_after_s=0)
    assert await other.after_charge("acme", PLAN, 0, now=NOW) == []  # fired earlier
    sent = await alerts_sent(configured)
    assert [s["threshold"] for s in sent] == [50]
    assert sent[0]["spent"] == "6"
    assert await other.after_charge("acme", PLAN, 0, now=NOW) == []
    assert await make(configured, refresh_s=0, resend_after_s=0).sweep(now=NOW) == []
    assert len(await alerts_sent(configured)) == 1  # sent once
    assert sorted(await configured.hkeys(keys.alerts("acme", MONTH))) == [b"50", b"seq"]
