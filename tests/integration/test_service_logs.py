"""One JSON log line per request, with what operators need and never code, context or keys."""

from __future__ import annotations

import logging

import orjson
import pytest

from service.logs import JsonFormatter
from tests.integration.conftest import LiveServer

SECRET_CODE = "const marker_in_code_7f3a = 1; return marker_in_code_7f3a;"


def test_request_log_line(
    live: LiveServer, client_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = live.new_key(client_id)
    caplog.set_level(logging.INFO, logger="codexec.request")
    with live.client(token) as http:
        r = http.post(
            "/execute",
            json={"code": SECRET_CODE, "context": {"marker_in_context_91b2": True}},
            headers={"X-Request-ID": "req-abc-123"},
        )
        assert r.status_code == 200
        assert r.headers["X-Request-ID"] == "req-abc-123"
        http.post(
            "/execute", json={"code": "x"}, headers={"Authorization": "Bearer wrong-key-5d1e"}
        )
    records = [rec for rec in caplog.records if rec.name == "codexec.request"]
    lines = [orjson.loads(JsonFormatter().format(rec)) for rec in records]
    ours = next(line for line in lines if line.get("request_id") == "req-abc-123")
    assert ours["client"] == client_id
    assert ours["status"] == 200
    assert ours["outcome"] == "ok"
    assert ours["route"] == "/execute"
    assert ours["fuel"] > 0
    assert {"cpu_ms", "wall_ms", "duration_ms"} <= set(ours)
    assert any(line["status"] == 401 for line in lines)
    text = "\n".join(JsonFormatter().format(rec) for rec in caplog.records)
    for secret in ("marker_in_code_7f3a", "marker_in_context_91b2", token, "wrong-key-5d1e"):
        assert secret not in text
