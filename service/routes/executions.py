"""Async executions: ``POST /v1/executions`` queues one, ``GET /v1/executions/{id}`` reads it.

Also the request reading and queueing that ``routes.batches`` shares with it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from redis.exceptions import RedisError

from service.auth import Caller
from service.body import read_json_object
from service.config import Environment
from service.deps import CallerDep, Services, ServicesDep
from service.errors import BadRequest, NotFound, RateLimited, Unavailable
from service.jobs.callbacks import MAX_URL_LENGTH, check_callback_url
from service.jobs.store import Job, NewJob
from service.routes.openapi import error_responses
from service.schemas import EXECUTION_ID_PATTERN, EXECUTION_ID_RE, ExecuteRequest

__all__ = [
    "EXECUTION_SCHEMA",
    "QUEUE_NOTES",
    "QUEUE_STATUSES",
    "SUBMIT_SCHEMA",
    "body_schema",
    "callback_of",
    "checked_execution_id",
    "json_response",
    "queue_submission",
    "read_submission",
    "router",
    "store_down",
]

router = APIRouter(prefix="/v1/executions", tags=["executions"])

ExecutionIdHeader = Annotated[
    str | None,
    Header(alias="X-Execution-ID", description="1-128 chars of " + EXECUTION_ID_PATTERN),
]


def body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extra`` giving a route a required JSON body of ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


EXECUTION_SCHEMA = ExecuteRequest.model_json_schema()
SUBMIT_SCHEMA = body_schema(
    {
        **EXECUTION_SCHEMA,
        "properties": {
            **EXECUTION_SCHEMA.get("properties", {}),
            "callbackUrl": {"type": "string", "maxLength": MAX_URL_LENGTH},
            "executionId": {"type": "string", "pattern": EXECUTION_ID_PATTERN},
        },
    }
)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as a JSON response."""
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def store_down() -> Unavailable:
    """The 503 of a job store Redis cannot serve right now."""
    return Unavailable("the job store is unavailable", type="StoreUnavailable", retry_after=5)


def checked_execution_id(value: object, field: str) -> str:
    """A client's execution ID (400 naming ``field`` if malformed), or a new one if None."""
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not EXECUTION_ID_RE.fullmatch(value):
        raise BadRequest(f"{field} must be 1-128 characters of [A-Za-z0-9._:-]", field=field)
    return value


def callback_of(services: Services, body: dict[str, Any]) -> str | None:
    """The checked ``callbackUrl`` taken out of ``body`` (None without one)."""
    s = services.settings
    allow = s.callback_allow_private or s.environment is not Environment.production
    return check_callback_url(body.pop("callbackUrl", None), allow_private=allow)


async def read_submission(request: Request, services: Services) -> dict[str, Any]:
    """The request's JSON object, read within the service's body bounds."""
    s = services.settings
    return await read_json_object(
        request, max_bytes=s.max_body_bytes, max_depth=s.max_json_depth, timeout_s=s.body_timeout_s
    )


async def queue_submission(
    services: Services,
    caller: Caller,
    body: dict[str, Any],
    execution_id: str,
    callback_url: str | None,
    batch_id: str | None = None,
) -> str:
    """Check a request as ``/execute`` would and queue it as a job; the client billed."""
    client_id, body_hash = services.executor.check(caller, body)
    job = NewJob(
        client_id=client_id,
        execution_id=execution_id,
        request=body,
        body_hash=body_hash,
        plan=caller.plan,
        legacy=caller.legacy,
        callback_url=callback_url,
        batch_id=batch_id,
    )
    try:
        created = await services.jobs.submit(job)
    except (RateLimited, Unavailable):
        services.metrics.jobs.labels("rejected").inc()
        raise
    if created:
        services.metrics.jobs.labels("submitted").inc()
    return client_id


QUEUE_STATUSES = (400, 401, 403, 408, 409, 413, 415, 429, 503)
QUEUE_NOTES = {
    409: "executionId (or batchId) reused with a different body",
    429: "Too many unfinished async executions of this client (Retry-After)",
    503: "The queue is full, or the job store is down (Retry-After)",
}


@router.post(
    "",
    status_code=202,
    summary="Queue an execution; poll it or get a callback",
    openapi_extra=SUBMIT_SCHEMA,
    responses=error_responses(
        *QUEUE_STATUSES,
        notes=QUEUE_NOTES,
        success={202: "Queued: `{executionId, status}`, `Location`"},
    ),
)
async def submit(
    request: Request,
    services: ServicesDep,
    caller: CallerDep,
    x_execution_id: ExecutionIdHeader = None,
) -> Response:
    """Same body as ``POST /execute`` plus an optional ``callbackUrl`` (and ``executionId``)."""
    body = await read_submission(request, services)
    callback_url = callback_of(services, body)
    execution_id = checked_execution_id(
        x_execution_id or body.pop("executionId", None),
        "X-Execution-ID" if x_execution_id else "executionId",
    )
    try:
        client_id = await queue_submission(services, caller, body, execution_id, callback_url)
        job = await services.jobs.get(client_id, execution_id)
    except RedisError:
        raise store_down() from None
    location = f"/v1/executions/{execution_id}"
    return json_response(
        {"executionId": execution_id, "status": job.status if job else "queued"},
        202,
        {"Location": location, "X-Execution-ID": execution_id},
    )


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _view(job: Job) -> dict[str, Any]:
    return {
        "executionId": job.execution_id,
        "status": job.status,
        "submittedAt": _iso(job.submitted_ms),
        "startedAt": _iso(job.started_ms),
        "finishedAt": _iso(job.finished_ms),
        "attempts": job.attempts,
        "response": orjson.Fragment(job.response) if job.response else None,
    }


def _reader_client(caller: Caller, client_id: str | None) -> str:
    """Whose jobs ``caller`` may read: its own; the admin or shared key name the client."""
    if caller.admin or caller.legacy:
        if not client_id:
            raise BadRequest("clientId is required with this key", field="clientId")
        return client_id
    assert caller.client_id is not None
    if client_id is not None and client_id != caller.client_id:
        raise NotFound("no such execution")
    return caller.client_id


@router.get(
    "/{execution_id}",
    summary="Status of an async execution, then its response",
    responses=error_responses(
        400,
        401,
        404,
        503,
        notes={
            400: "clientId missing with the shared or admin key",
            404: "No such execution of this client",
            503: "The job store is down (Retry-After)",
        },
    ),
)
async def status(
    execution_id: str,
    services: ServicesDep,
    caller: CallerDep,
    client_id: Annotated[str | None, Query(alias="clientId")] = None,
) -> Response:
    """``queued | running | succeeded | failed``; once finished, ``response`` is the body
    ``POST /execute`` answers. Only the owning client (or the admin) can read it."""
    if not EXECUTION_ID_RE.fullmatch(execution_id):
        raise NotFound("no such execution")
    owner = _reader_client(caller, client_id)
    try:
        job = await services.jobs.get(owner, execution_id)
    except ValueError:
        raise NotFound("no such execution") from None
    except RedisError:
        raise store_down() from None
    if job is None:
        raise NotFound("no such execution")
    return json_response(_view(job))
