"""The Redis client type billing accepts, its Lua scripts, and which errors mean "Redis is down".

Every store takes a ``redis.asyncio.Redis`` or a ``redis.asyncio.cluster.RedisCluster``
created with ``decode_responses=False`` (the default). For the spool to take over quickly
during an outage, give the client short timeouts and few retries, e.g.
``Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1))``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from importlib import resources
from typing import TypeAlias, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ClusterDownError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["STORE_ERRORS", "UNREACHABLE", "AnyRedis", "lua_source", "register", "within"]

T = TypeVar("T")

AnyRedis: TypeAlias = "Redis | RedisCluster"
"""A standalone or a cluster asyncio client."""

UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    ConnectionError,
    TimeoutError,
)
"""Errors that mean the store cannot be reached right now (reads degrade on these)."""

STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, ConnectionError, TimeoutError)
"""Errors on which a usage record goes to the spool instead (any Redis failure)."""


def lua_source(name: str) -> str:
    """The text of ``billing/lua/<name>.lua``."""
    return resources.files("billing").joinpath("lua", f"{name}.lua").read_text()


def register(redis: AnyRedis, name: str) -> AsyncScript:
    """Register ``billing/lua/<name>.lua`` on ``redis`` (EVALSHA, loaded on first use)."""
    return redis.register_script(lua_source(name))


async def within(timeout_s: float | None, call: Awaitable[T]) -> T:
    """Await ``call``, raising :class:`TimeoutError` after ``timeout_s`` (None: no bound).

    Stores that usually answer from local state bound only their round trips with this, so
    a request that needs none pays no timer."""
    if timeout_s is None:
        return await call
    async with asyncio.timeout(timeout_s):
        return await call
