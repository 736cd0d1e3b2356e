"""Recording usage: one Lua call per finished execution, or the spool when Redis is down.

:meth:`UsageStore.record` runs ``lua/record.lua`` which, atomically:

1. claims ``exec:{client}:<id>`` with a 24 h TTL, storing the request-body hash and the
   response bytes (``<body hash>\\n<response>``); if the ID is already claimed it returns the
   stored answer and changes nothing else (a retry is billed once);
2. adds the execution to ``usage:{client}:<day>`` and ``usage:{client}:<month>`` (exact
   integers in the hash's packed field, see :mod:`billing.totals`);
3. appends an entry to ``ledger:{client}`` (XADD) holding the counters and the receipt
   facts (:mod:`billing.receipt_facts`), and maps the execution ID to the entry's stream ID
   in ``ledgerid:{client}`` (how a receipt is found; both are trimmed together by the
   maintenance job, :mod:`billing.maintenance`).

Concurrent calls share round trips (:class:`~billing.batching.ScriptBatcher`): a call made
while another record is in flight is queued and sent with the others in one pipeline; each
is still its own atomic script run, and each caller gets its own outcome.

If Redis fails, the record goes to the :class:`~billing.spool.Spool` and
:meth:`UsageStore.replay_spool` sends it later; the execution-ID claim makes that exactly-once.
Comparing the stored body hash with the request's (409 on a mismatch) is the caller's job.
"""

from __future__ import annotations

import base64
import logging
import struct
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from billing import keys
from billing.batching import Command, ScriptBatcher
from billing.records import fetch_records
from billing.scripts import STORE_ERRORS, UNREACHABLE, AnyRedis, lua_source
from billing.spool import Spool
from billing.totals import UsageTotals
from billing.usage_record import DAY_MS, UsageRecord, increments_of

__all__ = ["RecordOutcome", "StoredExecution", "UsageRecord", "UsageStore"]

log = logging.getLogger("codexec.billing.usage")


