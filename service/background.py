"""Background work of one process: spool replay and the maintenance job on its cron.

The maintenance job runs in at most one process per scheduled time: each process that
wakes for a slot tries ``SET maint:<slot> NX``; only the winner runs the roll-up.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from croniter import croniter
from redis.exceptions import RedisError

from billing.maintenance import rollup

if TYPE_CHECKING:
    from service.deps import Services

__all__ = ["run_background"]

log = logging.getLogger("codexec.background")


async def _replay_spool(services: Services) -> None:
    interval = services.settings.spool_replay_interval_s
    while True:
        if services.usage.spool_depth():
            try:
                replayed = await services.usage.replay_spool()
            except (RedisError, OSError):
                services.metrics.redis_errors.labels("spool_replay").inc()
            else:
                if replayed:
                    log.info("spool replayed", extra={"records": replayed})
        services.metrics.spool_depth.set(services.usage.spool_depth())
        await anyio.sleep(interval)


async def run_maintenance_once(services: Services, slot: datetime) -> bool:
    """Run the roll-up for ``slot`` unless another process already has; True if this one did."""
    lock = f"maint:{slot.strftime('%Y%m%dT%H%M')}"
    if not await services.redis.set(lock, "1", nx=True, ex=24 * 3600):
        return False
    summary = await rollup(services.redis, services.settings.retention_days, slot)
    log.info("maintenance done", extra={"slot": slot.isoformat(), "summary": str(summary)})
    return True


async def _maintenance(services: Services, expression: str) -> None:
    schedule = croniter(expression, datetime.now(UTC))
    while True:
        slot: datetime = schedule.get_next(datetime)
        await anyio.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))
        try:
            await run_maintenance_once(services, slot)
        except (RedisError, OSError):
            services.metrics.redis_errors.labels("maintenance").inc()
            log.warning("maintenance skipped: redis unavailable")


async def run_background(services: Services) -> None:
    """Run every background loop of this process until cancelled."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_replay_spool, services)
        if services.settings.maintenance_cron:
            tg.start_soon(_maintenance, services, services.settings.maintenance_cron)
