"""Async executions and batches: ``/v1/executions``, ``/v1/executions/{id}``, ``.../batch``."""

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
from service.errors import (
    BadRequest,
    Conflict,
    NotFound,
    RateLimited,
    ServiceError,
    Unavailable,
)
from service.jobs.batch import BatchItem, parse_items, run_batch
from service.jobs.callbacks import MAX_URL_LENGTH, check_callback_url
from service.jobs.store import Job, NewJob
from service.routes.openapi import error_responses
from service.schemas import EXECUTION_ID_PATTERN, EXECUTION_ID_RE, ExecuteRequest

__all__ = ["router"]

router = APIRouter(prefix="/v1/executions", tags=["executions"])

ExecutionIdHeader = Annotated[
    str | None,
    Header(alias="X-Execution-ID", description="1-128 chars of " + EXECUTION_ID_PATTERN),
]


def _body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_EXECUTION = ExecuteRequest.model_json_schema()
_SUBMIT = _body_schema(
    {
        **_EXECUTION,
        "properties": {
            **_EXECUTION.get("properties", {}),
            "callbackUrl": {"type": "string", "maxLength": MAX_URL_LENGTH},
            "executionId": {"type": "string", "pattern": EXECUTION_ID_PATTERN},
        },
    }
)
_BATCH = _body_schema(
    {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": _SUBMIT["requestBody"]["content"]["application/json"]["schema"],
                "minItems": 1,
            },
            "async": {"type": "boolean", "default": False},
            "callbackUrl": {"type": "string", "maxLength": MAX_URL_LENGTH},
            "batchId": {"type": "string", "pattern": EXECUTION_ID_PATTERN},
        },
        "$defs": _EXECUTION.get("$defs", {}),
    }
)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _store_down() -> Unavailable:
    return Unavailable("the job store is unavailable", type="StoreUnavailable", retry_after=5)


def _execution_id(value: object, field: str) -> str:
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not EXECUTION_ID_RE.fullmatch(value):
        raise BadRequest(f"{field} must be 1-128 characters of [A-Za-z0-9._:-]", field=field)
    return value


def _callback(services: Services, body: dict[str, Any]) -> str | None:
    s = services.settings
    allow = s.callback_allow_private or s.environment is not Environment.production
    return check_callback_url(body.pop("callbackUrl", None), allow_private=allow)


async def _read(request: Request, services: Services) -> dict[str, Any]:
    s = services.settings
    return await read_json_object(
        request, max_bytes=s.max_body_bytes, max_depth=s.max_json_depth, timeout_s=s.body_timeout_s
    )


async def _submit(
    services: Services,
    caller: Caller,
    body: dict[str, Any],
    execution_id: str,
    callback_url: str | None,
    batch_id: str | None = None,
) -> str:
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


_QUEUE_STATUSES = (400, 401, 403, 408, 409, 413, 415, 429, 503)
_QUEUE_NOTES = {
    409: "executionId (or batchId) reused with a different body",
    429: "Too many unfinished async executions of this client (Retry-After)",
    503: "The queue is full, or the job store is down (Retry-After)",
}


@router.post(
    "",
    status_code=202,
    summary="Queue an execution; poll it or get a callback",
    openapi_extra=_SUBMIT,
    responses=error_responses(
        *_QUEUE_STATUSES,
        notes=_QUEUE_NOTES,
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
    body = await _read(request, services)
    callback_url = _callback(services, body)
    execution_id = _execution_id(
        x_execution_id or body.pop("executionId", None),
        "X-Execution-ID" if x_execution_id else "executionId",
    )
    try:
        client_id = await _submit(services, caller, body, execution_id, callback_url)
        job = await services.jobs.get(client_id, execution_id)
    except RedisError:
        raise _store_down() from None
    location = f"/v1/executions/{execution_id}"
    return _json(
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
        raise _store_down() from None
    if job is None:
        raise NotFound("no such execution")
    return _json(_view(job))


@router.post(
    "/batch",
    summary="Run up to batch_max_items executions, together or async",
    openapi_extra=_BATCH,
    responses=error_responses(
        *_QUEUE_STATUSES,
        notes=_QUEUE_NOTES,
        success={
            200: "Every item's `{status, body}`, in order",
            202: '`"async": true`: queued, `{batchId, executionIds}`',
        },
    ),
)
async def batch(request: Request, services: ServicesDep, caller: CallerDep) -> Response:
    """``{"items": [<execute body + executionId>...], "async": false, "callbackUrl": ...}``."""
    s = services.settings
    body = await _read(request, services)
    items = parse_items(body.get("items"), s.batch_max_items)
    callback_url = _callback(services, body)
    run_async = body.get("async", False)
    if not isinstance(run_async, bool):
        raise BadRequest("async must be true or false", field="async")
    if not run_async:
        if callback_url is not None:
            raise BadRequest('callbackUrl needs "async": true', field="callbackUrl")
        answers = await run_batch(services.executor, caller, items, s.sandbox_threads)
        for answer in answers:
            services.metrics.batch_items.labels(
                "ran" if answer["status"] == 200 else "refused"
            ).inc()
        return _json({"items": answers})
    batch_id = _execution_id(body.get("batchId"), "batchId")
    ids = [item.execution_id or f"{batch_id}.{i}" for i, item in enumerate(items)]
    if len(set(ids)) != len(ids) or not all(EXECUTION_ID_RE.fullmatch(i) for i in ids):
        raise BadRequest(
            "item execution IDs (executionId, else <batchId>.<index>) must be distinct "
            "and 1-128 characters",
            field="batchId",
        )
    clients = {_checked(services, caller, item.body, i) for i, item in enumerate(items)}
    if len(clients) != 1:
        raise BadRequest("every item of a batch must bill the same client", field="items")
    client_id = clients.pop()
    try:
        await _queue_batch(services, caller, client_id, batch_id, items, ids, callback_url)
    except RedisError:
        raise _store_down() from None
    return _json({"batchId": batch_id, "executionIds": ids}, 202)


def _checked(services: Services, caller: Caller, body: dict[str, Any], index: int) -> str:
    """The client an async batch item bills (its 400 names the item)."""
    try:
        return services.executor.check(caller, body)[0]
    except ServiceError as exc:
        exc.field = f"items.{index}.{exc.field}" if exc.field else f"items.{index}"
        raise


async def _queue_batch(
    services: Services,
    caller: Caller,
    client_id: str,
    batch_id: str,
    items: list[BatchItem],
    ids: list[str],
    callback_url: str | None,
) -> None:
    """Queue every item of a batch. A batch ID seen before with the same items queues only
    the items not queued yet (a submission that died part-way is completed by a retry)."""
    jobs = services.jobs
    known, _, _ = await jobs.batch(client_id, batch_id)
    if known and known != ids:
        raise Conflict("this batchId was already used for other items", field="batchId")
    if not known:
        for i, execution_id in enumerate(ids):
            if await jobs.get(client_id, execution_id) is not None:
                raise Conflict(
                    f"items.{i}: this executionId was already used",
                    field=f"items.{i}.executionId",
                )
        await jobs.check_room(client_id, len(items))
        if not await jobs.create_batch(client_id, batch_id, ids, callback_url):
            known, _, _ = await jobs.batch(client_id, batch_id)  # created at the same moment
            if known != ids:
                raise Conflict("this batchId was already used for other items", field="batchId")
    for item, execution_id in zip(items, ids, strict=True):
        await _submit(services, caller, item.body, execution_id, None, batch_id)
