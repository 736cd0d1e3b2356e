"""A ``codexec serve`` process killed in the middle of an async execution.

Two replicas share one Redis. The job's runner is killed with SIGKILL while the code runs;
the other replica takes the job over once it has been idle for ``CODEXEC_JOB_RECLAIM_IDLE_S``,
runs it again, and the execution is finished once and billed once. The later crash windows
(after the run was recorded, after the callback was queued) are in
``test_service_jobs_reclaim.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as syncredis

from billing import keys
from billing.apikeys import ApiKeys
from billing.client import connect
from billing.embedded import EmbeddedRedis
from reliability.launch import Service, launch

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-" + "j" * 32
CLIENT = "crash-client"
CODE = "{ const t = Date.now(); while (Date.now() - t < 3000) {} } return 'done';"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedRedis(tmp_path_factory.mktemp("jobs-redis"), persist=False) as server:
        yield server.url


def replica(redis_url: str, var_dir: Path, module_cache: Path) -> Service:
    settings = {
        "REDIS_URL": redis_url,
        "MODULE_CACHE_DIR": str(module_cache),
        "ADMIN_KEY": ADMIN_KEY,
        "JOB_RECLAIM_IDLE_S": "2",
        "JOB_CONCURRENCY": "1",
    }
    try:
        return launch(settings, var_dir, timeout=60)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def new_key(redis_url: str) -> str:
    async def create() -> str:
        client = connect(redis_url)
        try:
            return await ApiKeys(client).create(CLIENT, "basic")
        finally:
            await client.aclose()

    return asyncio.run(create())


def test_killed_runner_job_is_finished_once_and_billed_once(
    redis_url: str, module_cache: Path, tmp_path: Path
) -> None:
    services = [replica(redis_url, tmp_path / name, module_cache) for name in ("a", "b")]
    try:
        token = new_key(redis_url)
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(services[0].url + "/v1/executions", json={"code": CODE}, headers=auth)
        assert r.status_code == 202, r.text
        execution_id = r.json()["executionId"]
        job_key = keys.job(CLIENT, execution_id)
        store = syncredis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 30  # hang guard
        while store.hget(job_key, "status") != b"running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        runner = str(store.hget(job_key, "runner"))
        victim = next(s for s in services if f"-{s.proc.pid}-" in runner)
        survivor = next(s for s in services if s is not victim)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()

        deadline = time.monotonic() + 60  # hang guard
        while True:
            view = httpx.get(f"{survivor.url}/v1/executions/{execution_id}", headers=auth).json()
            if view["status"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, f"job still {view['status']}"
            time.sleep(0.1)
        assert view["status"] == "succeeded"
        assert view["response"]["result"] == "done"
        assert view["attempts"] == 2
        assert f"-{survivor.proc.pid}-" in str(store.hget(job_key, "runner"))
        usage = httpx.get(
            survivor.url + "/v1/usage",
            params={"clientId": CLIENT},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ).json()["today"]
        assert usage["executions"] == 1
        assert usage["fuel"] == view["response"]["metrics"]["fuel"]
        assert store.xlen(keys.JOBS) == 0  # acknowledged and removed
    finally:
        for s in services:
            s.stop()
