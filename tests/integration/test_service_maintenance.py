"""The in-service maintenance job: runs the billing roll-up once per scheduled slot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from service.background import run_maintenance_once
from service.config import Settings


async def test_one_process_per_slot_runs_the_rollup(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    services: Any = SimpleNamespace(redis=redis_client, settings=Settings(var_dir=var_dir))
    slot = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    assert await run_maintenance_once(services, slot)
    assert not await run_maintenance_once(services, slot)  # another replica already did
    assert await run_maintenance_once(services, slot.replace(hour=12))
    assert await redis_client.exists("maint:20261126T0600", "maint:20261126T1200") == 2
