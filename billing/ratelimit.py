"""Per-client rate limit: a token bucket in Redis (``lua/ratelimit.lua``, ``rate:{client}``).

The bucket holds up to ``burst`` tokens and refills at ``rate_per_second``; each request
takes one. The script reads the server's clock (``TIME``), so replicas with skewed clocks
agree. While Redis is unreachable requests are allowed.
"""

from __future__ import annotations

import logging

from billing import keys
from billing.scripts import UNREACHABLE, AnyRedis, register

__all__ = ["RateLimiter"]

log = logging.getLogger("codexec.billing.ratelimit")


class RateLimiter:
    """Token buckets keyed by client."""

    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis
        self._take = register(redis, "ratelimit")

    async def acquire(self, client_id: str, rate_per_second: float, burst: int) -> float:
        """Take one token: 0.0 if allowed, else the seconds to wait (for ``Retry-After``)."""
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("rate_per_second must be > 0 and burst >= 1")
        try:
            wait_ms = await self._take(
                keys=[keys.rate(client_id)], args=[repr(float(rate_per_second)), burst, 1]
            )
        except UNREACHABLE:
            log.warning("rate limit skipped: Redis unreachable")
            return 0.0
        return int(wait_ms) / 1000.0
