"""The HTTP contract through a real uvicorn server and real Redis."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ADMIN_KEY, LEGACY_KEY, LiveServer, usage_today

EXAMPLE = "const x = 10; const y = 20; return x + y;"


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    return error


def test_contract_example_on_worker_root_path_with_legacy_key(live: LiveServer) -> None:
    with live.client(LEGACY_KEY) as http:
        r = http.post(
            "/", json={"code": EXAMPLE, "language": "javascript", "clientId": "test-client"}
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["result"] == 30
    assert body["error"] is None
    assert r.headers["X-Execution-ID"] == body["executionId"]
    metrics = body["metrics"]
    assert set(metrics) == {
        "executionTime",
        "cpuTime",
        "memoryUsage",
        "fuel",
        "computeUnits",
        "cost",
    }
    assert metrics["fuel"] > 0
    assert metrics["memoryUsage"] > 0


def test_execute_with_client_key_records_usage(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json={"code": "console.log('hi', 1); return {a: [1, 2]}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == {"a": [1, 2]}
    assert body["output"] == ["hi 1"]
    today = usage_today(live, client_id)
    assert today["executions"] == 1
    assert today["errors"] == 0
    assert today["fuel"] == body["metrics"]["fuel"]


def test_thrown_error_is_a_200_with_the_error(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json={"code": "null.x"})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is False
    assert body["error"]["type"] == "TypeError"
    assert body["result"] is None
    assert usage_today(live, client_id)["errors"] == 1


def test_worker_client_shape(live: LiveServer, client_id: str) -> None:
    """What the Worker's NestJS client sends and reads."""
    execution_id = f"nest-{uuid.uuid4()}"
    body = {
        "code": "const r = await Promise.resolve(context.n * 2); console.log('doubled'); return r;",
        "language": "javascript",
        "timeout": 10_000,
        "memoryLimit": 128 * 1024 * 1024,
        "allowedModules": [],
        "context": {"n": 21},
        "clientId": client_id,
    }
    with live.client(LEGACY_KEY) as http:
        r = http.post("/", json=body, headers={"X-Execution-ID": execution_id})
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["success"], data["result"], data["output"], data["error"]) == (
        True,
        42,
        ["doubled"],
        None,
    )
    assert data["executionId"] == execution_id
    assert isinstance(data["metrics"]["executionTime"], float | int)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Basic abc"}, 401)],
)
def test_authentication(live: LiveServer, headers: dict[str, str], expected: int) -> None:
    with live.client() as http:
        r = http.post("/execute", json={"code": EXAMPLE}, headers=headers)
    assert r.status_code == expected
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(r)["type"] == "Unauthorized"


def test_revoked_key_is_refused(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        assert http.post("/execute", json={"code": EXAMPLE}).status_code == 200
    import asyncio

    import redis.asyncio as aioredis

    from billing.apikeys import ApiKeys

    async def revoke() -> bool:
        client = aioredis.Redis.from_url(live.redis_url)
        try:
            keys = await ApiKeys(client).list()
            target = next(k for k in keys if k.client_id == client_id)
            return await ApiKeys(client).revoke(target.key_hash)
        finally:
            await client.aclose()

    assert asyncio.run(revoke())
    with live.client(token) as http:
        assert http.post("/execute", json={"code": EXAMPLE}).status_code == 401


def test_wrong_client_is_403(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json={"code": EXAMPLE, "clientId": "someone-else"})
    assert r.status_code == 403
    assert error_of(r)["field"] == "clientId"


def test_admin_key_cannot_execute(live: LiveServer) -> None:
    with live.client(ADMIN_KEY) as http:
        r = http.post("/execute", json={"code": EXAMPLE, "clientId": "x"})
    assert r.status_code == 403
    assert error_of(r)["field"] == "Authorization"


def test_legacy_key_requires_client_id(live: LiveServer) -> None:
    with live.client(LEGACY_KEY) as http:
        r = http.post("/", json={"code": EXAMPLE})
    assert r.status_code == 400
    assert error_of(r)["field"] == "clientId"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "code"),
        ({"code": ""}, "code"),
        ({"code": 5}, "code"),
        ({"code": EXAMPLE, "timeout": "abc"}, "timeout"),
        ({"code": EXAMPLE, "timeout": 0}, "timeout"),
        ({"code": EXAMPLE, "timeout": 10_001}, "timeout"),
        ({"code": EXAMPLE, "memoryLimit": 1024}, "memoryLimit"),
        ({"code": EXAMPLE, "memoryLimit": 129 * 1024 * 1024}, "memoryLimit"),
        ({"code": EXAMPLE, "language": "python"}, "language"),
        ({"code": EXAMPLE, "allowedModules": ["fs"]}, "allowedModules"),
        ({"code": EXAMPLE, "context": [1, 2]}, "context"),
        ({"code": EXAMPLE, "clientId": "bad id with spaces"}, "clientId"),
        ({"code": "x" * (64 * 1024 + 1)}, "code"),
    ],
)
def test_bad_fields_are_400_naming_the_field(
    live: LiveServer, client_id: str, body: dict[str, Any], field: str
) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json=body)
    assert r.status_code == 400, r.text
    assert error_of(r)["field"] == field


