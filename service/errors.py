"""Errors that are not executions, and the one place they become HTTP responses.

Tree::

    ServiceError                 status  type
    ├── BadRequest                 400   InvalidRequest (``field`` names the culprit)
    ├── Unauthorized               401   Unauthorized (+ WWW-Authenticate: Bearer)
    ├── PaymentRequired            402   QuotaExceeded
    ├── Forbidden                  403   Forbidden
    ├── NotFound                   404   NotFound
    ├── RequestTimeout             408   RequestTimeout (body not received in time)
    ├── Conflict                   409   IdempotencyConflict
    ├── PayloadTooLarge            413   PayloadTooLarge
    ├── UnsupportedMediaType       415   UnsupportedMediaType
    ├── RateLimited                429   RateLimited (+ Retry-After)
    └── Unavailable                503   Overloaded / StoreUnavailable (+ Retry-After)

Exceptions of :mod:`billing` and :mod:`sandbox` are translated by :data:`TRANSLATIONS`;
anything else is a bug and answers a JSON 500 without details.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from billing.errors import (
    BillingError,
    IdempotencyConflict,
    QuotaExceeded,
    RateLimitExceeded,
    StoreUnavailable,
    UnknownPlan,
)
from sandbox.errors import CodeTooLarge, InvalidContext, SandboxError

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "PaymentRequired",
    "RateLimited",
    "RequestTimeout",
    "ServiceError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "error_response",
    "install_error_handlers",
    "rate_limit_headers",
    "validation_error",
]

log = logging.getLogger("codexec.errors")


class ServiceError(Exception):
    """An answer other than an execution result."""

    status: int = 500
    type: str = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if type is not None:
            self.type = type
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(ServiceError):
    """Malformed or out-of-range input."""

    status, type = 400, "InvalidRequest"


class Unauthorized(ServiceError):
    """No key, or a key that is unknown or revoked."""

    status, type = 401, "Unauthorized"

    def __init__(self, message: str = "a valid Bearer API key is required") -> None:
        super().__init__(message, field="Authorization", headers={"WWW-Authenticate": "Bearer"})


class PaymentRequired(ServiceError):
    """The client's budget is spent."""

    status, type = 402, "QuotaExceeded"


class Forbidden(ServiceError):
    """Authenticated, but not allowed to do this."""

    status, type = 403, "Forbidden"


class NotFound(ServiceError):
    """No such route or object."""

    status, type = 404, "NotFound"


class RequestTimeout(ServiceError):
    """The request body did not arrive in time."""

    status, type = 408, "RequestTimeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="body", headers={"Connection": "close"})


class Conflict(ServiceError):
    """An execution ID reused with a different body."""

    status, type = 409, "IdempotencyConflict"


class PayloadTooLarge(ServiceError):
    """The request body is over the configured size."""

    status, type = 413, "PayloadTooLarge"


class UnsupportedMediaType(ServiceError):
    """The body is not ``application/json``."""

    status, type = 415, "UnsupportedMediaType"


def rate_limit_headers(
    limit: int, window_s: int, *, remaining: int, reset_s: int
) -> dict[str, str]:
    """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers, structured
    fields) of a client's token bucket: the policy ``"burst"`` allows ``q`` requests, refilled
    over ``w`` seconds; ``r`` are left and ``t`` seconds bring the bucket back to full."""
    return {
        "RateLimit-Policy": f'"burst";q={limit};w={window_s}',
        "RateLimit": f'"burst";r={max(0, remaining)};t={max(0, reset_s)}',
    }


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class RateLimited(ServiceError):
    """Too many requests for the client's plan."""

    status, type = 429, "RateLimited"

    def __init__(
        self, retry_after: float, *, limit: int | None = None, window_s: int | None = None
    ) -> None:
        headers = _retry_after(retry_after)
        if limit is not None and window_s is not None:
            wait = int(headers["Retry-After"])
            headers.update(rate_limit_headers(limit, window_s, remaining=0, reset_s=wait))
        super().__init__("rate limit exceeded for this client's plan", headers=headers)


class Unavailable(ServiceError):
    """No capacity right now, or the billing store is down."""

    status, type = 503, "Overloaded"

    def __init__(self, message: str, *, type: str = "Overloaded", retry_after: float = 1) -> None:
        super().__init__(message, type=type, headers=_retry_after(retry_after))


def _from_quota(exc: BaseException) -> ServiceError:
    remaining = getattr(exc, "remaining", "0")
    return PaymentRequired(str(exc), extra={"remaining": str(remaining)})


# Foreign exceptions -> service errors, most specific first (matched by isinstance).
TRANSLATIONS: tuple[tuple[type[BaseException], Callable[[BaseException], ServiceError]], ...] = (
    (QuotaExceeded, _from_quota),
    (
        RateLimitExceeded,
        lambda e: RateLimited(
            getattr(e, "retry_after", 1.0),
            limit=getattr(e, "limit", None),
            window_s=getattr(e, "window_s", None),
        ),
    ),
    (IdempotencyConflict, lambda e: Conflict(str(e), field="X-Execution-ID")),
    (
        StoreUnavailable,
        lambda e: Unavailable(str(e), type="StoreUnavailable", retry_after=5),
    ),
    (UnknownPlan, lambda e: Forbidden(str(e))),
    (CodeTooLarge, lambda e: BadRequest(str(e), field="code")),
    (InvalidContext, lambda e: BadRequest(str(e), field="context")),
    (BillingError, lambda e: Unavailable("billing store error", type="StoreUnavailable")),
    (
        RedisError,
        lambda e: Unavailable(
            "the billing store is unreachable", type="StoreUnavailable", retry_after=5
        ),
    ),
    (SandboxError, lambda e: Unavailable("sandbox unavailable", type="SandboxUnavailable")),
)


def translate(exc: BaseException) -> ServiceError | None:
    """The service error for a foreign exception, or None if it is not one we know."""
    if isinstance(exc, ServiceError):
        return exc
    for cls, make in TRANSLATIONS:
        if isinstance(exc, cls):
            return make(exc)
    return None


def error_response(err: ServiceError) -> Response:
    """The contract's JSON envelope for ``err``."""
    body: dict[str, Any] = {"type": err.type, "message": err.message}
    if err.field is not None:
        body["field"] = err.field
    body.update(err.extra)
    return Response(
        orjson.dumps({"success": False, "error": body}),
        status_code=err.status,
        media_type="application/json",
        headers=err.headers,
    )


def validation_error(errors: Sequence[Any]) -> BadRequest:
    """A 400 naming the first offending field of pydantic/FastAPI validation errors."""
    if not errors:
        return BadRequest("invalid request")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "header", "path")]
    field = ".".join(loc) or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return BadRequest(f"{field or 'request'}: {message}", field=field or "body")


def install_error_handlers(app: FastAPI) -> None:
    """Register the one mapping from exceptions to responses."""

    async def on_service_error(request: Request, exc: Exception) -> Response:
        err = translate(exc)
        if err is None:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            err = ServiceError("internal error")
        return error_response(err)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        mapping: dict[int, type[ServiceError]] = {404: NotFound, 405: BadRequest}
        cls = mapping.get(exc.status_code, ServiceError)
        err = cls(str(exc.detail))
        err.status = exc.status_code
        if exc.status_code == 405:
            err.type = "MethodNotAllowed"
        return error_response(err)

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(BillingError, on_service_error)
    app.add_exception_handler(SandboxError, on_service_error)
    app.add_exception_handler(RedisError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_service_error)
