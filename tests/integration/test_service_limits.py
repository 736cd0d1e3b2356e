"""402, 429 and 503 through a real server with plans and capacity set for the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from billing.plans import Plans
from tests.integration.conftest import LiveServer, make_settings, start_server, stop_server

PLAN = {
    "max_timeout_ms": 5000,
    "max_memory_bytes": 64 * 1024 * 1024,
    "allowed_modules": [],
    "price_per_execution": "0.01",
    "price_per_cpu_second": "0.0001",
    "price_per_mb": "0.00001",
    "monthly_budget": "0.03",
    "rate_per_second": 1000,
    "burst": 1000,
}


@pytest.fixture(scope="module")
def limited(
    redis_server: str, module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with one sandbox thread, no queue, a cheap plan and a slow plan."""
    var = tmp_path_factory.mktemp("var")
    plans = {
        "default": "tiny",
        "plans": {
            "tiny": PLAN,
            "slow": {**PLAN, "monthly_budget": None, "rate_per_second": 0.5, "burst": 2},
            "roomy": {**PLAN, "monthly_budget": None},
        },
    }
    plans_file = var / "plans.json"
    plans_file.write_text(json.dumps(plans))
    Plans.load(plans_file)  # the test's own file must be valid
    settings = make_settings(
        redis_server,
        var,
        module_cache_dir=module_cache,
        plans_file=plans_file,
        sandbox_threads=1,
        admission_queue=0,
    )
    server = start_server(settings)
    try:
        yield server
    finally:
        stop_server(server)


def test_budget_exhausted_is_402(limited: LiveServer, client_id: str) -> None:
    token = limited.new_key(client_id, plan="tiny")
    statuses = []
    with limited.client(token) as http:
        for _ in range(5):
            statuses.append(http.post("/execute", json={"code": "return 1"}).status_code)
        last = http.post("/execute", json={"code": "return 1"})
    # 0.01 USD per execution (+ CPU and memory) against a 0.03 budget. Hard caps reserve a
    # run's maximum cost first (0.0115: 0.01 + 10 s of fuel + 50 MiB), which the ~0.00999
    # left after two runs cannot cover: two run, then 402 naming what is left.
    assert statuses == [200, 200, 402, 402, 402]
    assert last.status_code == 402
    error = last.json()["error"]
    assert error["type"] == "QuotaExceeded"
    assert Decimal("0.0099") < Decimal(error["remaining"]) < Decimal("0.01")


def test_rate_limit_is_429_with_retry_after(limited: LiveServer, client_id: str) -> None:
    token = limited.new_key(client_id, plan="slow")
    with limited.client(token) as http:
        responses = [http.post("/execute", json={"code": "return 1"}) for _ in range(4)]
    assert [r.status_code for r in responses[:2]] == [200, 200]
    refused = [r for r in responses if r.status_code == 429]
    assert refused
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["error"]["type"] == "RateLimited"


def test_full_admission_is_503_at_once(limited: LiveServer, client_id: str) -> None:
    busy_token = limited.new_key(client_id, plan="roomy")
    other_token = limited.new_key(client_id + "-b", plan="roomy")
    started = threading.Event()
    slow_status: list[int] = []

    def hog() -> None:
        with limited.client(busy_token) as http:
            started.set()
            r = http.post("/execute", json={"code": "while (true) {}", "timeout": 1500})
            slow_status.append(r.status_code)
            assert r.json()["error"]["type"] == "TimeoutError"

    thread = threading.Thread(target=hog)
    thread.start()
    started.wait()
    refused = None
    needs_a_thread = "let s = 0; for (let i = 0; i < 100000; i++) s += i; return s;"
    with limited.client(other_token) as http:
        # Short runs finish inline without a thread, so they are still answered:
        assert http.post("/execute", json={"code": "return 1"}).status_code == 200
        for _ in range(100):
            r = http.post("/execute", json={"code": needs_a_thread})
            if r.status_code == 503:
                refused = r
                break
            threading.Event().wait(0.01)
    thread.join()
    assert refused is not None, "the one sandbox thread was busy but nothing was refused"
    assert refused.json()["error"]["type"] == "Overloaded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.elapsed.total_seconds() < 1.0
    assert slow_status == [200]
    with limited.client(other_token) as http:
        assert http.post("/execute", json={"code": needs_a_thread}).status_code == 200


