"""Batches answered together: every item run as its own execution, in parallel, billed alone.

At most ``sandbox_threads`` items of one batch run at once, and an item the admission refuses
for now (429 over the client's share, 503 busy) waits and tries again with backoff, so a
batch stays within the client's concurrency share instead of failing on it. Each item's
answer is exactly what ``POST /execute`` would have answered for it: the execution body, or
the error envelope with its HTTP status.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from service.auth import Caller
from service.errors import (
    BadRequest,
    RateLimited,
    ServiceError,
    Unavailable,
    error_response,
    translate,
)
from service.execution import ExecutionService
from service.schemas import EXECUTION_ID_RE

__all__ = ["BatchItem", "parse_items", "run_batch"]

_RETRIES = 8


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item: its execution body and its own execution ID (None: one is made up)."""

    body: dict[str, Any]
    execution_id: str | None


def parse_items(value: object, max_items: int) -> list[BatchItem]:
    """The ``items`` of a batch body, or 400 naming the offending item."""
    if not isinstance(value, list) or not value:
        raise BadRequest("items must be a non-empty array of execution bodies", field="items")
    if len(value) > max_items:
        raise BadRequest(f"a batch holds at most {max_items} items", field="items")
    items: list[BatchItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(value):
        if not isinstance(raw, dict):
            raise BadRequest(f"items.{i} must be a JSON object", field=f"items.{i}")
        body = dict(raw)
        execution_id = body.pop("executionId", None)
        if execution_id is not None:
            if not isinstance(execution_id, str) or not EXECUTION_ID_RE.fullmatch(execution_id):
                raise BadRequest(
                    f"items.{i}.executionId must be 1-128 characters of [A-Za-z0-9._:-]",
                    field=f"items.{i}.executionId",
                )
            if execution_id in seen:
                raise BadRequest(
                    f"items.{i}.executionId repeats an earlier item's",
                    field=f"items.{i}.executionId",
                )
            seen.add(execution_id)
        items.append(BatchItem(body, execution_id))
    return items


async def _one(executor: ExecutionService, caller: Caller, item: BatchItem) -> dict[str, Any]:
    delay = 0.1
    for attempt in range(_RETRIES + 1):
        try:
            done = await executor.execute(caller, item.body, item.execution_id)
        except (RateLimited, Unavailable) as exc:
            if attempt == _RETRIES:
                return _refused(exc, item)
        except Exception as exc:
            err = translate(exc)
            if err is None:
                raise
            return _refused(err, item)
        else:
            return {"status": 200, "body": orjson.Fragment(done.body)}
        await anyio.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def _refused(err: ServiceError, item: BatchItem) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "status": err.status,
        "body": orjson.Fragment(error_response(err).body),
    }
    if item.execution_id is not None:
        answer["executionId"] = item.execution_id
    return answer


async def run_batch(
    executor: ExecutionService, caller: Caller, items: list[BatchItem], parallel: int
) -> list[dict[str, Any]]:
    """Run every item (at most ``parallel`` at once); answers in the items' order."""
    answers: list[dict[str, Any]] = [{} for _ in items]
    limiter = anyio.CapacityLimiter(max(1, parallel))

    async def run(i: int) -> None:
        async with limiter:
            answers[i] = await _one(executor, caller, items[i])

    async with anyio.create_task_group() as tg:
        for i in range(len(items)):
            tg.start_soon(run, i)
    return answers
