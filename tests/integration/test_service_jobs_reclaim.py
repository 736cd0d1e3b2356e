"""A job runner that dies inside the crash windows the SIGKILL test cannot reach.

``test_service_jobs_crash.py`` kills a runner while the code runs, before anything is
recorded. Here a runner dies later, at a point chosen exactly: after its run was recorded
and billed but before the job was finished (so the survivor must replay the recording, not
run and bill again), or after the job was finished and its callback queued but before the
stream entry was acknowledged (so the survivor must not queue a second callback, of the
execution or of its batch). The
"process" is the real service (``create_app``'s services, a real Redis and sandbox) driven
through :class:`service.jobs.runner.JobRunner`; its death is a store call that raises (or
does nothing), after which only the other runner touches the job.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
import redis.asyncio as aioredis

from billing import keys
from billing.webhooks import Delivery
from service.app import open_services
from service.auth import Caller
from service.deps import Services
from service.jobs.callbacks import BATCH_COMPLETED, EXECUTION_COMPLETED
from service.jobs.job import Job, NewJob
from service.jobs.runner import JobRunner
from service.jobs.store import GROUP, JobStore
from service.metrics import Metrics
from tests.integration.conftest import make_settings

CALLBACK = "http://127.0.0.1:9/hook"  # never delivered: no delivery worker runs here
CODE = "return [crypto.randomUUID(), Math.random()]"  # differs on every real run


class Crash(Exception):
    """The runner's process died here."""


@pytest.fixture
async def services(
    redis_server: str, redis_client: aioredis.Redis, module_cache: Path, var_dir: Path
) -> AsyncIterator[Services]:
    """The services of one service process (no background tasks: runners are started by
    the test), on an emptied Redis."""
    settings = make_settings(
        redis_server,
        var_dir,
        module_cache_dir=module_cache,
        job_reclaim_idle_s=0.3,
        job_concurrency=1,
    )
    async with open_services(settings, Metrics()) as built:
        await built.jobs.ensure_group()
        yield built


def _store_of(services: Services) -> JobStore:
    """A second store on the same Redis: the dying process's (so it can be made to die)."""
    s = services.settings
    return JobStore(
        services.redis,
        ttl_s=s.idempotency_ttl_s,
        max_queued=s.jobs_max_queued,
        max_queued_per_client=s.jobs_max_queued_per_client,
    )


async def _submit(
    services: Services, client_id: str, callback: str | None = None, batch_id: str | None = None
) -> str:
    caller = Caller(client_id, "basic")
    request = {"code": CODE}
    billed, body_hash = services.executor.check(caller, request)
    execution_id = f"job-{uuid.uuid4().hex}"
    new = NewJob(billed, execution_id, request, body_hash, "basic", False, callback, batch_id)
    assert await services.jobs.submit(new)
    return execution_id


async def _run_until_finished(services: Services, client_id: str, execution_id: str) -> Job:
    """Run one live runner until it has finished the job and acknowledged its entry."""
    survivor = JobRunner(services, services.jobs)
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivor.run)
        with anyio.fail_after(60):  # hang guard
            while True:
                job = await services.jobs.get(client_id, execution_id)
                assert job is not None
                if job.finished and await services.jobs.depth() == 0:
                    tg.cancel_scope.cancel()
                    return job
                await anyio.sleep(0.05)
    raise AssertionError("unreachable")


async def _month(services: Services, client_id: str) -> tuple[int, int]:
    totals = await services.usage.totals(client_id, keys.month_period(datetime.now(UTC)))
    return totals.executions, totals.cost_pusd


async def _callbacks(
    redis: aioredis.Redis, execution_id: str, event: str = EXECUTION_COMPLETED
) -> list[dict[str, Any]]:
    """The deliveries of ``event`` queued for ``execution_id`` (or batch ID)."""
    found = []
    entries: Any = await redis.xrange(keys.OUTBOX)
    for _id, fields in entries:
        d = Delivery.from_json(fields[b"d"])
        data = orjson.loads(d.body)["data"]
        if d.event == event and data.get("executionId", data.get("batchId")) == execution_id:
            found.append(data)
    return found


