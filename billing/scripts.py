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
from typing import Any, TypeAlias, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ClusterDownError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "STORE_ERRORS",
    "UNREACHABLE",
    "AnyRedis",
    "lua_source",
    "register",
    "until",
    "within",
]

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
    return await until(asyncio.get_running_loop().time() + timeout_s, call)


async def until(deadline: float | None, call: Awaitable[T]) -> T:
    """Await ``call`` until loop time ``deadline`` (None: no bound), then raise
    :class:`TimeoutError`, even if the call ignores its cancellation.

    ``asyncio.timeout`` only cancels, and on Python 3.11 ``asyncio.wait_for``, which
    redis-py puts around every socket write when the client has a socket timeout, drops a
    cancellation that arrives just as the write completes: the call then goes on and waits
    for the reply, however late (seen: 1.55 s under a 0.4 s bound, with Redis paused). So the
    call runs as its own task, and at the deadline it is cancelled and left behind, not
    waited for (a reply it still gets is dropped, as for any abandoned round trip)."""
    if deadline is None:
        return await call
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait((task,), timeout=deadline - asyncio.get_running_loop().time())
    except BaseException:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise TimeoutError
    return task.result()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark an abandoned call's outcome as seen (no "exception never retrieved" log)."""
    if not task.cancelled():
        task.exception()
