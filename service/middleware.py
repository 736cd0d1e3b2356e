"""Pure-ASGI middleware: request ID, HTTP metrics by route template, one log line."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import log_request
from service.metrics import Metrics
from service.schemas import EXECUTION_ID_RE

__all__ = ["RequestLogMiddleware"]


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if EXECUTION_ID_RE.fullmatch(text):  # same alphabet and length as execution IDs
                return text
    return secrets.token_hex(16)


class RequestLogMiddleware:
    """Measures and logs every HTTP request; handlers add fields via ``request.state.log``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.http_requests.labels(template, method, str(status)).inc()
            self.metrics.http_seconds.labels(template).observe(elapsed)
            state: Any = scope.get("state") or {}
            extra = state.get("log", {}) if isinstance(state, dict) else {}
            log_request(
                request_id=request_id,
                method=method,
                route=template,
                status=status,
                duration_ms=elapsed * 1000,
                **extra,
            )
