"""Monthly budgets: the cheap check before a run (one round trip) and per-client overrides.

The budget of a client is its plan's ``monthly_budget`` unless ``budget:{client}`` holds an
override in its ``monthly`` field (pico-USD, or ``none`` for unlimited). Spending is the
``cost_pusd`` of the client's monthly usage record, so the check sees every recorded
execution; an execution already running when the budget runs out is still billed (the check
is before a run, not a reservation). While Redis is unreachable the check lets runs through
(their records are spooled and billed later).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from billing import keys
from billing.errors import QuotaExceeded
from billing.money import format_usd, from_pico, to_pico
from billing.plans import Plan, Plans
from billing.scripts import UNREACHABLE, AnyRedis, register
from billing.totals import spent_pusd

__all__ = ["Quotas", "budget_for", "ensure_within"]

log = logging.getLogger("codexec.billing.quotas")

_UNLIMITED = b"none"


def budget_for(plan: Plan, override: bytes | None) -> Decimal | None:
    """The monthly budget: the client's override if any (``none`` = unlimited), else the plan's."""
    if override is None:
        return plan.monthly_budget
    if override == _UNLIMITED:
        return None
    return from_pico(int(override))


def ensure_within(budget: Decimal | None, spent: Decimal) -> None:
    """Raise :class:`QuotaExceeded` when ``spent`` has reached ``budget`` (None: unlimited)."""
    if budget is not None and spent >= budget:
        raise QuotaExceeded(f"monthly budget of {format_usd(budget)} USD is spent", remaining="0")


class Quotas:
    """Budget checks and overrides."""

    def __init__(self, redis: AnyRedis, plans: Plans) -> None:
        self.redis = redis
        self.plans = plans
        self._read = register(redis, "quota")

    async def _state(self, client_id: str, now: datetime | None) -> tuple[int, bytes | None]:
        month = keys.month_period(now or datetime.now(UTC))
        plain, packed, override = await self._read(
            keys=[keys.usage(client_id, month), keys.budget(client_id)], args=[]
        )
        return spent_pusd(plain, packed), override

    def _budget(self, plan: Plan | str, override: bytes | None) -> Decimal | None:
        return budget_for(self.plans.get(plan) if isinstance(plan, str) else plan, override)

    async def check(self, client_id: str, plan: Plan | str, *, now: datetime | None = None) -> None:
        """Raise :class:`QuotaExceeded` (with ``remaining``) if the month's budget is spent."""
        try:
            spent, override = await self._state(client_id, now)
        except UNREACHABLE:
            log.warning("budget check skipped: Redis unreachable")
            return
        ensure_within(self._budget(plan, override), from_pico(spent))

    async def remaining(
        self, client_id: str, plan: Plan | str, *, now: datetime | None = None
    ) -> Decimal | None:
        """What is left of this month's budget (never negative), None if unlimited."""
        spent, override = await self._state(client_id, now)
        budget = self._budget(plan, override)
        return None if budget is None else max(Decimal(0), budget - from_pico(spent))

    async def set_budget(self, client_id: str, budget: Decimal | None) -> None:
        """Override the plan's monthly budget for one client (None: unlimited)."""
        value = _UNLIMITED if budget is None else str(to_pico(budget)).encode()
        await self.redis.hset(keys.budget(client_id), "monthly", value)

    async def clear_budget(self, client_id: str) -> None:
        """Drop the override: the plan's budget applies again."""
        await self.redis.hdel(keys.budget(client_id), "monthly")
