"""Held connections for one script's round trips, with its commands packed in one step.

redis-py's generic command path costs about 25-30 us of client CPU per call on the reference
machine (pool check-out with its condition and health check, per-argument encoding, a
``wait_for`` around every socket operation). :class:`Lanes` holds ``size`` of the client's
pooled connections, with their socket timeout lifted: one ``asyncio.timeout`` of the same
length bounds the whole round trip instead. Replies are read with redis-py's
parser (hiredis when installed), so errors arrive as the usual exception classes
(``NoScriptError`` ...), each returned in its command's place.

A lane whose round trip fails or is cancelled is disconnected (its stream may hold half a
reply: redis-py's ``Connection`` drops itself on any error or cancellation while writing or
reading) and connects again on its next use. A connection error is retried once on the
reconnected lane, as the client's own ``Retry`` would: the scripts sent through lanes must
therefore be safe to run twice (``lua/record.lua`` is: its execution-ID claim makes a
second run a no-op that returns the first answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.typing import EncodableT

__all__ = ["Lanes", "pack"]


def pack(args: Sequence[EncodableT]) -> bytes:
    """One command in RESP (an array of bulk strings); ints and floats as their decimal text."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Lanes:
    """Up to ``size`` concurrent round trips on connections held for them.

    The connections are taken from the client's pool on first use and kept (closing the
    client's pool closes them too); the caller keeps at most ``size`` round trips in flight
    (``ScriptBatcher`` does)."""

    def __init__(self, redis: Redis, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.redis = redis
        self.size = size
        timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        self.timeout_s: float | None = float(timeout) if timeout else None
        self._idle: list[AbstractConnection] = []
        self._held: list[AbstractConnection] = []

    async def _lane(self) -> AbstractConnection:
        if self._idle:
            return self._idle.pop()
        if len(self._held) >= self.size:
            raise RuntimeError("more round trips in flight than lanes")
        lane: AbstractConnection = await self.redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        lane.socket_timeout = None  # bounded by one asyncio.timeout per round trip instead
        self._held.append(lane)
        return lane

    async def round_trip(self, packed: bytes, replies: int) -> list[Any]:
        """Send ``packed`` (``replies`` commands); their replies, an error in place of each
        command Redis refused. Raises on a failed connection (after one retry) or timeout."""
        lane = await self._lane()
        try:
            try:
                return await self._exchange(lane, packed, replies)
            except RedisConnectionError:
                return await self._exchange(lane, packed, replies)
        finally:
            self._idle.append(lane)

    async def _exchange(self, lane: AbstractConnection, packed: bytes, replies: int) -> list[Any]:
        # redis-py's send_packed_command and read_response disconnect the connection themselves
        # on any other exception, cancellation included (tested end to end here)
        async with asyncio.timeout(self.timeout_s):
            await lane.send_packed_command(packed, check_health=False)
            out: list[Any] = []
            for _ in range(replies):
                try:
                    out.append(await lane.read_response())
                except ResponseError as exc:
                    out.append(exc)
            return out

    async def aclose(self) -> None:
        """Give the held connections back to the client's pool."""
        held, self._held, self._idle = self._held, [], []
        for lane in held:
            lane.socket_timeout = self.timeout_s
            await self.redis.connection_pool.release(lane)
