"""The per-client ledger: reading it (pages, iteration, clients); :mod:`billing.corrections`
appends its voids and credits.

``ledger:{<client>}`` is a Redis Stream, append-only. ``lua/record.lua`` appends one entry
per recorded execution (fields ``id plan at_ms executions errors fuel billed_cpu_ns cpu_us
wall_us mem_bytes cost_pusd`` and ``r``, the receipt facts of :mod:`billing.receipt_facts`)
and maps the execution ID to the entry's stream ID in ``ledgerid:{<client>}``.
Corrections never edit an entry: :func:`~billing.corrections.void` and
:func:`~billing.corrections.credit` append an entry with
``kind`` = ``void`` / ``credit``, a negative ``cost_pusd``, a ``reason`` (and for a void,
``ref`` = the voided entry's stream ID), and lower the day's and month's counters by the same
amount in the same script (``lua/correct.lua``).

Time ranges select entries by ``at_ms`` (when the execution was recorded by the service),
not by stream ID (when Redis appended it): a record spooled during an outage is appended
later. A range scan therefore reads stream IDs from ``start - SKEW`` to ``end + LATE`` and
filters; an entry appended more than :data:`LATE_MS` after it ran is outside range queries
(reconciliation reads whole streams and still sees it). Each call reads at most
``max_scan`` entries, so a page may hold fewer than ``count`` entries and still have a
next cursor.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from billing import keys
from billing.receipt_facts import FIELD as FACTS_FIELD
from billing.receipt_facts import decode as decode_facts
from billing.scripts import AnyRedis
from billing.totals import MEASURES
from billing.usage_record import epoch_ms

__all__ = [
    "LATE_MS",
    "SKEW_MS",
    "LedgerEntry",
    "entry_by_execution",
    "iter_all",
    "iter_entries",
    "ledger_clients",
    "parse_entry",
    "read_page",
]

SKEW_MS = 5 * 60 * 1000
"""How far a service clock may run ahead of Redis's (stream IDs come from Redis)."""

LATE_MS = 24 * 3600 * 1000
"""How late a spooled record may reach Redis and still be found by a time-range query."""

