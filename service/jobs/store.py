"""Async executions in Redis: the ``jobs`` stream (consumer group) and one hash per job.

Keys (built by :mod:`billing.keys`)::

    jobs                          stream  one entry per job to run: client, id (group "runners")
    jobs:{<client>}               zset    the client's unfinished jobs (score: submit ms)
    job:{<client>}:<executionId>  hash    status, request, plan, callback, times, response
    batch:{<client>}:<batchId>    hash    an async batch: item IDs, items left, callback

A job hash is written before its stream entry, so a runner never sees an entry without its
job. An entry stays pending in the group until its job is finished and recorded; a runner
that dies leaves it pending, and another runner takes it over with ``XAUTOCLAIM`` once it
has been idle for ``job_reclaim_idle_s`` (a live runner keeps its entries fresh with
``XCLAIM ... JUSTID`` while it runs them). The run itself is idempotent (the job's execution
ID), so a job run twice is recorded and billed once. ``finish`` is one script on the
client's slot, so a batch's "items left" counts every job once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.exceptions import ResponseError

from billing import keys
from billing.scripts import AnyRedis
from service.errors import Conflict, RateLimited, Unavailable

__all__ = ["GROUP", "TERMINAL", "Job", "JobStore", "NewJob"]

GROUP = "runners"
TERMINAL = ("succeeded", "failed")
# KEYS: job hash, the client's zset, batch hash (or the job hash again)
# ARGV: status, response, finished ms, execution ID, "1" if in a batch
# -> -1 if the job was already finished, else the batch's items left (0 without a batch)
_FINISH = """
if redis.call('HEXISTS', KEYS[1], 'finished') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'response', ARGV[2], 'finished', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
if ARGV[5] == '1' then return redis.call('HINCRBY', KEYS[3], 'left', -1) end
return 0
"""


def now_ms() -> int:
    """Wall-clock milliseconds (job times are shown to clients)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a submission stores."""

    client_id: str
    execution_id: str
    request: dict[str, Any]
    body_hash: str
    plan: str
    legacy: bool
    callback_url: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored."""

    client_id: str
    execution_id: str
    status: str
    request: dict[str, Any]
    plan: str
    legacy: bool
    callback_url: str | None
    batch_id: str | None
    submitted_ms: int
    started_ms: int | None
    finished_ms: int | None
    attempts: int
    response: bytes | None

    @property
    def finished(self) -> bool:
        """Whether the job has its final response."""
        return self.status in TERMINAL


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None else None


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


