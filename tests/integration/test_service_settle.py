"""Settling a run whose record already landed: the service's real settle step, real Redis.

A record's reply can be lost after Redis applied it (a dropped connection); the round trip is
then retried and the record script answers "already recorded" with what it stored. A
generated execution ID stores no response (only a client-chosen one can be replayed), so the
retried request must still answer with the response it rendered, and be billed once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from billing import keys
from billing.plans import Plans
from service.app import open_services
from service.deps import Services
from service.metrics import Metrics
from tests.integration.conftest import make_settings


@pytest.fixture
async def services(
    redis_server: str, redis_client: aioredis.Redis, module_cache: Path, var_dir: Path
) -> AsyncIterator[Services]:
    settings = make_settings(redis_server, var_dir, module_cache_dir=module_cache)
    async with open_services(settings, Metrics()) as built:
        yield built


async def test_a_record_found_already_landed_keeps_the_rendered_answer(
    services: Services, redis_client: aioredis.Redis
) -> None:
    settler = services.executor._settler
    plans = Plans.load()
    plan = plans.get(plans.default_name)
    result = services.sandbox.run("return 6 * 7")
    first = await settler.settle("acme", plan, "gen-1", "-", result, replayable=False)
    again = await settler.settle("acme", plan, "gen-1", "-", result, replayable=False)
    assert orjson.loads(first.body)["result"] == 42
    assert again.body == first.body
    day = keys.usage("acme", keys.day_period(datetime.now(UTC)))
    assert await redis_client.exists(day)
    ledger = await redis_client.xlen(keys.ledger("acme"))
    assert ledger == 1  # billed once
