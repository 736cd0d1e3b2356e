"""Recording usage: one Lua call per finished execution, or the spool when Redis is down.

:meth:`UsageStore.record` runs ``lua/record.lua`` (one round trip) which, atomically:

1. claims ``exec:{client}:<id>`` with ``SET NX EX <24 h>``, storing the request-body hash and
   the response bytes (``<body hash>\\n<response>``); if the ID is already claimed it returns
   the stored answer and changes nothing else (a retry is billed once);
2. adds the execution to ``usage:{client}:<day>`` and ``usage:{client}:<month>`` (HINCRBY on
   integer fields, see :mod:`billing.totals`);
3. appends an entry to ``ledger:{client}`` (XADD, ``MAXLEN ~``).

If Redis fails, the record goes to the :class:`~billing.spool.Spool` and
:meth:`UsageStore.replay_spool` sends it later; the execution-ID claim makes that exactly-once.
Comparing the stored body hash with the request's (409 on a mismatch) is the caller's job.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing import keys
from billing.money import to_pico
from billing.plans import Plan
from billing.pricing import Charge, price
from billing.records import fetch_records
from billing.scripts import STORE_ERRORS, UNREACHABLE, AnyRedis, register
from billing.spool import Spool
from billing.totals import UsageTotals

__all__ = ["RecordOutcome", "StoredExecution", "UsageRecord", "UsageStore"]

log = logging.getLogger("codexec.billing.usage")


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One finished execution, as billing sees it (``at`` is a UTC datetime)."""

    client_id: str
    execution_id: str
    at: datetime
    plan: str
    fuel: int
    cpu_ms: float
    wall_ms: float
    peak_memory_bytes: int
    error: bool
    charge: Charge

    @classmethod
    def priced(
        cls,
        plan: Plan,
        *,
        client_id: str,
        execution_id: str,
        at: datetime,
        fuel: int,
        cpu_ms: float,
        wall_ms: float,
        peak_memory_bytes: int,
        error: bool = False,
    ) -> UsageRecord:
        """A record whose charge is :func:`~billing.pricing.price` under ``plan``."""
        return cls(
            client_id=client_id,
            execution_id=execution_id,
            at=at,
            plan=plan.name,
            fuel=fuel,
            cpu_ms=cpu_ms,
            wall_ms=wall_ms,
            peak_memory_bytes=peak_memory_bytes,
            error=error,
            charge=price(plan, fuel, peak_memory_bytes),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (spool lines); money and CPU as exact decimal strings."""
        return {
            "client_id": self.client_id,
            "execution_id": self.execution_id,
            "at": self.at.astimezone(UTC).isoformat(),
            "plan": self.plan,
            "fuel": self.fuel,
            "cpu_ms": self.cpu_ms,
            "wall_ms": self.wall_ms,
            "peak_memory_bytes": self.peak_memory_bytes,
            "error": self.error,
            "billed_cpu_ms": str(self.charge.billed_cpu_ms),
            "compute_units": str(self.charge.compute_units),
            "cost": str(self.charge.cost),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        """Inverse of :meth:`to_json`."""
        charge = Charge(
            Decimal(data["billed_cpu_ms"]), Decimal(data["compute_units"]), Decimal(data["cost"])
        )
        return cls(
            client_id=data["client_id"],
            execution_id=data["execution_id"],
            at=datetime.fromisoformat(data["at"]),
            plan=data["plan"],
            fuel=int(data["fuel"]),
            cpu_ms=float(data["cpu_ms"]),
            wall_ms=float(data["wall_ms"]),
            peak_memory_bytes=int(data["peak_memory_bytes"]),
            error=bool(data["error"]),
            charge=charge,
        )

    def increments(self) -> UsageTotals:
        """What this execution adds to its daily and monthly records."""
        return UsageTotals(
            executions=1,
            errors=int(self.error),
            fuel=self.fuel,
            billed_cpu_ns=int(self.charge.billed_cpu_ms.scaleb(6).to_integral_value()),
            cpu_us=round(self.cpu_ms * 1000),
            wall_us=round(self.wall_ms * 1000),
            mem_bytes=self.peak_memory_bytes,
            cost_pusd=to_pico(self.charge.cost),
            updated_ms=_epoch_ms(self.at),
        )


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


def _epoch_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("UsageRecord.at must be timezone-aware (UTC)")
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _parse_stored(raw: bytes | str) -> StoredExecution:
    if isinstance(raw, str):
        raise TypeError("billing needs a Redis client with decode_responses=False")
    body_hash, _, response = raw.partition(b"\n")
    return StoredExecution(body_hash.decode(), response)


class UsageStore:
    """Records executions in Redis (standalone or cluster), spooling while Redis is down."""

    def __init__(
        self,
        redis: AnyRedis,
        spool: Spool,
        *,
        idempotency_ttl_s: int = 86_400,
        ledger_maxlen: int = 100_000,
    ) -> None:
        self.redis = redis
        self.spool = spool
        self.idempotency_ttl_s = idempotency_ttl_s
        self.ledger_maxlen = ledger_maxlen
        self._record = register(redis, "record")

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
        if "\n" in body_hash:
            raise ValueError("body_hash must not contain a newline")
        try:
            stored = await self._write(rec, body_hash, response)
        except STORE_ERRORS as exc:
            log.warning("usage record spooled: %s", exc)
            self.spool.append(
                {
                    "record": rec.to_json(),
                    "body_hash": body_hash,
                    "response": base64.b64encode(response).decode(),
                }
            )
            return RecordOutcome(duplicate=False, spooled=True, stored=None)
        return RecordOutcome(duplicate=stored is not None, spooled=False, stored=stored)

    async def _write(
        self, rec: UsageRecord, body_hash: str, response: bytes
    ) -> StoredExecution | None:
        inc = rec.increments()
        at = rec.at.astimezone(UTC)
        script_keys = [
            keys.execution(rec.client_id, rec.execution_id),
            keys.usage(rec.client_id, keys.day_period(at)),
            keys.usage(rec.client_id, keys.month_period(at)),
            keys.ledger(rec.client_id),
        ]
        args: list[str | int | bytes] = [
            self.idempotency_ttl_s,
            body_hash.encode() + b"\n" + response,
            self.ledger_maxlen,
            inc.updated_ms,
            rec.execution_id,
            rec.plan,
            f"{inc.executions} {inc.errors} {inc.fuel} {inc.billed_cpu_ns} {inc.cpu_us} "
            f"{inc.wall_us} {inc.mem_bytes} {inc.cost_pusd}",
        ]
        reply = await self._record(keys=script_keys, args=args)
        if int(reply[0]) == 1:
            return None
        return _parse_stored(reply[1])

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

    def spool_depth(self) -> int:
        """Records of this process waiting in the spool (for a Prometheus gauge)."""
        return self.spool.depth()

    async def totals(self, client_id: str, period: str) -> UsageTotals:
        """The record of one client for ``YYYY-MM-DD`` or ``YYYY-MM`` (zeros if none)."""
        found = await fetch_records(self.redis, [keys.usage(client_id, period)])
        return found[0].totals if found else UsageTotals()