@dataclass(frozen=True, slots=True)
class StoredExecution:
    """The first answer given for an execution ID: its request-body hash and response."""

    body_hash: str
    response: bytes


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What :meth:`UsageStore.record` did. ``stored`` is the FIRST answer when ``duplicate``."""

    duplicate: bool
    spooled: bool
    stored: StoredExecution | None


_HEADER = struct.Struct(">II9QBBH")  # ARGV[1] of lua/record.lua starts with this
_KEY_CACHE_SIZE = 4096


def _outcome(reply: Any) -> StoredExecution | None:
    """None when ``lua/record.lua`` recorded the execution, else the first answer stored."""
    return None if reply == 1 else _parse_stored(reply)


def _parse_stored(raw: bytes | str) -> StoredExecution:
    if isinstance(raw, str):
        raise TypeError("billing needs a Redis client with decode_responses=False")
    body_hash, _, response = raw.partition(b"\n")
    return StoredExecution(body_hash.decode(), response)


class UsageStore:
    """Records executions in Redis (standalone or cluster), spooling while Redis is down.

    Up to ``max_in_flight`` record round trips at once; more calls are queued and pipelined.
    With a standalone client, that many of its pooled connections are held for the records
    (:mod:`billing.lanes`): give the pool room for them and the store's other commands.
    """

    def __init__(
        self,
        redis: AnyRedis,
        spool: Spool,
        *,
        idempotency_ttl_s: int = 86_400,
        ledger_maxlen: int = 0,
        max_in_flight: int = 1,
    ) -> None:
        if not 0 < idempotency_ttl_s < 1 << 32 or not 0 <= ledger_maxlen < 1 << 32:
            raise ValueError("idempotency_ttl_s and ledger_maxlen must fit in 32 bits")
        self.redis = redis
        self.spool = spool
        self.idempotency_ttl_s = idempotency_ttl_s
        self.ledger_maxlen = ledger_maxlen
        self._record = ScriptBatcher(redis, lua_source("record"), max_in_flight=max_in_flight)
        # (client, UTC day number) -> (day, month, ledger, ledger index keys), validated once
        self._keys: dict[tuple[str, int], tuple[str, str, str, str]] = {}

    async def lookup(self, client_id: str, execution_id: str) -> StoredExecution | None:
        """The stored answer for an execution ID, or None (also None while Redis is down)."""
        try:
            raw = await self.redis.get(keys.execution(client_id, execution_id))
        except UNREACHABLE:
            log.warning("idempotency lookup skipped: Redis unreachable")
            return None
        return None if raw is None else _parse_stored(raw)

    async def record(self, rec: UsageRecord, body_hash: str, response: bytes) -> RecordOutcome:
        """Record one execution (once per ID); spool it if Redis fails.

        Raises :class:`~billing.errors.StoreUnavailable` only when the spool fails too.
        """
        command = self._command(rec, body_hash, response)  # ValueError before anything
        try:
            stored = _outcome(await self._record(command))
        except STORE_ERRORS as exc:
            log.warning("usage record spooled: %s", exc)
            return self.spool_record(rec, body_hash, response)
        return RecordOutcome(duplicate=stored is not None, spooled=False, stored=stored)

    def spool_record(self, rec: UsageRecord, body_hash: str, response: bytes) -> RecordOutcome:
        """Put a record in the spool (Redis failed or did not answer in time); the replay
        bills it exactly once even if Redis did record it after all (the ID's claim)."""
        self.spool.append(
            {
                "record": rec.to_json(),
                "body_hash": body_hash,
                "response": base64.b64encode(response).decode(),
            }
        )
        return RecordOutcome(duplicate=False, spooled=True, stored=None)

    def _command(self, rec: UsageRecord, body_hash: str, response: bytes) -> Command:
        """``numkeys, *KEYS, *ARGV`` of ``lua/record.lua`` for one record."""
        if "\n" in body_hash:
            raise ValueError("body_hash must not contain a newline")
        inc = increments_of(rec)
        if (inc[1] | inc[2] | inc[3] | inc[4] | inc[5] | inc[6] | inc[7] | inc[8]) >> 53:
            raise ValueError(f"usage increments must be in 0..2**53-1: {inc}")
        client = rec.client_id
        cache_key = (client, inc[8] // DAY_MS)
        found = self._keys.get(cache_key)
        if found is None:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            at = rec.at.astimezone(UTC)
            found = self._keys[cache_key] = (
                keys.usage(client, keys.day_period(at)),
                keys.usage(client, keys.month_period(at)),
                keys.ledger(client),
                keys.ledger_index(client),
            )
        execution_id = rec.execution_id.encode()
        plan = rec.plan.encode()
        if len(plan) > 255:
            raise ValueError("plan names are at most 255 bytes")
        facts = b"" if rec.receipt is None else rec.receipt.pack()
        header = _HEADER.pack(
            self.idempotency_ttl_s,
            self.ledger_maxlen,
            *inc,
            len(execution_id),
            len(plan),
            len(facts),
        )
        return (
            5,
            keys.execution(client, rec.execution_id),
            *found,
            b"".join((header, execution_id, plan, facts, body_hash.encode(), b"\n", response)),
        )

    async def _write(
        self, rec: UsageRecord, body_hash: str, response: bytes
    ) -> StoredExecution | None:
        return _outcome(await self._record(self._command(rec, body_hash, response)))

    async def replay_spool(self) -> int:
        """Send spooled records to Redis; returns how many went through (0 if still down)."""

        async def handle(entry: dict[str, Any]) -> None:
            rec = UsageRecord.from_json(entry["record"])
            await self._write(rec, entry["body_hash"], base64.b64decode(entry["response"]))

        try:
            return await self.spool.replay(handle)
        except STORE_ERRORS as exc:
            log.warning("spool replay stopped: %s", exc)
            return 0

    async def aclose(self) -> None:
        """Close the connections the record calls hold (the client is the caller's)."""
        await self._record.aclose()

    def spool_depth(self) -> int:
        """Records of this process waiting in the spool (for a Prometheus gauge)."""
        return self.spool.depth()

    async def totals(self, client_id: str, period: str) -> UsageTotals:
        """The record of one client for ``YYYY-MM-DD`` or ``YYYY-MM`` (zeros if none)."""
        found = await fetch_records(self.redis, [keys.usage(client_id, period)])
        return found[0].totals if found else UsageTotals()