def test_admin_report_and_export(limited: LiveServer, client_id: str) -> None:
    from tests.integration.conftest import ADMIN_KEY

    token = limited.new_key(client_id, plan="roomy")
    with limited.client(token) as http:
        for i in range(3):
            assert http.post("/execute", json={"code": f"return {i}"}).status_code == 200
        assert http.get("/v1/billing/report").status_code == 403
    with limited.client(ADMIN_KEY) as http:
        report = http.get("/v1/billing/report", params={"clientId": client_id})
        assert report.status_code == 200, report.text
        total = report.json()["total"]
        assert total["executions"] == 3
        assert Decimal(total["cost"]) >= Decimal("0.03")
        csv_text = http.get(
            "/v1/billing/report", params={"clientId": client_id, "format": "csv"}
        ).text
        assert csv_text.splitlines()[0].startswith("client,")
        assert any(line.startswith(client_id + ",") for line in csv_text.splitlines())
        export = http.get("/v1/billing/export", params={"clientId": client_id})
        assert export.status_code == 200
        pairs = export.json()
        keys = {p["key"] for p in pairs}
        assert any(
            k.startswith(f"usage:{client_id}:") and len(k) == len(f"usage:{client_id}:2026-01-01")
            for k in keys
        )
        assert all(isinstance(p["value"], str) for p in pairs)
        assert (
            http.get(
                "/v1/billing/report", params={"start": "2026-02-01", "end": "2026-01-01"}
            ).status_code
            == 400
        )


def test_usage_endpoint_for_client_key(limited: LiveServer, client_id: str) -> None:
    token = limited.new_key(client_id, plan="roomy")
    with limited.client(token) as http:
        http.post("/execute", json={"code": "return 1"})
        http.post("/execute", json={"code": "throw new Error('x')"})
        usage = http.get("/v1/usage").json()
    assert usage["clientId"] == client_id
    assert usage["today"]["executions"] == 2
    assert usage["today"]["errors"] == 1
    assert usage["month"]["executions"] == 2
    assert isinstance(usage["month"]["cost"], str)


def test_unknown_route_is_json_404(limited: LiveServer) -> None:
    r = httpx.get(limited.url + "/nope")
    assert r.status_code == 404
    assert r.json()["success"] is False


def test_executions_beyond_the_in_flight_bound_are_refused_at_once(
    redis_server: str, module_cache: Path, tmp_path: Path, client_id: str
) -> None:
    """Even runs that would finish inline are refused (503) while the process already has
    ``max_in_flight`` executions in progress, instead of queueing in front of the loop."""
    server = start_server(
        make_settings(
            redis_server, tmp_path / "var", module_cache_dir=module_cache, max_in_flight=1
        )
    )
    try:
        token = server.new_key(client_id, plan="enterprise")
        started = threading.Event()

        def hog() -> None:
            with server.client(token) as http:
                started.set()
                r = http.post("/execute", json={"code": "while (true) {}", "timeout": 1500})
                assert r.json()["error"]["type"] == "TimeoutError"

        thread = threading.Thread(target=hog)
        thread.start()
        started.wait()
        refused = None
        with server.client(token) as http:
            for _ in range(100):
                r = http.post("/execute", json={"code": "return 1"})
                if r.status_code == 503:
                    refused = r
                    break
                threading.Event().wait(0.01)
        thread.join()
        assert refused is not None
        assert refused.json()["error"]["type"] == "Overloaded"
        assert refused.elapsed.total_seconds() < 1.0
        with server.client(token) as http:  # capacity is back once the hog is done
            assert http.post("/execute", json={"code": "return 1"}).status_code == 200
    finally:
        stop_server(server)
