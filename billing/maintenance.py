"""The maintenance job (``codexec billing rollup``, or the service's cron): rollup and expiry.

For every client with usage records, with ``cutoff = today - retention_days`` (UTC):

1. **Recompute monthly records from daily ones**, for each month that has daily records
   and whose first day is on or after the cutoff (so none of its days has expired yet). One
   atomic script per (client, month) sums the days exactly (``lua/rollup.lua``, reading both
   the packed and the older plain layout, see :mod:`billing.totals`) and rewrites the month
   in the packed layout; months partly past the cutoff are left as they are (their days are
   gone).
2. **Expire daily records** of days before the cutoff (DEL). Monthly records are kept.
3. **Trim the ledger** stream by time: entries whose stream ID is older than the cutoff
   (less :data:`~billing.ledger.SKEW_MS`) go, with their ``ledgerid:{client}`` index
   fields, ``lua/trim.lua`` removing at most :data:`TRIM_BATCH` entries per call. The
   record script does not trim (an optional MAXLEN cap aside), so between two runs a
   stream grows by what the client records in that time: bounded by the retention plus
   the job's period (6 h by default); each run's work is proportional to what expired.

Running it twice in a row changes nothing the second time. The service's maintenance job
runs :func:`billing.reconcile.reconcile` after it.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from billing import keys
from billing.ledger import SKEW_MS, ledger_clients
from billing.records import scan_usage_keys
from billing.scripts import AnyRedis, register

__all__ = ["TRIM_BATCH", "RollupSummary", "rollup", "trim_ledger"]

TRIM_BATCH = 1000
"""Ledger entries removed per trim script call (keeps each call short)."""


@dataclass(frozen=True, slots=True)
class RollupSummary:
    """What one run did."""

    clients: int
    months_recomputed: int
    months_changed: int
    daily_expired: int
    ledger_trimmed: int


def _days_of(month: str) -> list[str]:
    first = keys.parse_period(month)
    n = calendar.monthrange(first.year, first.month)[1]
    return [keys.day_period(first + timedelta(days=i)) for i in range(n)]


async def trim_ledger(redis: AnyRedis, client_id: str, cutoff_ms: int) -> int:
    """Remove a client's ledger entries older than ``cutoff_ms`` (and their index fields)."""
    script = register(redis, "trim")
    names = [keys.ledger(client_id), keys.ledger_index(client_id)]
    removed = 0
    while True:
        n = int(await script(keys=names, args=[cutoff_ms, TRIM_BATCH]))
        removed += n
        if n < TRIM_BATCH:
            return removed


async def rollup(
    redis: AnyRedis, retention_days: int, now: datetime | None = None
) -> RollupSummary:
    """Recompute recent monthly records, expire old daily ones, trim ledgers."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    cutoff: date = now.date() - timedelta(days=retention_days)
    cutoff_ms = int(datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC).timestamp() * 1000)
    script = register(redis, "rollup")

    days_by_client: dict[str, set[str]] = defaultdict(set)
    clients: set[str] = set()
    for name in await scan_usage_keys(redis):
        parsed = keys.parse_usage_key(name)
        assert parsed is not None
        client, period = parsed
        clients.add(client)
        if len(period) == 10:
            days_by_client[client].add(period)

    recomputed = changed = expired = trimmed = 0
    for client, days in sorted(days_by_client.items()):
        months = {d[:7] for d in days}
        for month in sorted(months):
            if keys.parse_period(month) < cutoff:
                continue
            day_keys = [keys.usage(client, d) for d in _days_of(month)]
            result = await script(keys=[keys.usage(client, month), *day_keys])
            recomputed += 1
            changed += int(result)
        old = [keys.usage(client, d) for d in sorted(days) if keys.parse_period(d) < cutoff]
        for name in old:  # one key per call: no cross-slot multi-key DEL on a cluster
            expired += int(await redis.delete(name))
    async for client in ledger_clients(redis):
        clients.add(client)
        trimmed += await trim_ledger(redis, client, cutoff_ms - SKEW_MS)
    return RollupSummary(len(clients), recomputed, changed, expired, trimmed)