async def test_a_runner_dead_after_recording_is_replayed_not_billed_again(
    services: Services, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = "reclaim-" + uuid.uuid4().hex[:8]
    execution_id = await _submit(services, client_id)
    recorded: list[bytes] = []

    dying_store = _store_of(services)

    async def die(job: Job, status: str, response: bytes) -> int:
        recorded.append(response)  # the run was recorded and billed: die before finishing
        raise Crash

    monkeypatch.setattr(dying_store, "finish", die)
    dying = JobRunner(services, dying_store)
    entry = await dying_store.read(dying.name, 1000)
    assert entry is not None
    with pytest.raises(Crash):
        await dying._process(*entry)  # the runner's own step, cut short

    # the crash window: recorded and billed once, the job running, its entry not acked
    [first] = recorded
    executions, cost = await _month(services, client_id)
    assert (executions, cost > 0) == (1, True)
    job = await services.jobs.get(client_id, execution_id)
    assert job is not None
    assert (job.status, job.attempts, job.response) == ("running", 1, None)
    assert await services.jobs.depth() == 1
    assert (await redis_client.xpending(keys.JOBS, GROUP))["pending"] == 1

    job = await _run_until_finished(services, client_id, execution_id)
    assert job.status == "succeeded"
    assert job.attempts == 2  # taken over and run again ...
    assert job.response == first  # ... as a replay of the recorded response
    assert orjson.loads(job.response)["executionId"] == execution_id
    assert await _month(services, client_id) == (executions, cost)  # billed once


async def test_a_runner_dead_before_acknowledging_is_not_called_back_twice(
    services: Services, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = "reclaim-" + uuid.uuid4().hex[:8]
    execution_id = await _submit(services, client_id, callback=CALLBACK)
    dying_store = _store_of(services)
    acks: list[str] = []

    async def die(entry_id: str) -> None:
        acks.append(entry_id)  # finished and called back: die before acknowledging

    monkeypatch.setattr(dying_store, "ack", die)
    dying = JobRunner(services, dying_store)
    entry = await dying_store.read(dying.name, 1000)
    assert entry is not None
    await dying._process(*entry)  # the runner's own step, cut short
    assert acks == [entry[0]]
    first = await services.jobs.get(client_id, execution_id)
    assert first is not None
    assert first.status == "succeeded"
    assert len(await _callbacks(redis_client, execution_id)) == 1
    assert await services.jobs.depth() == 1  # still pending: it will be taken over

    job = await _run_until_finished(services, client_id, execution_id)
    assert (job.status, job.attempts, job.response) == ("succeeded", 1, first.response)
    [callback] = await _callbacks(redis_client, execution_id)  # queued once, not again
    assert callback["status"] == "succeeded"
    assert callback["response"] == orjson.loads(first.response or b"null")
    assert (await _month(services, client_id))[0] == 1


async def test_a_batch_runner_dead_before_acknowledging_calls_back_the_batch_once(
    services: Services, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = "reclaim-" + uuid.uuid4().hex[:8]
    batch_id = f"batch-{uuid.uuid4().hex}"
    execution_id = f"{batch_id}.0"
    assert await services.jobs.create_batch(client_id, batch_id, [execution_id], CALLBACK)
    caller = Caller(client_id, "basic")
    request = {"code": CODE}
    _, body_hash = services.executor.check(caller, request)
    new = NewJob(client_id, execution_id, request, body_hash, "basic", False, None, batch_id)
    assert await services.jobs.submit(new)
    dying_store = _store_of(services)

    async def die(entry_id: str) -> None:  # finished, batch called back: die before the ack
        return None

    monkeypatch.setattr(dying_store, "ack", die)
    dying = JobRunner(services, dying_store)
    entry = await dying_store.read(dying.name, 1000)
    assert entry is not None
    await dying._process(*entry)  # the runner's own step, cut short
    assert len(await _callbacks(redis_client, batch_id, BATCH_COMPLETED)) == 1
    assert await services.jobs.depth() == 1

    job = await _run_until_finished(services, client_id, execution_id)
    assert job.status == "succeeded"
    [callback] = await _callbacks(redis_client, batch_id, BATCH_COMPLETED)  # not queued again
    [item] = callback["items"]
    assert item["executionId"] == execution_id
    assert item["response"] == orjson.loads(job.response or b"null")