class JobStore:
    """Redis operations of async executions (for submitters, readers and runners)."""

    def __init__(
        self, redis: AnyRedis, *, ttl_s: int, max_queued: int, max_queued_per_client: int
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.max_queued = max_queued
        self.max_queued_per_client = max_queued_per_client
        self._finish = redis.register_script(_FINISH)

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist."""
        try:
            await self.redis.xgroup_create(keys.JOBS, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def depth(self) -> int:
        """Jobs queued or running, over every process (entries not yet acknowledged)."""
        return int(await self.redis.xlen(keys.JOBS))

    async def submit(self, job: NewJob) -> bool:
        """Store and queue ``job``; False if this execution ID was already submitted with the
        same body (nothing is queued again). 409 for another body, 429/503 when full."""
        key = keys.job(job.client_id, job.execution_id)
        if await self._exists(key, job.body_hash):
            return False
        await self.check_room(job.client_id, 1)
        if not await self.redis.hsetnx(key, "hash", job.body_hash):
            await self._exists(key, job.body_hash)  # submitted at the same moment: 409 or done
            return False
        submitted = now_ms()
        fields: dict[Any, Any] = {
            "status": "queued",
            "request": orjson.dumps(job.request),
            "plan": job.plan,
            "legacy": "1" if job.legacy else "0",
            "submitted": submitted,
            "attempts": 0,
            "callback": job.callback_url or "",
            "batch": job.batch_id or "",
        }
        zset = keys.jobs_of(job.client_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.ttl_s)
            pipe.zadd(zset, {job.execution_id: submitted})
            pipe.expire(zset, self.ttl_s)
            await pipe.execute()
        await self.redis.xadd(keys.JOBS, {"client": job.client_id, "id": job.execution_id})
        return True

    async def _exists(self, key: str, body_hash: str) -> bool:
        """Whether the job exists (with this body; another body is 409)."""
        existing = cast("bytes | None", await self.redis.hget(key, "hash"))
        if existing is None:
            return False
        if existing.decode() != body_hash:
            raise Conflict(
                "this executionId was already submitted with a different body",
                field="executionId",
            )
        return True

    async def check_room(self, client_id: str, n: int) -> None:
        """Raise 429 (client) or 503 (overall) unless ``n`` more jobs fit in the queues."""
        if await self.redis.zcard(keys.jobs_of(client_id)) + n > self.max_queued_per_client:
            raise RateLimited(retry_after=5)
        if await self.depth() + n > self.max_queued:
            raise Unavailable("the async execution queue is full; retry later", retry_after=10)

    async def get(self, client_id: str, execution_id: str) -> Job | None:
        """The job, or None if there is none (or it expired)."""
        raw = cast(
            "dict[bytes, bytes]", await self.redis.hgetall(keys.job(client_id, execution_id))
        )
        if not raw or b"status" not in raw:
            return None
        return Job(
            client_id=client_id,
            execution_id=execution_id,
            status=raw[b"status"].decode(),
            request=orjson.loads(raw.get(b"request", b"{}")),
            plan=raw.get(b"plan", b"").decode(),
            legacy=raw.get(b"legacy") == b"1",
            callback_url=_text(raw.get(b"callback")),
            batch_id=_text(raw.get(b"batch")),
            submitted_ms=int(raw.get(b"submitted", b"0")),
            started_ms=_int(raw.get(b"started")),
            finished_ms=_int(raw.get(b"finished")),
            attempts=int(raw.get(b"attempts", b"0")),
            response=raw.get(b"response"),
        )

    async def start(self, job: Job, runner: str) -> None:
        """Mark ``job`` running (again, after a reclaim) on ``runner``."""
        key = keys.job(job.client_id, job.execution_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"status": "running", "started": now_ms(), "runner": runner})
            pipe.hincrby(key, "attempts", 1)
            await pipe.execute()

    async def requeue(self, job: Job) -> None:
        """Show ``job`` as queued again (it could not run for now)."""
        await self.redis.hset(keys.job(job.client_id, job.execution_id), "status", "queued")

    async def finish(self, job: Job, status: str, response: bytes) -> int:
        """Record the final response once: -1 if it already was, else the batch's items left
        (0 without a batch)."""
        job_key = keys.job(job.client_id, job.execution_id)
        batch_key = keys.batch(job.client_id, job.batch_id) if job.batch_id else job_key
        left = await self._finish(
            keys=[job_key, keys.jobs_of(job.client_id), batch_key],
            args=[status, response, now_ms(), job.execution_id, "1" if job.batch_id else "0"],
        )
        return int(left)

    async def read(self, runner: str, block_ms: int) -> tuple[str, str, str] | None:
        """The next new entry for ``runner`` (entry ID, client, execution ID), or None."""
        got: Any = await self.redis.xreadgroup(
            GROUP, runner, {keys.JOBS: ">"}, count=1, block=block_ms
        )
        for _stream, entries in got or ():
            for entry_id, fields in entries:
                return _entry(entry_id, fields)
        return None

    async def reclaim(self, runner: str, idle_ms: int) -> tuple[str, str, str] | None:
        """An entry whose runner went quiet for ``idle_ms``, now ``runner``'s, or None."""
        reply: Any = await self.redis.xautoclaim(
            keys.JOBS, GROUP, runner, min_idle_time=idle_ms, start_id="0-0", count=1
        )
        for entry_id, fields in reply[1] if len(reply) > 1 else ():
            if fields:  # a deleted entry comes back without fields
                return _entry(entry_id, fields)
        return None

    async def keep(self, runner: str, entry_id: str) -> None:
        """Reset the idle time of an entry ``runner`` is still running."""
        await self.redis.xclaim(keys.JOBS, GROUP, runner, 0, [entry_id], justid=True)

    async def ack(self, entry_id: str) -> None:
        """Drop a finished entry from the group and the stream."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.JOBS, GROUP, entry_id)
            pipe.xdel(keys.JOBS, entry_id)
            await pipe.execute()

    async def create_batch(
        self, client_id: str, batch_id: str, ids: list[str], callback_url: str | None
    ) -> bool:
        """Store an async batch; False if this batch ID exists already."""
        key = keys.batch(client_id, batch_id)
        fields: dict[Any, Any] = {
            "ids": orjson.dumps(ids),
            "left": len(ids),
            "callback": callback_url or "",
        }
        if not await self.redis.hsetnx(key, "created", now_ms()):
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()
        return True

    async def batch(self, client_id: str, batch_id: str) -> tuple[list[str], int, str | None]:
        """A batch's item IDs, items left and callback URL."""
        raw = cast("dict[bytes, bytes]", await self.redis.hgetall(keys.batch(client_id, batch_id)))
        ids: list[str] = orjson.loads(raw.get(b"ids", b"[]"))
        return ids, int(raw.get(b"left", b"0")), _text(raw.get(b"callback"))


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> tuple[str, str, str]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return text, fields.get(b"client", b"").decode(), fields.get(b"id", b"").decode()
