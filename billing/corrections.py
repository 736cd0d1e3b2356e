"""Corrections of the per-client ledger (:mod:`billing.ledger`): voids and credits.

A correction never edits an entry: it appends one with ``kind`` = ``void`` / ``credit``, a
negative ``cost_pusd``, a ``reason`` (and for a void, ``ref`` = the voided entry's stream
ID), and lowers the day's and month's counters by the same amount in the same script
(``lua/correct.lua``). :class:`~billing.errors.CorrectionRefused` says why one cannot be made.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from redis.exceptions import ResponseError

from billing import keys
from billing.errors import CorrectionRefused
from billing.money import to_pico
from billing.scripts import AnyRedis, register
from billing.usage_record import epoch_ms

__all__ = ["CorrectionRefused", "credit", "void"]


async def _correct(
    redis: AnyRedis,
    client_id: str,
    kind: str,
    ref_id: str,
    amount_pusd: int,
    reason: str,
    at: datetime | None,
    plan: str,
) -> str:
    if not reason.strip():
        raise CorrectionRefused("a correction needs a reason")
    at = (at or datetime.now(UTC)).astimezone(UTC)
    script = register(redis, "correct")
    names = [
        keys.ledger(client_id),
        keys.ledger_index(client_id),
        keys.usage(client_id, keys.day_period(at)),
        keys.usage(client_id, keys.month_period(at)),
    ]
    try:
        sid = await script(keys=names, args=[kind, ref_id, epoch_ms(at), amount_pusd, reason, plan])
    except ResponseError as exc:
        message = str(exc)
        for prefix in ("NOTFOUND ", "VOIDED ", "EXCEEDS ", "ERR "):
            if message.startswith(prefix):
                raise CorrectionRefused(message[len(prefix) :]) from None
        raise
    return sid.decode() if isinstance(sid, bytes) else str(sid)


async def void(
    redis: AnyRedis,
    client_id: str,
    execution_id: str,
    reason: str,
    *,
    at: datetime | None = None,
) -> str:
    """Void one execution's charge: a ``void`` entry of minus its cost, counters lowered.

    Returns the new entry's stream ID; :class:`CorrectionRefused` when the execution has no
    ledger entry (unknown or trimmed), was voided already, or this month's net cost is less
    than its cost."""
    keys.execution(client_id, execution_id)
    return await _correct(redis, client_id, "void", execution_id, 0, reason, at, "")


async def credit(
    redis: AnyRedis,
    client_id: str,
    amount_usd: Decimal,
    reason: str,
    *,
    at: datetime | None = None,
    plan: str = "",
) -> tuple[str, str]:
    """Credit ``amount_usd`` (rounded to pico-USD): a ``credit`` entry, counters lowered.

    Returns ``(credit ID, entry ID)``; :class:`CorrectionRefused` if the amount is not
    positive or exceeds this month's net cost."""
    pusd = to_pico(amount_usd)
    if not 0 < pusd < 1 << 53:
        raise CorrectionRefused(f"a credit must be positive and below 9007 USD: {amount_usd}")
    credit_id = f"credit-{uuid.uuid4().hex}"
    sid = await _correct(redis, client_id, "credit", credit_id, pusd, reason, at, plan)
    return credit_id, sid
