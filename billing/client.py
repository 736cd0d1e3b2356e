"""The one way codexec connects to Redis: standalone or Cluster, tuned for a quick failover.

Short socket timeouts and a single retry make a dead Redis surface within about a second,
so usage goes to the spool at once instead of after long retries; the standalone client
waits for a free pooled connection instead of failing when all are busy.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from billing.scripts import AnyRedis

__all__ = ["connect"]


def connect(url: str, *, cluster: bool = False, max_connections: int = 64) -> AnyRedis:
    """A client for ``url`` (a Redis Cluster seed node when ``cluster``)."""
    if cluster:
        return RedisCluster.from_url(
            url,
            max_connections=max_connections,
            socket_connect_timeout=1,
            socket_timeout=2,
            retry=Retry(NoBackoff(), 1),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_connect_timeout=1,
        socket_timeout=2,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )
    return aioredis.Redis.from_pool(pool)
