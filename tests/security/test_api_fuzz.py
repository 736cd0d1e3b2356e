"""The API fuzzed from its own OpenAPI document (schemathesis): nothing a client sends is a 500."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.conftest import (
    ADMIN_KEY,
    LiveServer,
    make_settings,
    start_server,
    stop_server,
)

# `make test`: 40 cases per operation; `make fuzz` raises it.
EXAMPLES = int(os.environ.get("CODEXEC_SCHEMATHESIS_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def fuzz_server(
    redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    var = tmp_path_factory.mktemp("var")
    server = start_server(make_settings(redis_server, var, admission_queue=64))
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def client_token(fuzz_server: LiveServer) -> str:
    return fuzz_server.new_key("fuzz-client", plan="enterprise")


def check_case(case: Any, client_token: str) -> None:
    """Send one generated request as a client, as the admin and anonymously."""
    base = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    for token in (client_token, ADMIN_KEY, None):
        case.headers = {**base, **({"Authorization": f"Bearer {token}"} if token else {})}
        response = case.call(timeout=30)
        assert response.status_code < 500 or response.status_code == 503, (
            f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
        )
        if response.status_code >= 400:
            body = response.json()
            assert body["success"] is False
            assert body["error"]["type"]


def test_no_server_errors(fuzz_server: LiveServer, client_token: str) -> None:
    """Every operation of /openapi.json, fuzzed for a fixed number of cases."""
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/execute", "/", "/v1/usage", "/v1/billing/report"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            check_case(case, client_token)

        fuzz()
