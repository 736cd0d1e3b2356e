"""Group commit for one Lua script: concurrent calls share one pipelined round trip.

:class:`ScriptBatcher` runs ``EVALSHA`` of one script for many callers. A call made while
fewer than ``max_in_flight`` round trips are outstanding (and nobody is queued) is sent at
once, alone, so a lone caller pays no extra latency. Calls made while the limit is reached
wait in a queue; when a round trip completes, everything queued (up to ``max_batch``) goes out
as ONE non-transactional pipeline. Each caller awaits its own reply: a per-command error
(``raise_on_error=False``) reaches only its caller, a failure of the whole round trip
(connection lost, timeout) reaches every caller of that batch. Each command is still its own
atomic script run; batching only saves client work and round trips.

With a standalone ``redis.asyncio.Redis`` the round trips go through
:class:`~billing.lanes.Lanes` (connections held for this script, commands packed in one step),
so the script must be safe to run twice (a lost reply is retried once). With ``RedisCluster``
they go through its pipeline, which routes each ``EVALSHA`` by its keys and sends one
pipeline per node. A ``NOSCRIPT`` reply (server restarted or a new cluster node) loads the
script and resends only those commands, which did not run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from billing.lanes import Lanes, pack
from billing.scripts import AnyRedis

__all__ = ["ScriptBatcher"]

Command = tuple[EncodableT, ...]
"""``numkeys, *keys, *args`` of one script call."""


class ScriptBatcher:
    """Calls of one script, sent alone when idle and pipelined when concurrent."""

    def __init__(
        self, redis: AnyRedis, source: str, *, max_in_flight: int = 1, max_batch: int = 256
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self._queue: list[tuple[Command, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._lanes = Lanes(redis, max_in_flight) if isinstance(redis, Redis) else None

    async def aclose(self) -> None:
        """Close the connections held for this script (standalone Redis)."""
        if self._lanes is not None:
            await self._lanes.aclose()

    async def __call__(self, command: Command) -> Any:
        """The script's reply to ``command``; raises what Redis raised for it."""
        if self._in_flight >= self.max_in_flight or self._queue:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((command, future))
            return await future
        self._in_flight += 1
        try:
            return await self._one(command)
        finally:
            self._in_flight -= 1
            self._kick()

    async def _one(self, command: Command) -> Any:
        if self._lanes is not None:
            reply = (await self._on_lanes([command]))[0]
            if isinstance(reply, BaseException):
                raise reply
            return reply
        try:
            return await self.redis.execute_command("EVALSHA", self.sha, *command)
        except NoScriptError:
            await self.redis.script_load(self.source)
            return await self.redis.execute_command("EVALSHA", self.sha, *command)

    async def _on_lanes(self, commands: Sequence[Command]) -> list[Any]:
        assert self._lanes is not None
        head = (b"EVALSHA", self.sha)
        replies = await self._lanes.round_trip(
            b"".join(pack((*head, *c)) for c in commands), len(commands)
        )
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.redis.script_load(self.source)
            again = await self._lanes.round_trip(
                b"".join(pack((*head, *commands[i])) for i in missing), len(missing)
            )
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        if self._lanes is not None:
            return await self._on_lanes(commands)
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command("EVALSHA", self.sha, *command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.redis.script_load(self.source)
            pipe = self.redis.pipeline(transaction=False)
            for i in missing:
                pipe.execute_command("EVALSHA", self.sha, *commands[i])
            for i, reply in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        return replies

    def _kick(self) -> None:
        """Send what is queued, as long as the in-flight limit allows."""
        while self._queue and self._in_flight < self.max_in_flight:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        try:
            commands = [command for command, _ in batch]
            if len(commands) == 1:
                try:
                    replies: list[Any] = [await self._one(commands[0])]
                except Exception as exc:  # handed to its caller
                    replies = [exc]
            else:
                replies = await self._pipeline(commands)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the whole round trip failed
            replies = [exc] * len(batch)
        finally:
            self._in_flight -= 1
            self._kick()
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)
