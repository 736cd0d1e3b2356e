"""The job runners of one process: take jobs from the stream, run them, record, call back.

``job_concurrency`` runners per process each loop: read one new entry (blocking briefly),
else take over one entry another runner left idle for ``job_reclaim_idle_s`` (its process
died), then run it. A run is :meth:`ExecutionService.execute` with the job's execution ID,
so it is admitted, limited, recorded and billed like ``POST /execute``, and a job run again
after a crash replays the recorded response instead of being billed twice. While it runs,
the runner keeps the entry fresh so no one else takes it over. A refusal that will pass
(429 share or rate, 503 overloaded) is retried with backoff, and after that the job is queued
again (its entry stays pending and is taken over once idle); any other refusal (402, 409 ...)
finishes the job as ``failed`` with the error envelope as its response.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from redis.exceptions import RedisError

from service.auth import Caller
from service.errors import RateLimited, ServiceError, Unavailable, error_response, translate
from service.jobs.callbacks import BATCH_COMPLETED, EXECUTION_COMPLETED
from service.jobs.job import Job
from service.jobs.store import JobStore, now_ms

if TYPE_CHECKING:
    from service.deps import Services

__all__ = ["JobRunner", "response_status"]

log = logging.getLogger("codexec.jobs")

_BLOCK_MS = 1000
_RETRIES = 8


def response_status(body: bytes) -> str:
    """``succeeded`` if the response says ``success: true``, else ``failed``."""
    try:
        ok = orjson.loads(body).get("success") is True
    except (orjson.JSONDecodeError, AttributeError):
        ok = False
    return "succeeded" if ok else "failed"


class JobRunner:
    """Runs async executions in this process."""

    def __init__(self, services: Services, store: JobStore) -> None:
        self.services = services
        self.store = store
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        s = services.settings
        self._idle_ms = int(s.job_reclaim_idle_s * 1000)
        self._keep_s = max(0.05, s.job_reclaim_idle_s / 3)

    async def run(self) -> None:
        """Run ``job_concurrency`` runner loops until cancelled."""
        await self.store.ensure_group()
        async with anyio.create_task_group() as tg:
            for _ in range(self.services.settings.job_concurrency):
                tg.start_soon(self._loop)

    async def _loop(self) -> None:
        metrics = self.services.metrics
        while True:
            try:
                entry = await self.store.reclaim(self.name, self._idle_ms)
                if entry is not None:
                    metrics.jobs.labels("reclaimed").inc()
                else:
                    entry = await self.store.read(self.name, _BLOCK_MS)
                metrics.job_queue_depth.set(await self.store.depth())
                if entry is not None:
                    await self._process(*entry)
            except (RedisError, OSError):
                metrics.redis_errors.labels("jobs").inc()
                await anyio.sleep(1 + random.random())
            except Exception:  # a bug must not stop the runners (the entry is retried later)
                log.exception("job runner failed")
                await anyio.sleep(1 + random.random())

    async def _process(self, entry_id: str, client_id: str, execution_id: str) -> None:
        job = await self.store.job_of_entry(entry_id, client_id, execution_id)
        if job is None:  # nothing to run (dropped), or its submission is not written yet
            return
        if not job.finished:
            if not await self._run(entry_id, job):
                return  # left pending: taken over again once idle
            job = await self.store.get(client_id, execution_id) or job
        elif job.batch_id:  # finished by a runner that died before it acknowledged
            await self._batch_done(client_id, job.batch_id)
        await self._call_back(job)
        await self.store.ack(entry_id)

    async def _run(self, entry_id: str, job: Job) -> bool:
        """Run and finish ``job``; False if it could not run for now (it is queued again)."""
        metrics = self.services.metrics
        await self.store.start(job, self.name)
        metrics.job_age_seconds.observe(max(0, now_ms() - job.submitted_ms) / 1000)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep, entry_id)
            body = await self._execute(job)
            tg.cancel_scope.cancel()
        if body is None:
            await self.store.requeue(job)
            metrics.jobs.labels("deferred").inc()
            return False
        status = response_status(body)
        left = await self.store.finish(job, status, body)
        metrics.jobs.labels("run" if status == "succeeded" else "failed").inc()
        if left == 0 and job.batch_id:
            await self._batch_done(job.client_id, job.batch_id)
        return True

    async def _keep(self, entry_id: str) -> None:
        while True:
            await anyio.sleep(self._keep_s)
            try:
                await self.store.keep(self.name, entry_id)
            except RedisError:
                self.services.metrics.redis_errors.labels("jobs").inc()

    async def _execute(self, job: Job) -> bytes | None:
        """The job's response: the execution's body, or the envelope of why it was refused;
        None if it was refused for now (busy, rate limited) all the while it retried."""
        caller = Caller(None if job.legacy else job.client_id, job.plan, legacy=job.legacy)
        delay = 0.25
        for attempt in range(_RETRIES + 1):
            try:
                done = await self.services.executor.execute(caller, job.request, job.execution_id)
            except (RateLimited, Unavailable):
                if attempt == _RETRIES:
                    return None
            except Exception as exc:
                err = translate(exc)
                if err is None:
                    log.exception("job %s failed", job.execution_id)
                    err = ServiceError("internal error")
                return bytes(error_response(err).body)
            else:
                return done.body
            await anyio.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def _call_back(self, job: Job) -> None:
        """Queue the job's callback (deduplicated: a job run again queues it once)."""
        if not job.callback_url or job.response is None:
            return
        payload = {
            "executionId": job.execution_id,
            "status": job.status,
            "response": orjson.Fragment(job.response),
        }
        await self.services.outbox.enqueue(
            job.client_id,
            job.callback_url,
            EXECUTION_COMPLETED,
            payload,
            key=f"{job.execution_id}:completed",
        )

    async def _batch_done(self, client_id: str, batch_id: str) -> None:
        ids, left, url = await self.store.batch(client_id, batch_id)
        if left != 0 or not url:
            return
        items: list[dict[str, Any]] = []
        for execution_id in ids:
            item = await self.store.get(client_id, execution_id)
            response = orjson.Fragment(item.response) if item and item.response else None
            status = item.status if item else "expired"
            items.append({"executionId": execution_id, "status": status, "response": response})
        await self.services.outbox.enqueue(
            client_id,
            url,
            BATCH_COMPLETED,
            {"batchId": batch_id, "items": items},
            key=f"{batch_id}:batch-completed",
        )
