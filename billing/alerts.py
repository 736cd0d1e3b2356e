"""Budget alerts: a ``budget.threshold`` webhook when a client's month crosses 50/80/100 %.

Thresholds are percentages of the monthly budget: the plan's ``alert_thresholds`` unless
the client has its own (``codexec billing alerts CLIENT --thresholds 50,90``, kept in
``webhook:{client}``). Each fires at most once per client and month, delivered through the
outbox to the client's webhook URL (a client without one gets no alerts; set one with
``codexec webhooks set``). A threshold re-arms only when the spend drops below it by more
than ``rearm_margin`` percentage points (a credit or void), so a spend hovering around a
threshold does not repeat the alert.

The hot path stays cheap: after each charge :meth:`Alerts.after_charge` adds the cost to
this process's reading of the month's spend and compares it with the thresholds locally.
Only when a threshold not yet known to have fired looks crossed, or when the reading is
older than ``refresh_s`` (other processes spend too), does it make one atomic Redis call
(``lua/alert.lua``: read the real spend, the budget, the client's URL and thresholds, fire
each crossed threshold with HSETNX, re-arm the ones far enough below). So however many
requests and processes cross a threshold together, exactly one of them sends the webhook.
:meth:`Alerts.sweep`, run every ``refresh_s`` by each process, checks the clients it
charged since its last check, so a threshold that several processes crossed together is
found even if no charge follows, and a URL or thresholds set meanwhile are seen within
``refresh_s``.

Marking a threshold fired and queueing its webhook cannot be one script: the alert state is
in the client's hash slot (``alerts:{client}:...``) and the outbox is one stream for every
client in the slot of ``outbox`` (one consumer group reads it; a stream per client would
have to be polled client by client). So the script marks the threshold *pending* together
with *fired* (``p:<t>`` = ``<fired ms>:<n>``, in the same hash), the webhook is queued with
that mark in its idempotency key (``budget.threshold:<month>:<t>:<mark>``), and then the mark
is cleared. A process that dies in between leaves the mark; the next check of that client by
any process (its next charge, or a sweep) finds marks older than ``resend_after_s`` and
queues them again under the same key, so the alert is sent once, late rather than never.
What remains: until that client is checked again the alert waits (a client that is never
charged again, e.g. refused at its cap, is not checked again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from billing import keys
from billing.money import format_usd, from_pico, to_pico
from billing.plans import Plan
from billing.scripts import AnyRedis, register, within
from billing.totals import FIELDS
from billing.webhooks import Outbox

__all__ = ["EVENT", "Alerts", "crossed", "parse_thresholds"]

log = logging.getLogger("codexec.billing.alerts")

EVENT = "budget.threshold"
"""The webhook event an alert sends."""

_COST_OFFSET = FIELDS.index("cost_pusd") * 12 + 1  # 1-based, in the packed usage field
_STATE_TTL_S = 40 * 86400


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"50,90"`` -> ``(50, 90)``: whole percentages 1-100, sorted, no repeats."""
    try:
        values = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise ValueError(f"thresholds are whole percentages like 50,80,100: {text!r}") from None
    if not values or not all(1 <= v <= 100 for v in values):
        raise ValueError(f"thresholds are whole percentages from 1 to 100: {text!r}")
    return tuple(sorted(values))


def crossed(spent_pusd: int, budget_pusd: int, thresholds: tuple[int, ...]) -> list[int]:
    """The thresholds that ``spent`` has reached (exact integer arithmetic)."""
    return [t for t in thresholds if spent_pusd * 100 >= budget_pusd * t]


@dataclass(slots=True)
class _Reading:
    month: str
    plan: Plan
    spent: int = 0
    budget: int | None = None
    thresholds: tuple[int, ...] = ()
    url: str | None = None
    fired: frozenset[int] = frozenset()
    fresh_until: float = 0.0
    dirty: bool = False


