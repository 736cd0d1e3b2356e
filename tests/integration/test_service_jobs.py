"""Async executions, callbacks and batches on a real server, Redis and HTTP receiver."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from billing import keys
from billing.webhook_signing import SignatureError, verify_signature
from service.jobs.store import JobStore
from tests.integration.conftest import (
    ADMIN_KEY,
    LEGACY_KEY,
    LiveServer,
    make_settings,
    start_server,
    stop_server,
    usage_today,
)

SLOW = "{ const t = Date.now(); while (Date.now() - t < %d) {} } return %s;"


@pytest.fixture(scope="module")
def jobs_live(
    redis_server: str, module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with small job queues and fast webhook retries."""
    settings = make_settings(
        redis_server,
        tmp_path_factory.mktemp("var"),
        module_cache_dir=module_cache,
        jobs_max_queued_per_client=3,
        job_concurrency=2,
        webhook_backoff_s=0.2,
        webhook_backoff_max_s=0.5,
    )
    server = start_server(settings)
    try:
        yield server
    finally:
        stop_server(server)


class Receiver:
    """A local HTTP endpoint that answers 500 to the first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.raw: list[bytes] = []  # each request's body as received (what is signed)
        self.delivered: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(data)
                receiver.raw.append(data)
                receiver.requests.append((dict(self.headers), body))
                ok = len(receiver.requests) > receiver.failures
                if ok:
                    receiver.delivered.append(body)
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout  # hang guard
        while len(self.delivered) < n:
            assert time.monotonic() < deadline, f"{len(self.delivered)} of {n} callbacks came"
            time.sleep(0.05)
        return self.delivered

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    try:
        yield r
    finally:
        r.close()


def wait_done(http: httpx.Client, location: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout  # hang guard
    seen = set()
    while True:
        r = http.get(location)
        assert r.status_code == 200, r.text
        view: dict[str, Any] = r.json()
        seen.add(view["status"])
        if view["status"] in ("succeeded", "failed"):
            view["seen"] = seen
            return view
        assert time.monotonic() < deadline, f"job still {view['status']}"
        time.sleep(0.05)


def test_submit_poll_and_read_the_execute_body(jobs_live: LiveServer, client_id: str) -> None:
    token = jobs_live.new_key(client_id)
    body = {"code": "console.log('async'); " + SLOW % (300, "6 * 7")}
    with jobs_live.client(token) as http:
        r = http.post("/v1/executions", json=body)
        assert r.status_code == 202, r.text
        execution_id = r.json()["executionId"]
        assert r.headers["Location"] == f"/v1/executions/{execution_id}"
        assert r.json()["status"] in ("queued", "running")
        view = wait_done(http, r.headers["Location"])
        plain = http.post("/execute", json=body).json()
    assert view["status"] == "succeeded"
    assert view["seen"] & {"queued", "running"}
    response = view["response"]
    assert response["executionId"] == execution_id
    assert response["result"] == 42
    assert response["output"] == ["async"]
    assert set(response) == set(plain)
    assert usage_today(jobs_live, client_id)["executions"] == 2  # the job and the plain run
    with jobs_live.client() as http:
        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
    submitted = [
        s for s in families["codexec_jobs"].samples if s.labels.get("event") == "submitted"
    ]
    assert submitted[0].value >= 1
    assert families["codexec_job_age_seconds"].samples
    assert "codexec_job_queue_depth" in families
    assert "codexec_stream_clients" in families
    redis_errors = families["codexec_redis_errors"].samples
    assert not [e for e in redis_errors if e.labels.get("operation") == "jobs" and e.value]


def test_failed_run_and_readers(jobs_live: LiveServer, client_id: str) -> None:
    token = jobs_live.new_key(client_id)
    other = jobs_live.new_key(client_id + "-other")
    execution_id = f"job-{uuid.uuid4()}"
    with jobs_live.client(token) as http:
        r = http.post(
            "/v1/executions", json={"code": "null.x"}, headers={"X-Execution-ID": execution_id}
        )
        assert r.status_code == 202
        view = wait_done(http, f"/v1/executions/{execution_id}")
        again = http.post(
            "/v1/executions", json={"code": "null.x"}, headers={"X-Execution-ID": execution_id}
        )
        conflict = http.post(
            "/v1/executions", json={"code": "1"}, headers={"X-Execution-ID": execution_id}
        )
    assert view["status"] == "failed"
    assert view["response"]["error"]["type"] == "TypeError"
    assert again.status_code == 202
    assert again.json()["status"] == "failed"  # the same submission is not run again
    assert conflict.status_code == 409
    with jobs_live.client(other) as http:
        assert http.get(f"/v1/executions/{execution_id}").status_code == 404
    with jobs_live.client(ADMIN_KEY) as http:
        assert http.get(f"/v1/executions/{execution_id}").status_code == 400
        r = http.get(f"/v1/executions/{execution_id}", params={"clientId": client_id})
        assert r.status_code == 200
        assert r.json()["response"] == view["response"]
    assert usage_today(jobs_live, client_id)["executions"] == 1


def test_invalid_submissions_are_refused_at_once(jobs_live: LiveServer, client_id: str) -> None:
    token = jobs_live.new_key(client_id)
    with jobs_live.client(token) as http:
        r1 = http.post("/v1/executions", json={"code": "1", "timeout": 10**9})
        r2 = http.post("/v1/executions", json={"code": "1", "callbackUrl": "ftp://x.example"})
        r3 = http.post("/v1/executions", json={"code": "1", "callbackUrl": "x" * 3000})
    assert (r1.status_code, r1.json()["error"]["field"]) == (400, "timeout")
    assert (r2.status_code, r2.json()["error"]["field"]) == (400, "callbackUrl")
    assert (r3.status_code, r3.json()["error"]["field"]) == (400, "callbackUrl")


def test_a_full_client_queue_is_429(jobs_live: LiveServer, client_id: str) -> None:
    token = jobs_live.new_key(client_id)
    body = {"code": SLOW % (1500, "1")}
    with jobs_live.client(token) as http:
        answers = [http.post("/v1/executions", json=body) for _ in range(5)]
        codes = [r.status_code for r in answers]
        assert codes[:3] == [202, 202, 202]
        assert 429 in codes[3:]
        refused = next(r for r in answers if r.status_code == 429)
        assert int(refused.headers["Retry-After"]) >= 1
        for r in answers:
            if r.status_code == 202:
                assert wait_done(http, r.headers["Location"])["status"] == "succeeded"


def test_callback_arrives_signed_after_failures(
    jobs_live: LiveServer, client_id: str, receiver: Receiver
) -> None:
    token = jobs_live.new_key(client_id)
    with jobs_live.client(token) as http:
        r = http.post("/v1/executions", json={"code": "return 'cb'", "callbackUrl": receiver.url})
        assert r.status_code == 202
        execution_id = r.json()["executionId"]
    delivered = receiver.wait(1)
    assert len(receiver.requests) == 3  # two refused, then delivered
    event = delivered[0]
    assert event["type"] == "execution.completed"
    assert event["data"]["executionId"] == execution_id
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["response"]["result"] == "cb"
    secret = jobs_live.sync_redis().hget(keys.webhook(client_id), "secret")
    assert isinstance(secret, bytes)
    for (headers, _body), raw in zip(receiver.requests, receiver.raw, strict=True):
        header = {k.lower(): v for k, v in headers.items()}.get("webhook-signature")
        verify_signature(secret.decode(), header, raw, tolerance=300)  # every attempt
    with pytest.raises(SignatureError):
        verify_signature("whsec_" + "x" * 43, header, raw, tolerance=300)
    time.sleep(0.5)
    assert len(receiver.delivered) == 1


def test_batch_answered_together(jobs_live: LiveServer, client_id: str) -> None:
    token = jobs_live.new_key(client_id)
    first_id = f"b-{uuid.uuid4()}"
    items: list[dict[str, Any]] = [
        {"code": "return 1", "executionId": first_id},
        {"code": "return 2", "timeout": 10**9},
        {"code": SLOW % (200, "3")},
        {"code": "throw new RangeError('no')"},
    ]
    with jobs_live.client(token) as http:
        r = http.post("/v1/executions/batch", json={"items": items})
        too_many = http.post("/v1/executions/batch", json={"items": [{"code": "1"}] * 101})
    assert r.status_code == 200, r.text
    answers = r.json()["items"]
    assert [a["status"] for a in answers] == [200, 400, 200, 200]
    assert answers[0]["body"]["executionId"] == first_id
    assert [answers[i]["body"]["result"] for i in (0, 2)] == [1, 3]
    assert answers[1]["body"]["error"]["field"] == "timeout"
    assert answers[3]["body"]["error"]["type"] == "RangeError"
    assert too_many.status_code == 400
    today = usage_today(jobs_live, client_id)
    assert today["executions"] == 3
    assert today["errors"] == 1


def test_batch_items_run_in_parallel(jobs_live: LiveServer, client_id: str) -> None:
    """Each item reports when (by the wall clock) it started and ended: run one after the
    other, no two of these spans would overlap."""
    token = jobs_live.new_key(client_id)
    code = "const s = Date.now(); while (Date.now() - s < 500) {} return [s, Date.now()]"
    n = 4
    with jobs_live.client(token) as http:
        r = http.post("/v1/executions/batch", json={"items": [{"code": code}] * n})
    assert r.status_code == 200, r.text
    answers = r.json()["items"]
    assert [a["status"] for a in answers] == [200] * n
    spans = [tuple(a["body"]["result"]) for a in answers]
    assert all(start < end for start, end in spans)
    # the most spans in progress at one moment (ends sort before starts at equal times)
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _t, step in events:
        running += step
        peak = max(peak, running)
    assert 2 <= peak <= jobs_live.settings.sandbox_threads
    assert usage_today(jobs_live, client_id)["executions"] == n


def test_async_batch_sends_one_callback(
    jobs_live: LiveServer, client_id: str, receiver: Receiver
) -> None:
    items = [{"code": f"return {i}", "clientId": client_id} for i in range(3)]
    body = {"items": items, "async": True, "callbackUrl": receiver.url, "batchId": client_id}
    with jobs_live.client(LEGACY_KEY) as http:
        r = http.post("/v1/executions/batch", json=body)
        assert r.status_code == 202, r.text
        ids = r.json()["executionIds"]
        again = http.post("/v1/executions/batch", json=body)  # the same batch: nothing new
        assert again.status_code == 202
        assert again.json()["executionIds"] == ids
        other = http.post("/v1/executions/batch", json={**body, "items": items[:2]})
        assert other.status_code == 409
        bad = {**body, "batchId": client_id + "-bad"}
        bad["items"] = [items[0], {**items[1], "timeout": 10**9}]
        refused = http.post("/v1/executions/batch", json=bad)
        assert refused.status_code == 400
        assert refused.json()["error"]["field"] == "items.1.timeout"
        views = [wait_done(http, f"/v1/executions/{i}?clientId={client_id}") for i in ids]
    assert [v["response"]["result"] for v in views] == [0, 1, 2]
    event = receiver.wait(1)[0]
    assert event["type"] == "batch.completed"
    assert event["data"]["batchId"] == client_id
    assert [i["response"]["result"] for i in event["data"]["items"]] == [0, 1, 2]
    time.sleep(0.5)
    assert len(receiver.delivered) == 1
    assert usage_today(jobs_live, client_id)["executions"] == 3


def test_a_batch_whose_submission_died_part_way_is_completed_by_a_retry(
    jobs_live: LiveServer, client_id: str
) -> None:
    items = [{"code": f"return {i} + 10", "clientId": client_id} for i in range(2)]
    batch_id = f"part-{uuid.uuid4().hex}"
    ids = [f"{batch_id}.{i}" for i in range(2)]

    async def create_only() -> None:  # a process that died right after storing the batch
        client = aioredis.Redis.from_url(jobs_live.redis_url)
        try:
            store = JobStore(client, ttl_s=600, max_queued=10, max_queued_per_client=10)
            assert await store.create_batch(client_id, batch_id, ids, None)
        finally:
            await client.aclose()

    asyncio.run(create_only())
    body = {"items": items, "async": True, "batchId": batch_id}
    with jobs_live.client(LEGACY_KEY) as http:
        r = http.post("/v1/executions/batch", json=body)
        assert r.status_code == 202, r.text
        assert r.json()["executionIds"] == ids
        views = [wait_done(http, f"/v1/executions/{i}?clientId={client_id}") for i in ids]
    assert [v["response"]["result"] for v in views] == [10, 11]
