"""Two ``codexec serve`` replicas on one shared Redis (single server, then a 3-master Cluster).

What the Kubernetes Deployment relies on: replicas hold nothing another one needs. A bounded
load is split over both replicas, some executions are retried with the same ``X-Execution-ID``
on the OTHER replica (after the answer, and at the same moment on both); then every retry must
have received byte-identical bodies, and the usage in Redis must count each distinct answered
execution exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing import keys
from billing.apikeys import ApiKeys
from billing.client import connect
from billing.embedded import EmbeddedCluster, EmbeddedRedis
from billing.spool import Spool
from billing.usage import UsageStore
from reliability.launch import Service, launch

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-" + "s" * 32
CLIENTS = ("scale-a", "scale-b", "scale-c")  # different hash slots: spread over the masters
# Math.random makes a re-run visible: a replay must return the first answer's bytes.
CODE = "return [%d, Math.random()];"


def start_replica(redis_url: str, cluster: bool, var_dir: Path, module_cache: Path) -> Service:
    """One ``codexec serve`` process on its own port, sharing ``redis_url``."""
    settings = {
        "REDIS_URL": redis_url,
        "REDIS_CLUSTER": "true" if cluster else "false",
        "MODULE_CACHE_DIR": str(module_cache),
        "ADMIN_KEY": ADMIN_KEY,
        "SANDBOX_THREADS": "2",
    }
    try:
        return launch(settings, var_dir, timeout=45)
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def single_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of this module's own (the service state must not mix with other tests)."""
    with EmbeddedRedis(tmp_path_factory.mktemp("scale-redis"), persist=False) as server:
        yield server.url


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-master Redis Cluster; its seed node's URL."""
    with EmbeddedCluster(tmp_path_factory.mktemp("scale-cluster")) as cluster:
        yield cluster.url


async def _create_keys(url: str, cluster: bool) -> dict[str, str]:
    client = connect(url, cluster=cluster)
    try:
        return {c: await ApiKeys(client).create(c, "enterprise") for c in CLIENTS}
    finally:
        await client.aclose()


async def _usage(url: str, cluster: bool, spool: Path) -> dict[str, tuple[int, int]]:
    """Per client: (executions this month, ledger entries)."""
    client = connect(url, cluster=cluster)
    try:
        store = UsageStore(client, Spool(spool))
        month = datetime.now(UTC).strftime("%Y-%m")
        found = {}
        for c in CLIENTS:
            totals = await store.totals(c, month)
            found[c] = (totals.executions, int(await client.xlen(keys.ledger(c))))
        return found
    finally:
        await client.aclose()


def _replays(url: str) -> float:
    families = text_string_to_metric_families(httpx.get(url + "/metrics").text)
    return sum(
        s.value
        for f in families
        if f.name == "codexec_idempotent_replays"
        for s in f.samples
        if s.name == "codexec_idempotent_replays_total"
    )


def run_load(replicas: list[Service], tokens: dict[str, str]) -> dict[str, int]:
    """~320 requests from 4 threads; returns the distinct answered executions per client."""
    clients = {
        (r.url, c): httpx.Client(
            base_url=r.url, headers={"Authorization": f"Bearer {t}"}, timeout=30
        )
        for r in replicas
        for c, t in tokens.items()
    }
    a, b = replicas[0].url, replicas[1].url

    def post(url: str, client_id: str, n: int, execution_id: str | None) -> httpx.Response:
        headers = {"X-Execution-ID": execution_id} if execution_id else {}
        body = {"code": CODE % n, "language": "javascript"}
        return clients[url, client_id].post("/execute", json=body, headers=headers)

    def answered(resp: httpx.Response) -> bytes:
        assert resp.status_code == 200, resp.text
        assert resp.json()["success"] is True, resp.text
        return resp.content

    def with_retry(n: int) -> int:
        # first on one replica; every third one retried on the other after the answer
        client_id, eid = CLIENTS[n % 3], uuid.uuid4().hex
        first, other = (a, b) if n % 2 else (b, a)
        body = answered(post(first, client_id, n, eid))
        if n % 3 == 0:
            retry = post(other, client_id, n, eid)
            assert retry.headers.get("Idempotent-Replayed") == "true"
            assert answered(retry) == body, f"retry of {eid} on the other replica differs"
        return n % 3

    def concurrent_pair(n: int) -> int:
        # the same ID on both replicas at once: both run, one claims, both answer the same
        client_id, eid = CLIENTS[n % 3], uuid.uuid4().hex
        with ThreadPoolExecutor(2) as pair:
            bodies = list(pair.map(lambda u: answered(post(u, client_id, n, eid)), (a, b)))
        assert bodies[0] == bodies[1], f"concurrent duplicates of {eid} got different answers"
        return n % 3

    def without_id(n: int) -> int:
        answered(post(a if n % 2 else b, CLIENTS[n % 3], n, None))
        return n % 3

    try:
        with ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(with_retry, n) for n in range(210)]
            jobs += [pool.submit(concurrent_pair, n) for n in range(1000, 1021)]
            jobs += [pool.submit(without_id, n) for n in range(2000, 2021)]
            done = [j.result() for j in jobs]
    finally:
        for http in clients.values():
            http.close()
    return {c: done.count(i) for i, c in enumerate(CLIENTS)}


@pytest.mark.parametrize("backend", ["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def test_two_replicas_bill_each_execution_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, module_cache: Path
) -> None:
    cluster = backend == "cluster"
    url = request.getfixturevalue("redis_cluster" if cluster else "single_redis")
    tokens = asyncio.run(_create_keys(url, cluster))
    replicas: list[Service] = []
    try:
        for i in range(2):
            replicas.append(start_replica(url, cluster, tmp_path / f"var{i}", module_cache))
        expected = run_load(replicas, tokens)
        assert sum(expected.values()) == 210 + 21 + 21
        usage = asyncio.run(_usage(url, cluster, tmp_path / "spool"))
        assert usage == {c: (n, n) for c, n in expected.items()}, "double or missed billing"
        assert sum(_replays(r.url) for r in replicas) >= 70  # the 70 retries after an answer
        for r in replicas:  # nothing was left waiting for Redis
            assert httpx.get(r.url + "/readyz").json()["checks"]["spool_depth"] == 0
    finally:
        for r in replicas:
            r.stop()
