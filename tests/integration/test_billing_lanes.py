"""Held connections for script round trips (billing/lanes.py), against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from billing.lanes import Lanes, pack


async def test_replies_in_order_with_errors_in_place(redis_client: aioredis.Redis) -> None:
    lanes = Lanes(redis_client, 1)
    packed = b"".join(
        pack(c) for c in (("SET", "n", "x"), ("INCR", "n"), ("SET", "m", "5"), ("INCR", "m"))
    )
    replies = await lanes.round_trip(packed, 4)
    assert replies[0] is True or replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError)
    assert replies[2] in (True, b"OK")
    assert replies[3] == 6
    await lanes.aclose()


async def test_a_killed_connection_is_replaced_and_the_call_retried_once(
    redis_client: aioredis.Redis,
) -> None:
    lanes = Lanes(redis_client, 1)
    assert await lanes.round_trip(pack(("CLIENT", "SETNAME", "lane")), 1) in ([True], [b"OK"])
    killed = await redis_client.execute_command(  # type: ignore[no-untyped-call]
        "CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"
    )
    assert killed >= 1
    assert await lanes.round_trip(pack(("INCR", "after-kill")), 1) == [1]
    assert await redis_client.get("after-kill") == b"1"  # sent once, not twice
    await lanes.aclose()


async def test_a_cancelled_round_trip_never_hands_its_reply_to_the_next(
    redis_client: aioredis.Redis,
) -> None:
    lanes = Lanes(redis_client, 1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await lanes.round_trip(pack(("BLPOP", "nothing-here", "0.3")), 1)
    await redis_client.rpush("nothing-here", "late")  # BLPOP's connection is gone
    assert await lanes.round_trip(pack(("PING",)), 1) in ([True], [b"PONG"])
    assert await redis_client.lrange("nothing-here", 0, -1) == [b"late"]
    await lanes.aclose()


async def test_the_clients_socket_timeout_bounds_a_round_trip(redis_server: str) -> None:
    client = aioredis.Redis.from_url(redis_server, socket_timeout=0.1)
    try:
        lanes = Lanes(client, 1)
        assert lanes.timeout_s == pytest.approx(0.1)
        with pytest.raises(TimeoutError):
            await lanes.round_trip(pack(("BLPOP", "still-nothing", "1")), 1)
        assert await lanes.round_trip(pack(("PING",)), 1) in ([True], [b"PONG"])
        await lanes.aclose()
    finally:
        await client.aclose()


async def test_more_round_trips_than_lanes_is_a_bug_not_a_hang(
    redis_client: aioredis.Redis,
) -> None:
    lanes = Lanes(redis_client, 1)
    slow = asyncio.create_task(lanes.round_trip(pack(("BLPOP", "x", "0.2")), 1))
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="more round trips"):
        await lanes.round_trip(pack(("PING",)), 1)
    assert await slow == [None]
    await lanes.aclose()


async def test_held_connections_go_back_to_the_pool(redis_client: aioredis.Redis) -> None:
    pool = redis_client.connection_pool
    lanes = Lanes(redis_client, 2)
    first = asyncio.create_task(lanes.round_trip(pack(("BLPOP", "y", "0.1")), 1))
    await asyncio.sleep(0.02)
    await lanes.round_trip(pack(("PING",)), 1)
    await first
    in_use = len(pool._in_use_connections)
    assert in_use == 2
    await lanes.aclose()
    assert len(pool._in_use_connections) == 0
