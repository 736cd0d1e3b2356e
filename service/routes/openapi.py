"""OpenAPI declarations of the error answers a route can give (the envelope of
:mod:`service.errors`), so that ``/openapi.json`` lists every status of every route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.schemas import ErrorEnvelope

__all__ = ["ADMIN_NOTES", "ERROR_TEXT", "READ_NOTES", "error_responses"]

ERROR_TEXT: dict[int, str] = {
    400: "Bad input (names the field)",
    401: "Missing or unknown key",
    402: "Budget exhausted (`error.remaining`: USD left for this run)",
    403: "Wrong client for this key",
    404: "Not found",
    408: "Body did not arrive in time",
    409: "X-Execution-ID reused with a different body",
    413: "Body too large",
    415: "Body is not JSON",
    429: "Rate limited (Retry-After)",
    503: "Overloaded or billing store down (Retry-After)",
}
"""What each status means, unless a route says more precisely."""

READ_NOTES: dict[int, str] = {
    400: "Bad query parameter, or clientId missing with the shared or admin key",
    403: "clientId is not this key's client",
    503: "Key store unreachable (Retry-After)",
}
"""Descriptions for the reads of one client's data (usage, ledger, receipts)."""

ADMIN_NOTES: dict[int, str] = {
    400: "Bad query parameter",
    403: "Not the admin key",
    503: "Key store unreachable (Retry-After)",
}
"""Descriptions for the admin endpoints."""


_OTHER = "Any other error in the same envelope (404 unknown path, 405 other method)"


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


_RETRY_AFTER = _header("Seconds to wait before retrying", "integer")
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": _header("`Bearer`")},
    429: {
        "Retry-After": _RETRY_AFTER,
        "RateLimit": _header('Rate-limiter 429s only: `"burst";r=0;t=<seconds>`'),
        "RateLimit-Policy": _header('Rate-limiter 429s only: `"burst";q=<burst>;w=<seconds>`'),
    },
    503: {"Retry-After": _RETRY_AFTER},
}


def error_responses(
    *statuses: int,
    notes: Mapping[int, str] | None = None,
    success: Mapping[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route for these error statuses; ``notes`` replace the
    default description of a status, ``success`` describes the route's 2xx answers."""
    notes = notes or {}
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": text} for status, text in (success or {}).items()
    }
    for status in statuses:
        response: dict[str, Any] = {
            "model": ErrorEnvelope,
            "description": notes.get(status, ERROR_TEXT[status]),
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        out[status] = response
    # also keeps FastAPI from listing a 422: validation errors are answered 400 here
    out["default"] = {"model": ErrorEnvelope, "description": _OTHER}
    return out
