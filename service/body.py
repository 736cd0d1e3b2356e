"""Reading a JSON request body with its size, type and nesting bounded before parsing."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request

from service.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

__all__ = ["json_depth_exceeds", "read_json_object"]


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON ``value`` nests deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The raw body, refusing more than ``max_bytes`` by header or by streamed size, and a
    body that has not fully arrived within ``timeout_s`` (a trickling client frees its
    connection with a 408)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("Content-Length is not a number", field="Content-Length") from None
        if size > max_bytes:
            raise PayloadTooLarge(f"request body is over {max_bytes} bytes", field="body")
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise PayloadTooLarge(f"request body is over {max_bytes} bytes", field="body")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} s") from None
    return b"".join(chunks)


async def read_json_object(
    request: Request, *, max_bytes: int, max_depth: int, timeout_s: float
) -> dict[str, Any]:
    """Parse the body as one JSON object, or raise the 4xx that says what is wrong."""
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType("Content-Type must be application/json", field="Content-Type")
    raw = await read_body(request, max_bytes, timeout_s)
    if not raw.strip():
        raise BadRequest("request body is empty; a JSON object is required", field="body")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(parsed, dict):
        raise BadRequest("request body must be a JSON object", field="body")
    if json_depth_exceeds(parsed, max_depth):
        raise BadRequest(f"request JSON nests deeper than {max_depth} levels", field="context")
    return parsed
