"""Budget alerts through two ``codexec serve`` processes on one Redis: each threshold once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from billing import keys
from billing.alerts import crossed
from billing.apikeys import ApiKeys
from billing.money import to_pico
from billing.totals import spent_pusd
from billing.webhook_signing import verify_signature
from billing.webhooks import Webhooks
from reliability.launch import Service, launch
from tests.integration.receiver import receiver

CODE = "let s = 0; for (let i = 0; i < 1000; i++) s += i; return s;"


@pytest.fixture
def pair(
    redis_server: str, module_cache: Path, tmp_path: Path
) -> Iterator[tuple[Service, Service]]:
    """Two ``codexec serve`` processes on one Redis, each with its own alert readings."""
    settings = {
        "REDIS_URL": redis_server,
        "MODULE_CACHE_DIR": str(module_cache),
        "SANDBOX_THREADS": "2",
        "HARD_CAPS": "false",
        "ALERT_REFRESH_S": "0.3",
        "WEBHOOK_BACKOFF_S": "0.05",
        "WEBHOOK_BACKOFF_MAX_S": "0.2",
    }
    services: list[Service] = []
    try:
        for name in ("a", "b"):
            services.append(launch(settings, tmp_path / name, timeout=60))
        yield services[0], services[1]
    finally:
        for service in services:
            service.stop()


async def new_key(redis_url: str, client: str) -> str:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        return await ApiKeys(redis).create(client, "premium")
    finally:
        await redis.aclose()


async def configure(redis_url: str, client: str, url: str, budget_pusd: int) -> str:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        secret = await Webhooks(redis).set_endpoint(client, url)
        await redis.hset(keys.budget(client), "monthly", str(budget_pusd))
        assert secret is not None
        return secret
    finally:
        await redis.aclose()


async def month_spend(redis_url: str, client: str) -> int:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        month = keys.month_period(datetime.now(UTC))
        plain, packed = await redis.hmget(keys.usage(client, month), ["cost_pusd", "packed"])
        return spent_pusd(plain, packed if isinstance(packed, bytes) else None)
    finally:
        await redis.aclose()


def test_spend_crossing_50_and_80_sends_one_signed_webhook_each(
    pair: tuple[Service, Service], redis_server: str, client_id: str
) -> None:
    a, b = pair
    token = asyncio.run(new_key(redis_server, client_id))
    auth = {"Authorization": f"Bearer {token}"}
    # the price of one run, so that the budget is 10 runs
    first = httpx.post(a.url + "/execute", json={"code": CODE}, headers=auth, timeout=30)
    assert first.status_code == 200, first.text
    cost = to_pico(Decimal(first.json()["metrics"]["cost"]))
    assert cost > 0
    with receiver() as rx:
        secret = asyncio.run(configure(redis_server, client_id, rx.url, 10 * cost))

        def run(i: int) -> int:
            url = (a if i % 2 else b).url + "/execute"
            return httpx.post(url, json={"code": CODE}, headers=auth, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:  # 9 runs in all: about 90 % of the budget
            assert list(pool.map(run, range(8))) == [200] * 8
        spent = asyncio.run(month_spend(redis_server, client_id))
        # what the month's real spend crossed (runs may differ a little in peak memory)
        expected = crossed(spent, 10 * cost, (50, 80, 100))
        assert expected[:2] == [50, 80]
        deadline = time.monotonic() + 30  # hang guard: the sweep and delivery take < 1 s
        while len(rx.received) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # several sweep and delivery rounds: nothing more may arrive
    thresholds = []
    for got in rx.received:
        verify_signature(secret, got.headers["Webhook-Signature"], got.body)
        body = orjson.loads(got.body)
        assert body["type"] == "budget.threshold"
        assert body["clientId"] == client_id
        thresholds.append(body["data"]["threshold"])
        assert (
            Decimal(body["data"]["spent"])
            >= Decimal(body["data"]["budget"]) * Decimal(body["data"]["threshold"]) / 100
        )
    assert sorted(thresholds) == expected, (thresholds, spent, cost)
