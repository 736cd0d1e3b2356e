"""Async executions in Redis: the ``jobs`` stream (consumer group) and one hash per job.

Keys (built by :mod:`billing.keys`)::

    jobs                          stream  one entry per job to run: client, id (group "runners")
    jobs:{<client>}               zset    the client's unfinished jobs (score: submit ms)
    job:{<client>}:<executionId>  hash    status, request, plan, callback, times, response,
                                          entry (the ID of the stream entry that runs it;
                                          fields: :mod:`service.jobs.job`)
    batch:{<client>}:<batchId>    hash    an async batch: item IDs, items left, callback

On a Redis Cluster ``jobs`` and a client's keys are in different slots, so submitting is two
steps that cannot be one transaction, ordered so that a crash between them loses nothing:

1. ``XADD jobs`` (the entry, whose ID says when it was made);
2. one script on the client's slot (``billing/lua/job_submit.lua``) writes the job hash
   (with that entry's ID) and the client's zset, unless the execution ID exists already or
   the entry is older than :data:`SUBMIT_WINDOW_MS` by that node's clock (a submitter that
   stalled that long tries again with a fresh entry).

A process that dies between the two never answered 202, and leaves an entry without a job:
a runner that finds one leaves it pending (its submission may still be under way) and drops
it once it is :data:`ORPHAN_AFTER_MS` old, far beyond the window in which step 2 may still
write it. An entry whose job names another entry (a repeated submission) is dropped too. So
a job that exists always has a live entry, and no job stays ``queued`` forever.

An entry stays pending in the group until its job is finished and recorded; a runner that
dies leaves it pending, and another runner takes it over with ``XAUTOCLAIM`` once it has been
idle for ``job_reclaim_idle_s`` (a live runner keeps its entries fresh with ``XCLAIM ...
JUSTID`` while it runs them). The run itself is idempotent (the job's execution ID), so a job
run twice is recorded and billed once. ``finish`` is one script on the client's slot
(``billing/lua/job_finish.lua``), so a batch's "items left" counts every job once. Nothing
here uses MULTI (transactional pipelines and cluster clients do not mix well): every
multi-command change is one script on one slot, or a non-transactional pipeline on one key
whose partial effect is harmless.
"""

from __future__ import annotations

import time
from typing import Any, cast

import anyio
import orjson
from redis.exceptions import ResponseError

from billing import keys
from billing.scripts import AnyRedis, register
from service.errors import Conflict, RateLimited, Unavailable
from service.jobs.job import TERMINAL, Job, NewJob, text_field

__all__ = ["GROUP", "ORPHAN_AFTER_MS", "SUBMIT_WINDOW_MS", "TERMINAL", "Job", "JobStore", "NewJob"]

GROUP = "runners"
SUBMIT_WINDOW_MS = 60_000
"""A job hash is written for a stream entry at most this old (else a fresh entry is made).
Entry IDs carry the stream node's clock and the check reads the client node's: Redis nodes'
clocks must agree within this (NTP does far better)."""
ORPHAN_AFTER_MS = 10 * SUBMIT_WINDOW_MS
"""An entry this old whose job does not exist is dropped (its submitter died); the margin
over :data:`SUBMIT_WINDOW_MS` absorbs clock differences between processes and nodes."""
_LATE_READS_S = (0.02, 0.1, 0.5)  # a runner may read an entry just before its job is written


def now_ms() -> int:
    """Wall-clock milliseconds (job times are shown to clients)."""
    return time.time_ns() // 1_000_000


