"""The application factory and its lifespan: nothing is built at import time."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from billing.alerts import Alerts
from billing.apikeys import ApiKeys
from billing.client import connect
from billing.gate import Gate
from billing.plans import Plans
from billing.receipt_keys import InvalidKey
from billing.spool import Spool
from billing.usage import UsageStore
from billing.webhooks import Outbox
from sandbox import Sandbox
from service.admission import Admission
from service.auth import Authenticator
from service.background import run_background
from service.config import Environment, Settings
from service.deps import Services
from service.errors import install_error_handlers
from service.execution import ExecutionService
from service.jobs.store import JobStore
from service.metrics import Metrics
from service.middleware import RequestLogMiddleware
from service.receipting import Receipting, engine_build, load_signing_key
from service.routes import batches, billing, execute, executions, health, receipts, usage

__all__ = ["StartupError", "add_routes", "create_app", "open_services"]

log = logging.getLogger("codexec.app")


class StartupError(RuntimeError):
    """The service refuses to start with this configuration."""


async def _build(settings: Settings, metrics: Metrics) -> Services:
    if settings.redis_url is None:
        raise StartupError(
            "CODEXEC_REDIS_URL is not set (`codexec serve` starts an embedded Redis for you)"
        )
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        plans = Plans.load(settings.plans_file)
        try:
            receipt_key = load_signing_key(settings)
        except InvalidKey as exc:
            raise StartupError(f"CODEXEC_RECEIPT_SIGNING_KEY: {exc}") from None
        keys = ApiKeys(redis)
        production = settings.environment is Environment.production
        if production and settings.api_key is None and not await keys.list():
            raise StartupError(
                "production needs API keys: create one with `codexec keys create` "
                "or set CODEXEC_API_KEY"
            )
        sandbox = await anyio.to_thread.run_sync(
            lambda: Sandbox(settings.cache_dir, tick_ms=settings.tick_ms)
        )
    except BaseException:
        await redis.aclose()
        raise
    spool = Spool(settings.spool_dir)
    usage_store = UsageStore(redis, spool, idempotency_ttl_s=settings.idempotency_ttl_s)
    outbox = Outbox(redis)
    alerts = Alerts(
        redis,
        outbox,
        rearm_margin=settings.alert_rearm_margin,
        refresh_s=settings.alert_refresh_s,
        on_fire=metrics.budget_alerts.inc,
        redis_timeout_s=settings.redis_budget_s,
    )
    executor = ExecutionService(
        settings,
        sandbox=sandbox,
        admission=Admission(
            settings.sandbox_threads,
            settings.admission_queue,
            metrics,
            client_share=settings.client_share,
            max_requests=settings.max_in_flight,
        ),
        usage=usage_store,
        gate=Gate(
            redis,
            hard_caps=settings.hard_caps,
            budget_lease_ttl_s=settings.budget_lease_ttl_s,
            redis_timeout_s=settings.redis_budget_s,
        ),
        plans=plans,
        metrics=metrics,
        receipting=Receipting(receipt_key, sandbox.info, engine_build(sandbox.info)),
        alerts=alerts,
    )
    auth = Authenticator(
        keys,
        legacy_key=settings.api_key,
        admin_key=settings.admin_key,
        legacy_plan=settings.legacy_plan,
        cache_ttl_s=settings.auth_cache_ttl_s,
    )
    return Services(
        settings,
        redis,
        sandbox,
        usage_store,
        auth,
        executor,
        metrics,
        outbox=outbox,
        alerts=alerts,
        jobs=JobStore(
            redis,
            ttl_s=settings.idempotency_ttl_s,
            max_queued=settings.jobs_max_queued,
            max_queued_per_client=settings.jobs_max_queued_per_client,
        ),
    )


@asynccontextmanager
async def open_services(
    settings: Settings, metrics: Metrics | None = None
) -> AsyncIterator[Services]:
    """The services of one process (Redis client, sandbox, stores, executor), built from
    ``settings`` and closed on exit, without the background tasks (spool replay, webhook
    delivery, job runners, maintenance) that the app's lifespan starts on top of them.

    Raises :class:`StartupError` for a configuration the service refuses to start with. On
    exit the spool is replayed once (if Redis answers), then the executor, sandbox and Redis
    client are closed. Tests use it to drive the real services without a server.
    """
    services = await _build(settings, metrics or Metrics())
    try:
        yield services
    finally:
        with contextlib.suppress(Exception):
            await services.usage.replay_spool()
        await anyio.to_thread.run_sync(services.executor.close)
        services.sandbox.close()
        await services.usage.aclose()
        await services.redis.aclose()


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Put the routers' routes, in order, at the head of the app's own route list (before the
    docs pages, so ``/execute`` is the first route tried).

    ``include_router`` keeps each router as one nested entry, which FastAPI matches twice (the
    entry, then its routes): a request for a route in the eighth router spent ~50 us just
    being matched. The routes are complete as built (these routers have no prefix and are
    included without options), so flat is the same API at a few us per request."""
    app.router.routes[:0] = [route for router in routers for route in router.routes]


def create_app(settings: Settings | None = None, metrics: Metrics | None = None) -> FastAPI:
    """Build the ASGI app; the lifespan owns the sandbox, Redis client and background tasks."""
    settings = settings or Settings()
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, metrics) as services:
            app.state.services = services
            # Everything built so far lives as long as the process: keep it out of the cyclic
            # collector's generations so collections stay short under load.
            gc.collect()
            gc.freeze()
            if settings.gc_threshold:  # fewer, still short, young collections (README)
                gc.set_threshold(settings.gc_threshold, *gc.get_threshold()[1:])
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_background, services)
                yield
                tg.cancel_scope.cancel()

    app = FastAPI(
        title="codexec",
        version="0.1.0",
        summary="Sandboxed JavaScript execution with metered billing",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    bench = [execute.bench_router()] if settings.bench_endpoints else []
    add_routes(  # the no-op right after /execute, matched at the same cost
        app,
        execute.router,
        *bench,
        usage.router,
        billing.router,
        health.router,
        receipts.router,
        executions.router,
        batches.router,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Execution-ID", "X-Request-ID"],
            expose_headers=[
                "X-Execution-ID",
                "X-Request-ID",
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
                "X-Receipt-URL",
            ],
            max_age=86400,
        )
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    return app
