"""``language: "typescript"`` through a real uvicorn server, real Redis and the real stripper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import _ts_package
from sandbox.typescript import StripperUnavailable
from tests.integration.conftest import (
    LiveServer,
    make_settings,
    start_server,
    stop_server,
    usage_today,
)

TS_EXAMPLE = "const x: number = 10; const y: number = 20; return (x + y) as number;"
STRIPPED_EXAMPLE = "const x         = 10; const y         = 20; return (x + y)          ;"


def execute(live: LiveServer, token: str, body: dict[str, Any]) -> httpx.Response:
    with live.client(token) as http:
        return http.post("/execute", json=body)


def test_typescript_runs_and_reports_its_transpile_time(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    r = execute(live, token, {"code": TS_EXAMPLE, "language": "typescript"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["result"] == 30
    metrics = body["metrics"]
    assert metrics["transpileTime"] > 0
    assert metrics["fuel"] > 0
    today = usage_today(live, client_id)
    assert today["executions"] == 1
    assert today["fuel"] == metrics["fuel"]


@pytest.mark.parametrize("language", ["ts", "TypeScript", " TS "])
def test_language_aliases(live: LiveServer, client_id: str, language: str) -> None:
    token = live.new_key(client_id)
    code = "enum Answer { Yes = 42 }\nreturn Answer.Yes as number;"
    r = execute(live, token, {"code": code, "language": language})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == 42


def test_billed_like_the_javascript_it_strips_to(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    ts = execute(live, token, {"code": TS_EXAMPLE, "language": "typescript"}).json()
    js = execute(live, token, {"code": STRIPPED_EXAMPLE, "language": "javascript"}).json()
    assert ts["result"] == js["result"] == 30
    assert "transpileTime" not in js["metrics"]
    for key in ("fuel", "memoryUsage", "computeUnits", "cost"):
        assert ts["metrics"][key] == js["metrics"][key], key


def test_syntax_error_is_an_execution_error_at_the_typescript_position(
    live: LiveServer, client_id: str
) -> None:
    token = live.new_key(client_id)
    code = "const a: number = 1;\nconst b: string = ;\nreturn a;"
    r = execute(live, token, {"code": code, "language": "typescript"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is False
    assert body["result"] is None
    assert body["error"]["type"] == "SyntaxError"
    assert body["error"]["stack"] == "    at <code>:2:19"
    assert body["metrics"]["fuel"] == 0
    assert "transpileTime" in body["metrics"]
    assert usage_today(live, client_id)["errors"] == 1


def test_runtime_error_lines_match_the_typescript_source(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    code = "type T = { a: number };\nconst t: T | null = null;\n  (t as T).a;"
    body = execute(live, token, {"code": code, "language": "ts"}).json()
    assert body["error"]["type"] == "TypeError"
    assert "<code>:3:3" in body["error"]["stack"]


def test_runtime_errors_of_reprinted_code_point_at_the_typescript_source(
    live: LiveServer, client_id: str
) -> None:
    token = live.new_key(client_id)
    code = "enum E { A = 1 }\nconst t: any = null;\n  t.boom;"
    body = execute(live, token, {"code": code, "language": "typescript"}).json()
    assert body["error"]["type"] == "TypeError"
    assert body["error"]["stack"] == "    at <anonymous> (<code>:3:3)"


def test_hostile_nesting_is_a_transpile_limit_error(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    code = "return " + "(" * 30000 + "1" + ")" * 30000
    r = execute(live, token, {"code": code, "language": "typescript"})
    assert r.status_code == 200, r.text
    assert r.json()["error"]["type"] in {"TranspileLimitError", "SyntaxError"}
    ok = execute(live, token, {"code": TS_EXAMPLE, "language": "typescript"})
    assert ok.json()["result"] == 30


def test_without_the_stripper_typescript_is_503_and_javascript_still_runs(
    redis_server: str,
    module_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client_id: str,
) -> None:
    def unreachable(dest: Path, timeout_s: float = 0) -> Path:
        raise StripperUnavailable("npm registry unreachable (test)")

    monkeypatch.setattr(_ts_package, "find_tarball", lambda dirs: None)
    monkeypatch.setattr(_ts_package, "fetch", unreachable)
    server = start_server(make_settings(redis_server, tmp_path, module_cache_dir=module_cache))
    try:
        token = server.new_key(client_id)
        r = execute(server, token, {"code": TS_EXAMPLE, "language": "typescript"})
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["type"] == "TypeScriptUnavailable"
        assert "unreachable" in error["message"]
        assert r.headers["Retry-After"]
        js = execute(server, token, {"code": STRIPPED_EXAMPLE, "language": "javascript"})
        assert js.status_code == 200
        assert js.json()["result"] == 30
    finally:
        stop_server(server)
