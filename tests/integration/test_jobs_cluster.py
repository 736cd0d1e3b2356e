"""Async executions on a real 3-master Redis Cluster: submit -> run -> status, and a callback.

The job stream (``jobs``), the outbox (``outbox``) and each client's job keys
(``job:{client}:...``) hash to different slots (checked below), so every step of a job
(submit, a repeated submit, run, finish, acknowledge, callback, an async batch) runs with its
keys spread over the masters, from a fresh cluster where no script is loaded yet.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.crc import key_slot

from billing import keys
from billing.embedded import EmbeddedCluster
from tests.integration.conftest import (
    LEGACY_KEY,
    LiveServer,
    make_settings,
    start_server,
    stop_server,
)
from tests.integration.test_service_jobs import Receiver

pytestmark = pytest.mark.cluster

CLIENTS = [f"cluster-jobs-{i}" for i in range(6)]


@pytest.fixture(scope="module")
def cluster_live(
    module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A service whose only store is a real 3-master cluster."""
    with EmbeddedCluster(tmp_path_factory.mktemp("jobs-cluster")) as cluster:
        settings = make_settings(
            cluster.url,
            tmp_path_factory.mktemp("var"),
            module_cache_dir=module_cache,
            redis_cluster=True,
            job_concurrency=2,
            webhook_backoff_s=0.2,
            webhook_backoff_max_s=0.5,
        )
        server = start_server(settings)
        try:
            yield server
        finally:
            stop_server(server)


def wait_done(http: httpx.Client, location: str, client_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60  # hang guard
    while True:
        r = http.get(location, params={"clientId": client_id})
        assert r.status_code == 200, r.text
        view: dict[str, Any] = r.json()
        if view["status"] in ("succeeded", "failed"):
            return view
        assert time.monotonic() < deadline, f"job still {view['status']}"
        time.sleep(0.05)


def test_job_keys_are_on_other_slots_than_the_stream() -> None:
    slots = {key_slot(keys.job(c, "x").encode()) for c in CLIENTS}
    assert len(slots) == len(CLIENTS)
    assert key_slot(keys.JOBS.encode()) not in slots


def test_submit_run_status_and_callback_on_a_cluster(cluster_live: LiveServer) -> None:
    receiver = Receiver(failures=1)
    try:
        with cluster_live.client(LEGACY_KEY) as http:
            submitted = []
            for i, client_id in enumerate(CLIENTS):
                body: dict[str, Any] = {"code": f"return {i} * 7", "clientId": client_id}
                if i == 0:
                    body["callbackUrl"] = receiver.url
                eid = f"cj-{uuid.uuid4().hex}"
                r = http.post("/v1/executions", json=body, headers={"X-Execution-ID": eid})
                assert r.status_code == 202, r.text
                again = http.post("/v1/executions", json=body, headers={"X-Execution-ID": eid})
                assert again.status_code == 202, again.text
                submitted.append((client_id, r.headers["Location"], i * 7))
            for client_id, location, expected in submitted:
                view = wait_done(http, location, client_id)
                assert view["status"] == "succeeded", view
                assert view["response"]["result"] == expected
                assert view["attempts"] == 1
        delivered = receiver.wait(1)
        assert delivered[0]["data"]["response"]["result"] == 0
        assert len(receiver.requests) == 2  # one refused, then delivered
    finally:
        receiver.close()
    with cluster_live.client(LEGACY_KEY) as http:
        r = http.post(
            "/v1/executions/batch",
            json={
                "items": [{"code": "return 1", "clientId": CLIENTS[1]}] * 3,
                "async": True,
                "batchId": f"cb-{uuid.uuid4().hex}",
            },
        )
        assert r.status_code == 202, r.text
        for eid in r.json()["executionIds"]:
            view = wait_done(http, f"/v1/executions/{eid}", CLIENTS[1])
            assert view["response"]["result"] == 1
