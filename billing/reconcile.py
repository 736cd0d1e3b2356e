"""Reconciliation: the usage counters must equal the sums of the ledger entries.

For each client, the ledger (every retained entry, corrections included) is summed by the UTC
day and month of each entry's ``at``, and compared field by field (``executions errors fuel
billed_cpu_ns cpu_us wall_us mem_bytes cost_pusd``) with the ``usage:{client}:<period>``
records. Only periods still complete on both sides are compared: days on or after
``today - retention_days`` and months whose first day is (older daily records and ledger
entries are gone by then; monthly records are kept).

Counters and the ledger's newest entry ID are read in one ``MULTI`` (standalone Redis), and
only entries up to that ID are summed, so executions recorded while reconciling cause no
false difference. On a cluster the reading is retried until the newest entry ID did not move.
Usage imported from KV files has no ledger entries and shows up as a difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from redis.asyncio.cluster import RedisCluster

from billing import keys
from billing.ledger import LedgerEntry, iter_all, ledger_clients
from billing.records import scan_usage_keys
from billing.scripts import AnyRedis
from billing.totals import COUNTERS, UsageTotals

__all__ = [
    "COMPARED",
    "Difference",
    "ReconcileResult",
    "last_mismatches",
    "reconcile",
    "save_result",
    "sum_entries",
]

COMPARED = COUNTERS
"""The counters compared (``updated_ms`` is a time, not a sum)."""

_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Difference:
    """One counter of one period that does not match its ledger sum."""

    client_id: str
    period: str
    field: str
    counters: int
    ledger: int


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What a reconciliation compared and found."""

    clients: int
    periods: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def mismatched_periods(self) -> int:
        """How many (client, period) pairs have at least one difference."""
        return len({(d.client_id, d.period) for d in self.differences})

    @property
    def ok(self) -> bool:
        """True when every compared period matches."""
        return not self.differences


def sum_entries(entries: Iterable[LedgerEntry]) -> dict[str, UsageTotals]:
    """Ledger sums by UTC day (``YYYY-MM-DD``) and month (``YYYY-MM``) of ``at``."""
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COMPARED, 0))
    for e in entries:
        values = {name: getattr(e, name) for name in COMPARED}
        for period in (keys.day_period(e.at), keys.month_period(e.at)):
            bucket = sums[period]
            for name, value in values.items():
                bucket[name] += value
    return {p: UsageTotals(**v) for p, v in sums.items()}


async def _snapshot(redis: AnyRedis, client_id: str) -> tuple[dict[str, UsageTotals], str | None]:
    """The client's usage records and its ledger's newest entry ID, read consistently."""
    ledger = keys.ledger(client_id)
    cluster = isinstance(redis, RedisCluster)
    for attempt in range(_RETRIES):
        names = await scan_usage_keys(redis, client_id)
        before = None if not cluster else await redis.xrevrange(ledger, count=1)
        pipe = redis.pipeline(transaction=not cluster)
        for name in names:
            pipe.hgetall(name)
        pipe.xrevrange(ledger, count=1)
        replies = await pipe.execute()
        top = replies[-1]
        if cluster and before != top and attempt < _RETRIES - 1:
            continue  # the last attempt is used as it is (a busy client may then differ)
        records: dict[str, UsageTotals] = {}
        for name, raw in zip(names, replies[:-1], strict=True):
            parsed = keys.parse_usage_key(name)
            if raw and parsed is not None:
                records[parsed[1]] = UsageTotals.from_hash(raw)
        last = top[0][0] if top else None
        return records, (last.decode() if isinstance(last, bytes) else last)
    raise AssertionError("unreachable")


def _compared(period: str, cutoff: date, month: str | None) -> bool:
    if month is not None and not period.startswith(month):
        return False
    return keys.parse_period(period) >= cutoff


def _sid_key(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


async def reconcile_client(
    redis: AnyRedis, client_id: str, cutoff: date, month: str | None = None
) -> tuple[int, list[Difference]]:
    """Compare one client's counters with its ledger: (periods compared, differences)."""
    records, top = await _snapshot(redis, client_id)
    entries: list[LedgerEntry] = []
    if top is not None:
        limit = _sid_key(top)
        async for entry in iter_all(redis, client_id):
            if _sid_key(entry.entry_id) > limit:
                break
            entries.append(entry)
    sums = sum_entries(entries)
    periods = sorted(p for p in set(records) | set(sums) if _compared(p, cutoff, month))
    zero = UsageTotals()
    diffs: list[Difference] = []
    for period in periods:
        have, want = records.get(period, zero), sums.get(period, zero)
        for name in COMPARED:
            a, b = getattr(have, name), getattr(want, name)
            if a != b:
                diffs.append(Difference(client_id, period, name, a, b))
    return len(periods), diffs


async def reconcile(
    redis: AnyRedis,
    *,
    retention_days: int,
    client_id: str | None = None,
    month: str | None = None,
    now: datetime | None = None,
) -> ReconcileResult:
    """Reconcile one client (or every client with a ledger or usage records)."""
    if month is not None:
        keys.parse_period(month)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    cutoff = now.date() - timedelta(days=retention_days)
    if client_id is not None:
        clients = [keys.validate_client_id(client_id)]
    else:
        found = {c async for c in ledger_clients(redis)}
        for name in await scan_usage_keys(redis):
            owner = keys.client_of_usage_key(name)
            if owner is not None:
                found.add(owner)
        clients = sorted(found)
    periods = 0
    diffs: list[Difference] = []
    for client in clients:
        n, found_diffs = await reconcile_client(redis, client, cutoff, month)
        periods += n
        diffs += found_diffs
    return ReconcileResult(len(clients), periods, diffs)


async def save_result(redis: AnyRedis, result: ReconcileResult, at: datetime) -> None:
    """Keep the result in ``reconcile:last``: every service replica exports it as a gauge,
    whichever process (in-service job or CronJob) ran the reconciliation."""
    await redis.hset(
        keys.RECONCILE_LAST,
        mapping={
            "mismatched_periods": result.mismatched_periods,
            "clients": result.clients,
            "periods": result.periods,
            "at_ms": int(at.timestamp() * 1000),
        },
    )


async def last_mismatches(redis: AnyRedis) -> int | None:
    """Mismatched periods found by the last saved reconciliation (None if none ran)."""
    raw = await redis.hget(keys.RECONCILE_LAST, "mismatched_periods")
    return None if raw is None else int(raw)
