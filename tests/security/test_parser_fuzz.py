"""Arbitrary input to the Python-side parsers ends in their clean error class, nothing else.

``make test`` runs a few examples each; ``make fuzz`` sets ``CODEXEC_FUZZ_EXAMPLES`` high.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.requests import Request

from billing.errors import FormatError
from billing.kvformat import parse_file
from billing.plans import Plans
from service.body import read_json_object
from service.errors import ServiceError, validation_error
from service.schemas import ExecuteRequest

EXAMPLES = int(os.environ.get("CODEXEC_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)

i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what orjson can write
json_values = st.recursive(
    st.none() | st.booleans() | i64 | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
# Objects shaped like the real inputs, so the fuzz gets past the first type check.
execute_like = st.fixed_dictionaries(
    {},
    optional={
        "code": st.one_of(st.text(max_size=50), json_values),
        "language": st.one_of(st.sampled_from(["javascript", "JS ", "python", ""]), json_values),
        "timeout": st.one_of(i64, json_values),
        "memoryLimit": st.one_of(i64, json_values),
        "allowedModules": st.one_of(st.lists(st.text(max_size=5), max_size=3), json_values),
        "context": json_values,
        "clientId": st.one_of(st.text(max_size=10), json_values),
    },
)
plan_like = st.fixed_dictionaries(
    {},
    optional={
        "max_timeout_ms": json_values | i64,
        "max_memory_bytes": json_values | i64,
        "allowed_modules": json_values,
        "price_per_execution": st.one_of(st.text(max_size=8), st.decimals().map(str), json_values),
        "price_per_cpu_second": st.one_of(st.decimals().map(str), json_values),
        "price_per_mb": st.one_of(st.decimals().map(str), json_values),
        "monthly_budget": st.one_of(st.none(), st.decimals().map(str), json_values),
        "rate_per_second": json_values | i64,
        "burst": json_values | i64,
    },
)
plans_like = st.fixed_dictionaries(
    {},
    optional={
        "default": st.one_of(st.sampled_from(["p", "q"]), json_values),
        "plans": st.one_of(st.dictionaries(st.sampled_from(["p", "q"]), plan_like), json_values),
    },
)
kv_value_like = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(i64, st.floats(allow_nan=False), st.text(max_size=30), json_values)
        for name in (
            "executions",
            "errors",
            "cpuMs",
            "wallMs",
            "fuel",
            "memoryMb",
            "computeUnits",
            "cost",
            "updatedAt",
        )
    },
)
kv_pair_like = st.fixed_dictionaries(
    {},
    optional={
        "key": st.one_of(
            st.builds(
                lambda c, p: f"usage:{c}:{p}",
                st.text(max_size=10),
                st.sampled_from(["2026-11-26", "2026-11", "2026-13", "x"]),
            ),
            json_values,
        ),
        "value": st.one_of(kv_value_like.map(lambda v: orjson.dumps(v).decode()), json_values),
        "expiration_ttl": json_values | i64,
        "metadata": json_values,
        "base64": json_values,
    },
)


def _request(body: bytes, content_type: str) -> Request:
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/execute",
        "headers": [(b"content-type", content_type.encode("latin-1"))],
    }
    return Request(scope, receive)


def _through_the_route(body: bytes, content_type: str) -> None:
    """What ``POST /execute`` does before running anything: read, parse, validate; every
    refusal must be a 4xx ServiceError (anything else propagates and fails the test)."""
    status = 200
    try:
        parsed = asyncio.run(
            read_json_object(_request(body, content_type), max_bytes=4096, max_depth=8, timeout_s=5)
        )
        ExecuteRequest.model_validate(parsed)
    except ServiceError as exc:
        status = exc.status
    except ValidationError as exc:
        status = validation_error(exc.errors()).status
    assert status == 200 or 400 <= status < 500


@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "application/x+json", "text/plain", ""]),
)
def test_arbitrary_bytes_as_request_body(body: bytes, content_type: str) -> None:
    _through_the_route(body, content_type)


@FUZZ
@given(body=st.one_of(execute_like, json_values))
def test_json_request_bodies(body: Any) -> None:
    _through_the_route(orjson.dumps(body), "application/json")


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.lists(kv_pair_like, max_size=4).map(orjson.dumps),
                      json_values.map(orjson.dumps)))  # fmt: skip
def test_kv_import_files(data: bytes) -> None:
    try:
        records = parse_file(data, "fuzz.json")
    except FormatError:
        return
    assert isinstance(records, list)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), plans_like.map(orjson.dumps),
                      json_values.map(orjson.dumps)))  # fmt: skip
def test_plan_files(data: bytes) -> None:
    try:
        plans = Plans.parse(data, "fuzz.json")
    except FormatError:
        return
    assert plans.default.name in plans.names
