"""Reading usage records back: find them (SCAN on every master) and fetch them in bulk.

Finding "all clients" uses SCAN with ``MATCH usage:{*}:*``; on a Redis Cluster the client's
``scan_iter`` walks every master, so no separate ``clients`` index is kept (an index set would
live in one slot of its own and could not be updated by the single-slot record script).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from billing import keys
from billing.scripts import AnyRedis
from billing.totals import UsageTotals

__all__ = ["StoredRecord", "fetch_records", "scan_usage_keys"]

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One usage record as stored: whose, which period, the totals and the TTL (s, 0 = none)."""

    client_id: str
    period: str
    totals: UsageTotals
    ttl_s: int = 0


async def scan_usage_keys(redis: AnyRedis, client_id: str | None = None) -> list[str]:
    """Names of every usage record (of one client, or of all), sorted."""
    pattern = keys.USAGE_SCAN_PATTERN if client_id is None else keys.usage_pattern(client_id)
    found: set[str] = set()
    async for raw in redis.scan_iter(match=pattern, count=1000):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if keys.parse_usage_key(name) is not None:
            found.add(name)
    return sorted(found)


async def fetch_records(
    redis: AnyRedis, names: Iterable[str], *, with_ttl: bool = False
) -> list[StoredRecord]:
    """HGETALL (and TTL if asked) of the given usage keys in one pipeline; absent ones skipped."""
    names = list(names)
    out: list[StoredRecord] = []
    step = 2 if with_ttl else 1
    for start in range(0, len(names), _BATCH):
        batch = names[start : start + _BATCH]
        pipe = redis.pipeline(transaction=False)
        for name in batch:
            pipe.hgetall(name)
            if with_ttl:
                pipe.ttl(name)
        replies = await pipe.execute()
        for i, name in enumerate(batch):
            raw = replies[i * step]
            parsed = keys.parse_usage_key(name)
            if not raw or parsed is None:
                continue
            ttl = max(int(replies[i * step + 1]), 0) if with_ttl else 0
            out.append(StoredRecord(parsed[0], parsed[1], UsageTotals.from_hash(raw), ttl))
    return out