class JobStore:
    """Redis operations of async executions (for submitters, readers and runners)."""

    def __init__(
        self, redis: AnyRedis, *, ttl_s: int, max_queued: int, max_queued_per_client: int
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.max_queued = max_queued
        self.max_queued_per_client = max_queued_per_client
        self._finish = register(redis, "job_finish")
        self._submit = register(redis, "job_submit")
        self._create_batch = register(redis, "job_batch_create")

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
        fields = job.fields()
        for _ in range(3):
            entry = _decode(
                await self.redis.xadd(keys.JOBS, {"client": job.client_id, "id": job.execution_id})
            )
            submitted = now_ms()
            written, existing = await self._submit(
                keys=[key, keys.jobs_of(job.client_id)],
                args=[
                    job.body_hash, entry, _entry_ms(entry), SUBMIT_WINDOW_MS, self.ttl_s,
                    submitted, job.execution_id, *fields, "submitted", submitted,
                ],
            )  # fmt: skip
            if int(written) == 1:
                return True
            await self.redis.xdel(keys.JOBS, entry)  # a runner that read it drops it too
            if int(written) == 0:
                self._same_body(existing, job.body_hash)
                return False
        raise Unavailable("the async execution queue is too slow; retry later", retry_after=5)

    def _same_body(self, existing: bytes | str, body_hash: str) -> None:
        if _decode(existing) != body_hash:
            raise Conflict(
                "this executionId was already submitted with a different body",
                field="executionId",
            )

    async def _exists(self, key: str, body_hash: str) -> bool:
        """Whether the job exists (with this body; another body is 409)."""
        existing = cast("bytes | None", await self.redis.hget(key, "hash"))
        if existing is None:
            return False
        self._same_body(existing, body_hash)
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
        return Job.from_hash(client_id, execution_id, raw)

    async def job_of_entry(self, entry_id: str, client_id: str, execution_id: str) -> Job | None:
        """The job a stream entry runs, or None if there is nothing to run for it now.

        An entry that runs no job (expired, repeated, or orphaned by a submitter that died
        before writing the job) is acknowledged and dropped here. One whose job is not
        written yet but may still be (younger than :data:`ORPHAN_AFTER_MS`) is left pending:
        it is looked at again once idle.
        """
        if not client_id or not execution_id:
            await self.ack(entry_id)
            return None
        try:
            job = await self.get(client_id, execution_id)
            for delay in _LATE_READS_S:
                if job is not None or now_ms() - _entry_ms(entry_id) > ORPHAN_AFTER_MS:
                    break
                await anyio.sleep(delay)
                job = await self.get(client_id, execution_id)
        except ValueError:  # not a client or execution ID this service writes
            job = None
        else:
            if job is None and now_ms() - _entry_ms(entry_id) <= ORPHAN_AFTER_MS:
                return None
        if job is None or (job.entry_id is not None and job.entry_id != entry_id):
            await self.ack(entry_id)
            return None
        return job

    async def start(self, job: Job, runner: str) -> None:
        """Mark ``job`` running (again, after a reclaim) on ``runner``."""
        key = keys.job(job.client_id, job.execution_id)
        async with self.redis.pipeline(transaction=False) as pipe:  # one key
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
            if fields:
                return _entry(entry_id, fields)
            await self.ack(_decode(entry_id))  # deleted while pending (Redis < 7 returns it)
        return None

    async def keep(self, runner: str, entry_id: str) -> None:
        """Reset the idle time of an entry ``runner`` is still running."""
        await self.redis.xclaim(keys.JOBS, GROUP, runner, 0, [entry_id], justid=True)

    async def ack(self, entry_id: str) -> None:
        """Drop a finished entry from the group and the stream."""
        async with self.redis.pipeline(transaction=False) as pipe:  # one key
            pipe.xack(keys.JOBS, GROUP, entry_id)
            pipe.xdel(keys.JOBS, entry_id)
            await pipe.execute()

    async def create_batch(
        self, client_id: str, batch_id: str, ids: list[str], callback_url: str | None
    ) -> bool:
        """Store an async batch; False if this batch ID exists already."""
        created = await self._create_batch(
            keys=[keys.batch(client_id, batch_id)],
            args=[
                self.ttl_s,
                "created", now_ms(),
                "ids", orjson.dumps(ids),
                "left", len(ids),
                "callback", callback_url or "",
            ],
        )  # fmt: skip
        return int(created) == 1

    async def batch(self, client_id: str, batch_id: str) -> tuple[list[str], int, str | None]:
        """A batch's item IDs, items left and callback URL."""
        raw = cast("dict[bytes, bytes]", await self.redis.hgetall(keys.batch(client_id, batch_id)))
        ids: list[str] = orjson.loads(raw.get(b"ids", b"[]"))
        return ids, int(raw.get(b"left", b"0")), text_field(raw.get(b"callback"))


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_ms(entry_id: str) -> int:
    """When a stream entry was added (the milliseconds part of its ID)."""
    return int(entry_id.partition("-")[0])


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> tuple[str, str, str]:
    return _decode(entry_id), fields.get(b"client", b"").decode(), fields.get(b"id", b"").decode()
