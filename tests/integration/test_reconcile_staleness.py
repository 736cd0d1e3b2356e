"""The time of the last reconciliation, exported for the CodexecReconcileStale alert."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from service.background import _reconcile_gauge, reconcile_once
from service.config import Settings
from service.metrics import Metrics

GAUGE = "codexec_reconcile_last_run_timestamp_seconds"


def services(redis: aioredis.Redis, var_dir: Path) -> Any:
    return SimpleNamespace(redis=redis, settings=Settings(var_dir=var_dir), metrics=Metrics())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_the_process_that_reconciles_exports_its_time(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    runner = services(redis_client, var_dir)
    assert runner.metrics.registry.get_sample_value(GAUGE) == 0  # none ran yet
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    await reconcile_once(runner, slot)
    assert runner.metrics.registry.get_sample_value(GAUGE) == slot.timestamp()


async def test_every_replica_exports_the_saved_time(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    replica = services(redis_client, var_dir)
    gauge = replica.metrics.registry.get_sample_value
    loop = asyncio.create_task(_reconcile_gauge(replica))
    try:
        await asyncio.sleep(0.2)
        assert gauge(GAUGE) == 0  # nothing saved: stays 0, the alert ignores it
        await stop(loop)
        slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=14)
        await reconcile_once(services(redis_client, var_dir), slot)  # another process
        loop = asyncio.create_task(_reconcile_gauge(replica))
        deadline = time.monotonic() + 10  # hang guard
        while gauge(GAUGE) == 0:
            assert time.monotonic() < deadline, "the saved time was never exported"
            await asyncio.sleep(0.02)
        assert gauge(GAUGE) == slot.timestamp()
    finally:
        await stop(loop)
