"""Monthly budgets: reading them, per-client overrides, and what an amount of money buys.

The budget of a client is its plan's ``monthly_budget`` unless ``budget:{client}`` holds an
override in its ``monthly`` field (pico-USD, or ``none`` for unlimited). Spending is the
``cost_pusd`` of the client's monthly usage record. The service enforces budgets with
reservations (hard caps, :mod:`billing.gate`); :meth:`Quotas.check` is the plain reading
(an execution already running when the budget runs out is still billed). While Redis is
unreachable the check lets runs through (their records are spooled and billed later).

:func:`fuel_for_cost` turns a request's ``maxCost`` into a fuel cap.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, localcontext

from billing import keys
from billing.errors import QuotaExceeded
from billing.money import EXACT, format_usd, from_pico, to_pico
from billing.plans import Plan, Plans
from billing.pricing import FUEL_PER_CPU_MS, peak_mb, price
from billing.scripts import UNREACHABLE, AnyRedis, register
from billing.totals import spent_pusd

__all__ = ["Quotas", "budget_for", "ensure_within", "fuel_for_cost"]

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


def fuel_for_cost(plan: Plan, max_cost: Decimal, memory_bytes: int) -> int | None:
    """The most fuel a run may burn so that it costs at most ``max_cost`` under ``plan``
    with a peak of up to ``memory_bytes``: what is left after the per-execution and memory
    price lines buys CPU at the plan's price. None when the CPU is free (no cap from money);
    0 when ``max_cost`` does not even cover the other lines.
    """
    with localcontext(EXACT):
        cpu_money = max_cost - plan.price_per_execution - peak_mb(memory_bytes) * plan.price_per_mb
        if cpu_money < 0:
            return 0
        if plan.price_per_cpu_second == 0:
            return None
        fuel_exact = cpu_money / plan.price_per_cpu_second * 1000 * FUEL_PER_CPU_MS
        fuel = int(fuel_exact.to_integral_value(rounding=ROUND_FLOOR))
    # billed CPU is rounded to the nanosecond: step back while that rounding tips it over
    while fuel > 0 and price(plan, fuel, memory_bytes).cost > max_cost:
        fuel -= 1
    return fuel


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
