"""Pure pieces of the service: settings, body bounds, rendering, auth header parsing."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.pricing import Charge
from sandbox import ExecError, Result
from service.auth import bearer_token
from service.body import json_depth_exceeds
from service.config import Settings
from service.errors import Unauthorized
from service.schemas import ExecuteRequest, render_execution

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@given(json_values, st.integers(min_value=1, max_value=6))
def test_depth_check_matches_recursive_definition(value: object, limit: int) -> None:
    assert json_depth_exceeds(value, limit) == (depth(value) > limit)


def test_depth_check_handles_very_deep_input_without_recursion() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(100_000):
        child: list[object] = []
        node.append(child)
        node = child
    assert json_depth_exceeds(deep, 64)


def test_production_refuses_wildcard_cors_and_missing_admin_key() -> None:
    with pytest.raises(ValidationError, match="CORS"):
        Settings(environment="production", admin_key="k" * 32, cors_origins="*")
    with pytest.raises(ValidationError, match="ADMIN_KEY"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="24 characters"):
        Settings(environment="production", admin_key="short")
    ok = Settings(environment="production", admin_key="k" * 32, cors_origins="https://a.example")
    assert ok.cors_origins == ["https://a.example"]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEXEC_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CODEXEC_WORKERS", "2")
    monkeypatch.setenv("CODEXEC_MAINTENANCE_CRON", "off")
    s = Settings()
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.workers == 2
    assert s.maintenance_cron is None
    monkeypatch.setenv("CODEXEC_MAINTENANCE_CRON", "every tuesday")
    with pytest.raises(ValidationError, match="cron"):
        Settings()


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Token abc", "bearer" + " x" * 600]
)
def test_bearer_token_refuses_malformed_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_token_accepts_any_case_scheme() -> None:
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Bearer  abc ") == "abc"


def test_request_defaults_and_language_rules() -> None:
    r = ExecuteRequest.model_validate({"code": "return 1", "language": "JS", "extra": 1})
    assert (r.language, r.timeout, r.memoryLimit, r.context) == ("js", 5000, 52_428_800, {})
    with pytest.raises(ValidationError, match="supported: javascript, js"):
        ExecuteRequest.model_validate({"code": "x", "language": "python"})
    with pytest.raises(ValidationError, match="fs"):
        ExecuteRequest.model_validate({"code": "x", "allowedModules": ["fs"]})
    with pytest.raises(ValidationError):
        ExecuteRequest.model_validate({"code": "x", "timeout": True})


def run_result(**changes: object) -> Result:
    base: dict[str, object] = {
        "ok": True,
        "result_json": '{"a":1}',
        "output": ("x",),
        "error": None,
        "fuel": 73511,
        "cpu_ms": 0.3,
        "wall_ms": 0.41234,
        "peak_memory": 262144,
        "random_seed": 1,
        "rebuilt": False,
    }
    base.update(changes)
    return Result(**base)  # type: ignore[arg-type]


def test_render_execution_keeps_cost_exact() -> None:
    charge = Charge(Decimal("0.33"), Decimal("0.0250049"), Decimal("0.00000210000000004"))
    body = orjson.loads(render_execution("e1", run_result(), charge))
    assert body["result"] == {"a": 1}
    assert body["output"] == ["x"]
    assert body["error"] is None
    assert body["metrics"]["cost"] == pytest.approx(0.0000021)
    assert body["metrics"]["executionTime"] == 0.412
    exact = Charge(Decimal(0), Decimal(0), Decimal("0.0000021"))
    assert b'"cost":0.0000021' in render_execution("e1", run_result(), exact)


def test_render_execution_error_shape() -> None:
    failed = run_result(
        ok=False, result_json="null", error=ExecError("TypeError", "x is null", "at <code>:1")
    )
    body = orjson.loads(render_execution("e2", failed, Charge(Decimal(0), Decimal(0), Decimal(0))))
    assert body["success"] is False
    assert body["result"] is None
    assert body["error"] == {"type": "TypeError", "message": "x is null", "stack": "at <code>:1"}


def test_context_limit_counts_utf8_bytes_on_every_path() -> None:
    """``max_context_bytes`` is bytes of UTF-8 JSON for /execute and async submissions alike."""
    from billing.plans import Plans
    from service.errors import BadRequest
    from service.validation import RequestCheck

    check = RequestCheck(Settings(max_context_bytes=20), Plans.load())
    ascii_ctx = ExecuteRequest.model_validate({"code": "1", "context": {"a": "x" * 12}})
    assert check.context_json(ascii_ctx) == '{"a":"xxxxxxxxxxxx"}'  # 20 bytes: at the limit
    wide = ExecuteRequest.model_validate({"code": "1", "context": {"a": "é" * 12}})
    with pytest.raises(BadRequest) as refused:  # 20 characters, 32 bytes
        check.context_json(wide)
    assert refused.value.field == "context"


def test_equal_requests_share_one_limits_object_per_plan() -> None:
    """The sandbox derives its per-run set-up once per ``Limits`` object, so equal requests
    get the same one; different limits, or a reloaded plan, get their own."""
    from billing.plans import Plan, Plans
    from sandbox import Limits
    from service.validation import RequestCheck

    plans = Plans.load()
    check = RequestCheck(Settings(), plans)
    plan = plans.get(plans.default_name)

    def limits(body: dict[str, object], p: Plan = plan) -> Limits:
        return check.limits(ExecuteRequest.model_validate(body), p)

    first = limits({"code": "1", "timeout": 1000})
    assert limits({"code": "2", "timeout": 1000}) is first
    other = limits({"code": "1", "timeout": 2000})
    assert other is not first
    assert other.timeout_ms == 2000
    assert limits({"code": "1", "timeout": 1000, "allowedModules": ["path"]}) is not first
    reloaded = Plans.load()
    again = limits({"code": "1", "timeout": 1000}, reloaded.get(reloaded.default_name))
    assert again is not first
    assert again == first
