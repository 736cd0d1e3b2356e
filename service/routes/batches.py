"""Batches: ``POST /v1/executions/batch`` runs its items together or queues them async."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError

from service.auth import Caller
from service.deps import CallerDep, Services, ServicesDep
from service.errors import BadRequest, Conflict, ServiceError
from service.jobs.batch import BatchItem, parse_items, run_batch
from service.jobs.callbacks import MAX_URL_LENGTH
from service.routes.executions import (
    EXECUTION_SCHEMA,
    QUEUE_NOTES,
    QUEUE_STATUSES,
    SUBMIT_SCHEMA,
    body_schema,
    callback_of,
    checked_execution_id,
    json_response,
    queue_submission,
    read_submission,
    store_down,
)
from service.routes.openapi import error_responses
from service.schemas import EXECUTION_ID_PATTERN, EXECUTION_ID_RE

__all__ = ["router"]

router = APIRouter(prefix="/v1/executions", tags=["executions"])

_BATCH = body_schema(
    {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": SUBMIT_SCHEMA["requestBody"]["content"]["application/json"]["schema"],
                "minItems": 1,
            },
            "async": {"type": "boolean", "default": False},
            "callbackUrl": {"type": "string", "maxLength": MAX_URL_LENGTH},
            "batchId": {"type": "string", "pattern": EXECUTION_ID_PATTERN},
        },
        "$defs": EXECUTION_SCHEMA.get("$defs", {}),
    }
)


@router.post(
    "/batch",
    summary="Run up to batch_max_items executions, together or async",
    openapi_extra=_BATCH,
    responses=error_responses(
        *QUEUE_STATUSES,
        notes=QUEUE_NOTES,
        success={
            200: "Every item's `{status, body}`, in order",
            202: '`"async": true`: queued, `{batchId, executionIds}`',
        },
    ),
)
async def batch(request: Request, services: ServicesDep, caller: CallerDep) -> Response:
    """``{"items": [<execute body + executionId>...], "async": false, "callbackUrl": ...}``."""
    s = services.settings
    body = await read_submission(request, services)
    items = parse_items(body.get("items"), s.batch_max_items)
    callback_url = callback_of(services, body)
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
        return json_response({"items": answers})
    batch_id = checked_execution_id(body.get("batchId"), "batchId")
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
        raise store_down() from None
    return json_response({"batchId": batch_id, "executionIds": ids}, 202)


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
        await queue_submission(services, caller, item.body, execution_id, None, batch_id)