class Alerts:
    """Per-process alert checks for every client (see the module docstring)."""

    def __init__(
        self,
        redis: AnyRedis,
        outbox: Outbox,
        *,
        rearm_margin: float = 5.0,
        refresh_s: float = 5.0,
        max_clients: int = 100_000,
        resend_after_s: float = 30.0,
        on_fire: Callable[[], None] | None = None,
        redis_timeout_s: float | None = None,
    ) -> None:
        self.redis = redis
        self.redis_timeout_s = redis_timeout_s
        self.outbox = outbox
        self.rearm_margin = rearm_margin
        self.refresh_s = refresh_s
        self.max_clients = max_clients
        self.resend_after_ms = int(resend_after_s * 1000)
        self._on_fire = on_fire or (lambda: None)
        self._script = register(redis, "alert")
        self._readings: dict[str, _Reading] = {}
        self._month = ""
        self._month_span = (0.0, 0.0)

    async def after_charge(
        self, client_id: str, plan: Plan, cost_pusd: int, *, now: datetime | None = None
    ) -> list[int]:
        """Account a charge this process recorded; send any alert now due. Returns the
        thresholds this call fired (usually none, and without a round trip)."""
        wall = time.time() if now is None else now.timestamp()
        month = self._month_of(wall)
        clock = time.monotonic()
        reading = self._readings.get(client_id)
        if reading is None or reading.month != month:
            if len(self._readings) >= self.max_clients:
                self._readings.clear()
            reading = self._readings[client_id] = _Reading(month, plan)
        reading.spent += cost_pusd
        reading.plan = plan
        reading.dirty = True
        if clock < reading.fresh_until:
            if reading.url is None or reading.budget is None:
                return []
            due = crossed(reading.spent, reading.budget, reading.thresholds)
            if all(t in reading.fired for t in due):
                return []
        return await within(self.redis_timeout_s, self._check(client_id, reading, wall, clock))

    async def sweep(self, *, now: datetime | None = None) -> list[int]:
        """Check every client charged since its last check whose reading is stale: a
        threshold crossed by several processes together is found within ``refresh_s`` even
        when no further charge comes. Run it every ``refresh_s``; returns what fired."""
        wall = time.time() if now is None else now.timestamp()
        month = self._month_of(wall)
        clock = time.monotonic()
        sent: list[int] = []
        for client_id, reading in list(self._readings.items()):
            if reading.dirty and clock >= reading.fresh_until and reading.month == month:
                sent += await self._check(client_id, reading, wall, clock)
        return sent

    def _month_of(self, wall: float) -> str:
        """``YYYY-MM`` (UTC) of Unix time ``wall``, cached until the month ends."""
        if not self._month_span[0] <= wall < self._month_span[1]:
            at = datetime.fromtimestamp(wall, UTC)
            first = datetime(at.year, at.month, 1, tzinfo=UTC)
            after = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
            self._month = keys.month_period(at)
            self._month_span = (first.timestamp(), after.timestamp())
        return self._month

    async def _check(
        self, client_id: str, reading: _Reading, wall: float, clock: float
    ) -> list[int]:
        month, plan = reading.month, reading.plan
        plan_budget = "" if plan.monthly_budget is None else str(to_pico(plan.monthly_budget))
        now_ms = int(wall * 1000)
        reply = await self._script(
            keys=[
                keys.usage(client_id, month),
                keys.budget(client_id),
                keys.alerts(client_id, month),
                keys.webhook(client_id),
            ],
            args=[
                plan_budget,
                _COST_OFFSET,
                repr(float(self.rearm_margin)),
                now_ms,
                _STATE_TTL_S,
                now_ms - self.resend_after_ms,
                *plan.alert_thresholds,
            ],
        )
        spent, budget, fired, off, url, thresholds, marks, pending = reply
        reading.spent = int(spent)
        reading.budget = None if int(budget) < 0 else int(budget)
        reading.url = url.decode() if isinstance(url, bytes) else url
        reading.thresholds = tuple(sorted(int(t) for t in thresholds))
        reading.fired = frozenset(int(t) for t in off)
        reading.fresh_until = clock + self.refresh_s
        reading.dirty = False
        sent = [int(t) for t in fired]
        for threshold, mark in zip(sent, marks, strict=True):
            await self._send(client_id, plan, reading, threshold, _str(mark))
        for i in range(0, len(pending), 2):  # marked by a process that died before sending
            if int(pending[i]) not in sent and reading.budget is not None:
                await self._send(client_id, plan, reading, int(pending[i]), _str(pending[i + 1]))
        return sent

    async def _send(
        self, client_id: str, plan: Plan, reading: _Reading, threshold: int, mark: str
    ) -> None:
        assert reading.url is not None
        assert reading.budget is not None
        spent, budget = from_pico(reading.spent), from_pico(reading.budget)
        payload = {
            "clientId": client_id,
            "plan": plan.name,
            "month": reading.month,
            "threshold": threshold,
            "budget": format_usd(budget),
            "spent": format_usd(spent),
            "remaining": format_usd(max(budget - spent, from_pico(0))),
        }
        key = f"{EVENT}:{reading.month}:{threshold}:{mark}"
        await self.outbox.enqueue(client_id, reading.url, EVENT, payload, key=key)
        await self.redis.hdel(keys.alerts(client_id, reading.month), f"p:{threshold}")
        self._on_fire()
        log.info("budget alert", extra={"threshold": threshold, "month": reading.month})
