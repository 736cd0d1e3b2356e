"""``POST /execute`` and its Worker-compatible alias ``POST /``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from service.body import read_json_object
from service.deps import authenticate
from service.routes.openapi import error_responses
from service.schemas import EXECUTION_ID_PATTERN, ExecuteRequest, ExecuteResponse
from service.streaming import stream_execution, wants_stream

__all__ = ["DirectRoute", "router"]


class DirectRoute(APIRoute):
    """Documented like any route, served without FastAPI's request handler: the endpoint takes
    the ``Request`` and returns a ``Response`` itself (it reads and checks its own body), so
    parameter solving and response validation, ~6 % of a trivial ``/execute``, are skipped."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return handler


router = APIRouter(tags=["execute"], route_class=DirectRoute)

_ERRORS = error_responses(400, 401, 402, 403, 408, 409, 413, 415, 429, 503)
_OK: dict[str, Any] = {
    "model": ExecuteResponse,
    "description": "The execution (also when the code threw or hit a limit). With "
    "`Accept: text/event-stream`: `output` events (one per console line, as written) then "
    "one `result` event holding this body.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
    "headers": {
        name: {"description": text, "schema": {"type": "string"}}
        for name, text in (
            ("X-Execution-ID", "The execution ID (the client's, or a generated one)"),
            ("X-Receipt-URL", "Where the signed receipt is fetched (JSON answers)"),
            ("RateLimit", 'Requests left: `"burst";r=<left>;t=<seconds to full>`'),
            ("RateLimit-Policy", 'The plan\'s bucket: `"burst";q=<burst>;w=<seconds>`'),
            ("Idempotent-Replayed", "`true` when a stored answer was replayed"),
        )
    },
}
_OPENAPI_EXTRA = {
    "parameters": [
        {
            "name": "X-Execution-ID",
            "in": "header",
            "required": False,
            "description": "Idempotency key: 1-128 chars of " + EXECUTION_ID_PATTERN,
            "schema": {"type": "string", "pattern": EXECUTION_ID_PATTERN},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ExecuteRequest.model_json_schema()}},
    },
}


async def execute(request: Request) -> Response:
    """Run JavaScript in a fresh sandbox and bill the caller's client for it."""
    services, caller = await authenticate(request)
    # Read directly (documented in _EXECUTION_ID_PARAMETER): a FastAPI Header parameter
    # costs a pydantic validation per request, and the pattern is checked by RequestCheck.
    x_execution_id = request.headers.get("x-execution-id")
    s = services.settings
    body = await read_json_object(
        request,
        max_bytes=s.max_body_bytes,
        max_depth=s.max_json_depth,
        timeout_s=s.body_timeout_s,
    )
    if wants_stream(request.headers.get("accept")):
        request.state.log = {"outcome": "streamed"}
        return await stream_execution(
            services.executor, caller, body, x_execution_id, services.metrics
        )
    done = await services.executor.execute(caller, body, x_execution_id)
    request.state.log = {
        "client": done.client_id,
        "outcome": done.outcome,
        "fuel": done.fuel,
        "cpu_ms": done.cpu_ms,
        "wall_ms": done.wall_ms,
    }
    headers = {"X-Execution-ID": done.execution_id, **done.headers}
    return Response(done.body, media_type="application/json", headers=headers)


async def noop(request: Request) -> Response:
    """Benchmark baseline: auth, body bounds and validation as ``/execute``, no run, no Redis."""
    services, _ = await authenticate(request)
    s = services.settings
    body = await read_json_object(
        request,
        max_bytes=s.max_body_bytes,
        max_depth=s.max_json_depth,
        timeout_s=s.body_timeout_s,
    )
    ExecuteRequest.model_validate(body)
    return Response(b'{"success":true,"result":null}', media_type="application/json")


def bench_router() -> APIRouter:
    """The no-op baseline of ``make bench`` (only when ``CODEXEC_BENCH_ENDPOINTS`` is set)."""
    bench = APIRouter(route_class=DirectRoute)
    bench.add_api_route("/v1/noop", noop, methods=["POST"], include_in_schema=False)
    return bench


for path, name in (("/execute", "execute"), ("/", "execute_worker_alias")):
    router.add_api_route(
        path,
        execute,
        methods=["POST"],
        name=name,
        response_model=None,
        responses={200: _OK, **_ERRORS},
        openapi_extra=_OPENAPI_EXTRA,
    )
