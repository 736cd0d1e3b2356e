"""Background work of one process: spool replay, webhook delivery and the maintenance job.

The maintenance job runs in at most one process per scheduled time: each process that
wakes for a slot tries ``SET maint:<slot> NX``; only the winner runs the roll-up, then the
reconciliation of counters and ledgers (exported as ``codexec_reconcile_mismatches``, and
its time as ``codexec_reconcile_last_run_timestamp_seconds``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from croniter import croniter
from redis.exceptions import RedisError

from billing import keys
from billing.maintenance import rollup
from billing.reconcile import last_mismatches, reconcile, save_result
from billing.webhook_delivery import DeliveryWorker, http_client
from service.config import Environment
from service.jobs.runner import JobRunner

if TYPE_CHECKING:
    from service.deps import Services

__all__ = ["reconcile_once", "run_background", "run_maintenance_once"]

log = logging.getLogger("codexec.background")

RECONCILE_GAUGE_INTERVAL_S = 60.0
"""How often each process re-reads the last reconciliation for its gauge."""


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


async def reconcile_once(services: Services, slot: datetime) -> int:
    """Reconcile every client's counters with its ledger (after the roll-up of ``slot``);
    export and return the number of mismatched client periods."""
    checked = await reconcile(
        services.redis, retention_days=services.settings.retention_days, now=slot
    )
    await save_result(services.redis, checked, slot)
    services.metrics.reconcile_mismatches.set(checked.mismatched_periods)
    services.metrics.reconcile_last_run.set(slot.timestamp())
    services.metrics.reconcile_runs.inc()
    for d in checked.differences[:20]:
        log.warning(
            "reconcile mismatch",
            extra={"client": d.client_id, "period": d.period, "field": d.field,
                   "counters": d.counters, "ledger": d.ledger},
        )  # fmt: skip
    log.info(
        "reconcile done",
        extra={"clients": checked.clients, "periods": checked.periods,
               "mismatched_periods": checked.mismatched_periods},
    )  # fmt: skip
    return checked.mismatched_periods


async def _maintenance(services: Services, expression: str) -> None:
    schedule = croniter(expression, datetime.now(UTC))
    while True:
        slot: datetime = schedule.get_next(datetime)
        await anyio.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))
        try:
            if await run_maintenance_once(services, slot):
                await reconcile_once(services, slot)
        except (RedisError, OSError):
            services.metrics.redis_errors.labels("maintenance").inc()
            log.warning("maintenance skipped: redis unavailable")


async def _deliver_webhooks(services: Services) -> None:
    s, m = services.settings, services.metrics
    # every delivery (callbacks, budget alerts) may reach private addresses only where
    # CODEXEC_CALLBACK_ALLOW_PRIVATE says so or outside production
    allow_private = s.callback_allow_private or s.environment is not Environment.production
    async with http_client(s.webhook_timeout_s, allow_private=allow_private) as http:
        worker = DeliveryWorker(
            services.outbox,
            http,
            max_attempts=s.webhook_max_attempts,
            backoff_base_s=s.webhook_backoff_s,
            backoff_max_s=s.webhook_backoff_max_s,
            claim_idle_s=s.webhook_claim_idle_s,
            batch=s.webhook_concurrency,
            deadletter_retention_s=s.webhook_deadletter_retention_days * 86400,
            on_outcome=lambda result: m.webhook_deliveries.labels(result).inc(),
            on_attempt=m.webhook_attempts.inc,
        )
        gauges_at = 0.0
        while True:
            try:
                await worker.run_once()
                if anyio.current_time() >= gauges_at:
                    gauges_at = anyio.current_time() + 5
                    m.webhook_outbox_depth.set(await services.outbox.depth())
                    m.webhook_dead_letters.set(await services.outbox.dead_letter_count())
            except (RedisError, OSError):
                m.redis_errors.labels("webhooks").inc()
                await anyio.sleep(1)
            except Exception:  # never let one bad delivery stop the loop (or the service)
                log.exception("webhook delivery round failed")
                await anyio.sleep(1)


async def _sweep_alerts(services: Services) -> None:
    while True:
        await anyio.sleep(services.settings.alert_refresh_s)
        try:
            await services.alerts.sweep()
        except (RedisError, OSError):
            services.metrics.redis_errors.labels("alerts").inc()
        except Exception:  # keep sweeping (and the service running) after a bad reading
            log.exception("budget alert sweep failed")


async def _run_jobs(services: Services) -> None:
    """Async executions (service/jobs): runners of this process, restarted if Redis fails."""
    runner = JobRunner(services, services.jobs)
    while True:
        try:
            await runner.run()
        except (RedisError, OSError):
            services.metrics.redis_errors.labels("jobs").inc()
            await anyio.sleep(1)


async def _last_reconcile_s(services: Services) -> float | None:
    """Unix time of the last saved reconciliation (``reconcile:last``), None if none ran."""
    raw = await services.redis.hget(keys.RECONCILE_LAST, "at_ms")
    return None if raw is None else int(raw) / 1000


async def _reconcile_gauge(services: Services) -> None:
    """Export the last saved reconciliation (whichever process or CronJob ran it): its
    mismatches and its time (for the staleness alert)."""
    while True:
        try:
            found = await last_mismatches(services.redis)
            at_s = await _last_reconcile_s(services)
        except (RedisError, OSError, ValueError):
            services.metrics.redis_errors.labels("reconcile_gauge").inc()
        else:
            if found is not None:
                services.metrics.reconcile_mismatches.set(found)
            if at_s is not None:
                services.metrics.reconcile_last_run.set(at_s)
        await anyio.sleep(RECONCILE_GAUGE_INTERVAL_S)


async def run_background(services: Services) -> None:
    """Run every background loop of this process until cancelled."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_replay_spool, services)
        tg.start_soon(_reconcile_gauge, services)
        if services.settings.webhook_delivery:
            tg.start_soon(_deliver_webhooks, services)
        tg.start_soon(_sweep_alerts, services)
        if services.settings.job_concurrency:
            tg.start_soon(_run_jobs, services)
        if services.settings.maintenance_cron:
            tg.start_soon(_maintenance, services, services.settings.maintenance_cron)
