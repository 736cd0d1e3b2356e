"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response
from redis.exceptions import RedisError

from service.deps import ServicesDep
from service.metrics import CONTENT_TYPE_LATEST, render

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ``ok`` while the event loop runs."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: sandbox pool and Redis",
    response_model=None,
    responses={
        200: {"description": '`{"status": "ready", "checks": {...}}`'},
        503: {"description": 'Redis unreachable: `{"status": "not ready", "checks": {...}}`'},
    },
)
async def readyz(services: ServicesDep) -> Response:
    """503 unless the sandbox engine is loaded and Redis answers a PING."""
    checks: dict[str, object] = {}
    ready = True
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError):
        checks["redis"] = "unreachable"
        ready = False
    stats = services.sandbox.stats
    checks["sandbox"] = {"instances": stats.instances, "in_use": stats.in_use}
    checks["spool_depth"] = services.usage.spool_depth()
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return Response(
        orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json"
    )


@router.get("/metrics", summary="Prometheus metrics", response_model=None)
async def metrics(services: ServicesDep) -> Response:
    """Text exposition of every metric (all workers' with several workers)."""
    services.metrics.spool_depth.set(services.usage.spool_depth())
    return Response(render(services.metrics), media_type=CONTENT_TYPE_LATEST)