_CURSOR_RE = re.compile(r"\d{1,20}-\d{1,20}")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger entry: an execution, or a correction (``void``/``credit``)."""

    entry_id: str
    kind: str
    execution_id: str
    client_id: str
    plan: str
    at: datetime
    fuel: int
    billed_cpu_ns: int
    cpu_us: int
    wall_us: int
    mem_bytes: int
    cost_pusd: int
    error: bool
    fields: Mapping[str, str]

    @property
    def at_ms(self) -> int:
        """``at`` in Unix milliseconds (as stored)."""
        return epoch_ms(self.at)

    @property
    def executions(self) -> int:
        """1 for an execution, 0 for a correction."""
        return int(self.fields.get("executions", "0"))

    @property
    def errors(self) -> int:
        """1 for an execution that ended in an error."""
        return int(self.fields.get("errors", "0"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_entry(client_id: str, entry_id: bytes | str, raw: Mapping[Any, Any]) -> LedgerEntry:
    """A :class:`LedgerEntry` from an XRANGE item (receipt facts decoded to named fields)."""
    fields: dict[str, str] = {}
    for k, v in raw.items():
        name = _text(k)
        if name == FACTS_FIELD:
            fields.update(decode_facts(v if isinstance(v, bytes) else v.encode()))
        else:
            fields[name] = _text(v)
    at_ms = int(fields.get("at_ms", "0"))
    seconds, ms = divmod(at_ms, 1000)
    at = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=ms * 1000)
    ints = {name: int(fields.get(name, "0")) for name in MEASURES}
    return LedgerEntry(
        entry_id=_text(entry_id),
        kind=fields.get("kind", "execution"),
        execution_id=fields.get("id", ""),
        client_id=client_id,
        plan=fields.get("plan", ""),
        at=at,
        error=int(fields.get("errors", "0")) > 0,
        fields=fields,
        **ints,
    )


async def _xrange(
    redis: AnyRedis, key: str, lo: str, hi: str, count: int
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    found = await redis.xrange(key, lo, hi, count=count)
    return cast("list[tuple[bytes, dict[bytes, bytes]]]", found or [])


def _valid_cursor(cursor: str) -> bool:
    """A stream ID ``<ms>-<seq>``, both below 2**64."""
    if not _CURSOR_RE.fullmatch(cursor):
        return False
    ms, _, seq = cursor.partition("-")
    return int(ms) < 1 << 64 and int(seq) < 1 << 64


async def read_page(
    redis: AnyRedis,
    client_id: str,
    start: datetime,
    end: datetime,
    cursor: str | None = None,
    count: int = 100,
    *,
    max_scan: int | None = None,
) -> tuple[list[LedgerEntry], str | None]:
    """Entries with ``start <= at < end``, oldest first, and the cursor of the next page
    (None when there is none). ``cursor`` is a stream ID returned by an earlier call."""
    if count < 1:
        raise ValueError("count must be positive")
    if cursor is not None and not _valid_cursor(cursor):
        raise ValueError(f"invalid cursor {cursor!r}")
    start_ms, end_ms = epoch_ms(start), epoch_ms(end)
    key = keys.ledger(client_id)
    lo = f"({cursor}" if cursor is not None else str(max(0, start_ms - SKEW_MS))
    hi = str(end_ms + LATE_MS) if end_ms > 0 else "0"
    budget = max_scan if max_scan is not None else max(1000, 10 * count)
    out: list[LedgerEntry] = []
    last: str | None = None
    while budget > 0:
        asked = min(_CHUNK, budget)
        chunk = await _xrange(redis, key, lo, hi, asked)
        for entry_id, raw in chunk:
            budget -= 1
            last = _text(entry_id)
            entry = parse_entry(client_id, entry_id, raw)
            if start_ms <= entry.at_ms < end_ms:
                out.append(entry)
                if len(out) == count:
                    return out, last
        if len(chunk) < asked:
            return out, None
        lo = f"({last}"
    return out, last


async def iter_entries(
    redis: AnyRedis, client_id: str, start: datetime, end: datetime
) -> AsyncIterator[LedgerEntry]:
    """Every entry with ``start <= at < end``, oldest first."""
    cursor: str | None = None
    while True:
        page, cursor = await read_page(redis, client_id, start, end, cursor, _CHUNK)
        for entry in page:
            yield entry
        if cursor is None:
            return


async def iter_all(redis: AnyRedis, client_id: str) -> AsyncIterator[LedgerEntry]:
    """Every entry of a client's ledger, in stream order (whatever its ``at``)."""
    key = keys.ledger(client_id)
    lo = "-"
    while True:
        chunk = await _xrange(redis, key, lo, "+", _CHUNK)
        for entry_id, raw in chunk:
            yield parse_entry(client_id, entry_id, raw)
        if len(chunk) < _CHUNK:
            return
        lo = f"({_text(chunk[-1][0])}"


async def ledger_clients(redis: AnyRedis) -> AsyncIterator[str]:
    """Every client that has a ledger stream (SCAN; on a cluster, every master)."""
    seen: set[str] = set()
    async for raw in redis.scan_iter(match=keys.LEDGER_SCAN_PATTERN, count=1000):
        client = keys.client_of_ledger_key(raw)
        if client is not None and client not in seen:
            seen.add(client)
            yield client


async def entry_by_execution(
    redis: AnyRedis, client_id: str, execution_id: str
) -> LedgerEntry | None:
    """The ledger entry of one execution (via ``ledgerid:{client}``), or None."""
    keys.execution(client_id, execution_id)  # validates both IDs
    sid = await redis.hget(keys.ledger_index(client_id), execution_id)
    if sid is None:
        return None
    found = await _xrange(redis, keys.ledger(client_id), _text(sid), _text(sid), 1)
    if not found:
        return None
    return parse_entry(client_id, found[0][0], found[0][1])