def test_language_error_names_supported_languages(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json={"code": EXAMPLE, "language": "python"})
    assert r.status_code == 400
    assert "javascript" in error_of(r)["message"]
    assert "typescript" in error_of(r)["message"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, "body"),
        (b"[1, 2]", "application/json", 400, "body"),
        (b"", "application/json", 400, "body"),
        (b'{"code": "return 1"}', "text/plain", 415, "Content-Type"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "body"),
        (
            b'{"code": "return 1", "context": ' + b'{"a":' * 100 + b"1" + b"}" * 101,
            "application/json",
            400,
            "context",
        ),
    ],
)
def test_malformed_bodies(
    live: LiveServer, client_id: str, content: bytes, content_type: str, status: int, field: str
) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert error_of(r)["field"] == field


def test_oversized_body_by_header_and_by_stream(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    big = b'{"code": "' + b"x" * (live.settings.max_body_bytes + 10) + b'"}'
    with live.client(token) as http:
        r = http.post("/execute", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413

        def chunks() -> Any:
            for i in range(0, len(big), 65536):
                yield big[i : i + 65536]

        r = http.post("/execute", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert error_of(r)["type"] == "PayloadTooLarge"


def test_idempotent_retry_is_billed_once(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    body = {"code": "return Math.random()"}
    headers = {"X-Execution-ID": "retry-1"}
    with live.client(token) as http:
        first = http.post("/execute", json=body, headers=headers)
        second = http.post("/execute", json=body, headers=headers)
        conflict = http.post("/execute", json={"code": "return 2"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()  # same random result: the stored response
    assert second.headers["Idempotent-Replayed"] == "true"
    assert conflict.status_code == 409
    assert error_of(conflict)["field"] == "X-Execution-ID"
    assert usage_today(live, client_id)["executions"] == 1


def test_execution_id_header_is_validated(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        r = http.post("/execute", json={"code": EXAMPLE}, headers={"X-Execution-ID": "bad id!"})
    assert r.status_code == 400
    assert error_of(r)["field"] == "X-Execution-ID"


def test_cors_preflight(live: LiveServer) -> None:
    with live.client() as http:
        r = http.options(
            "/execute",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-execution-id",
            },
        )
        denied = http.options(
            "/execute",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in denied.headers


def test_health_readiness_and_metrics(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    with live.client(token) as http:
        http.post("/execute", json={"code": EXAMPLE})
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "ok"
        text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    executions = families["codexec_executions"]
    ok = [
        s for s in executions.samples if s.name.endswith("_total") and s.labels["outcome"] == "ok"
    ]
    assert ok
    assert ok[0].value >= 1
    routes = {s.labels.get("route") for s in families["codexec_http_requests"].samples}
    assert "/execute" in routes
    for family in families.values():
        for sample in family.samples:
            assert client_id not in str(sample.labels)


def test_openapi_documents_execute(live: LiveServer) -> None:
    with live.client() as http:
        spec = http.get("/openapi.json").json()
    op = spec["paths"]["/execute"]["post"]
    assert "code" in op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"401", "402", "409", "413", "415", "429", "503"} <= set(op["responses"])


def test_only_client_chosen_ids_keep_their_response(live: LiveServer, client_id: str) -> None:
    from billing import keys

    token = live.new_key(client_id)
    with live.client(token) as http:
        generated = http.post("/execute", json={"code": EXAMPLE}).json()["executionId"]
        http.post("/execute", json={"code": EXAMPLE}, headers={"X-Execution-ID": "chosen-1"})
    redis = live.sync_redis()
    try:
        claim = redis.get(keys.execution(client_id, generated))
        kept = redis.get(keys.execution(client_id, "chosen-1"))
    finally:
        redis.close()
    assert claim is not None
    assert claim.partition(b"\n")[2] == b""  # claimed (bills once on replay), nothing stored
    assert kept is not None
    assert b'"result":30' in kept.partition(b"\n")[2]


def test_runs_longer_than_the_inline_slice_move_to_a_thread_unchanged(
    live: LiveServer, client_id: str
) -> None:
    """A run that needs more than the inline fuel slice is re-run in a sandbox thread: the
    client gets exactly one run's answer and fuel (what a plain run of the code consumes)."""
    from prometheus_client.parser import text_string_to_metric_families

    from sandbox import Limits, Sandbox

    code = "let s = 0; for (let i = 0; i < 300000; i++) s += i; console.log('x'); return s;"
    token = live.new_key(client_id)

    def moved() -> float:
        with live.client() as http:
            text = http.get("/metrics").text
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            if f.name == "codexec_inline_runs"
            for s in f.samples
            if s.name.endswith("_total") and s.labels["result"] == "moved"
        )

    before = moved()
    with live.client(token) as http:
        body = http.post("/execute", json={"code": code}).json()
    assert moved() == before + 1
    assert body["result"] == 44999850000
    assert body["output"] == ["x"]
    with Sandbox(live.settings.cache_dir) as sandbox:
        direct = sandbox.run(code, "{}", Limits())
    assert direct.fuel > live.settings.inline_fuel
    assert body["metrics"]["fuel"] == direct.fuel
