"""The embedded redis-server starts, answers and stops."""

from __future__ import annotations

from pathlib import Path

import redis

from billing.embedded import EmbeddedRedis


def test_embedded_redis_round_trip(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, persist=False) as server:
        client = redis.Redis.from_url(server.url)
        assert client.incr("k") == 1
        client.close()
    assert not server.running
