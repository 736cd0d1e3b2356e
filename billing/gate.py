"""Admission of one request of a client: its rate limit and its monthly budget.

A process takes rate-limit tokens from the client's Redis token bucket in leases (one
``lua/admit.lua`` call takes up to ``lease_fraction`` of a second's worth of tokens and reads
the month's spend), then spends them locally, so most requests cost no round trip. Leased
tokens not used within ``lease_ttl_s`` are dropped, never carried over, so a client is never
admitted faster than its plan allows; at worst a process wastes one lease per period. The
spend read with a lease is trusted for at most ``quota_ttl_s``: a client can overshoot its
budget by what OTHER processes spend in that time; what this process records is added to its
reading at once (:meth:`Gate.charge`). Hard caps with reservations are a separate feature.
While Redis is unreachable requests are admitted (usage is spooled and billed later).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from billing import keys
from billing.errors import RateLimitExceeded
from billing.money import from_pico
from billing.plans import Plan
from billing.quotas import budget_for, ensure_within
from billing.scripts import UNREACHABLE, AnyRedis, register
from billing.totals import spent_pusd

__all__ = ["Gate", "Lease", "lease_size"]

log = logging.getLogger("codexec.billing.gate")


def lease_size(rate_per_second: float, burst: int, fraction: float) -> int:
    """Tokens to ask for at once: ``fraction`` of a second's rate, within 1..burst."""
    return max(1, min(burst, math.floor(rate_per_second * fraction)))


@dataclass(slots=True)
class Lease:
    """Tokens and a spend reading held by this process for one client."""

    tokens: int = 0
    tokens_until: float = 0.0
    spent: Decimal = Decimal(0)
    budget: Decimal | None = None
    budget_until: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one local token if a fresh one is held."""
        if self.tokens > 0 and now < self.tokens_until:
            self.tokens -= 1
            return True
        return False

    def budget_fresh(self, now: float) -> bool:
        """Whether the spend reading may still be trusted."""
        return now < self.budget_until

    def check_budget(self) -> None:
        """Raise :class:`QuotaExceeded` if the reading says the budget is spent."""
        ensure_within(self.budget, self.spent)


class Gate:
    """Per-process admission gate for every client."""

    def __init__(
        self,
        redis: AnyRedis,
        *,
        lease_fraction: float = 0.05,
        lease_ttl_s: float = 1.0,
        quota_ttl_s: float = 1.0,
        max_clients: int = 100_000,
    ) -> None:
        self.redis = redis
        self.lease_fraction = lease_fraction
        self.lease_ttl_s = lease_ttl_s
        self.quota_ttl_s = quota_ttl_s
        self.max_clients = max_clients
        self._admit = register(redis, "admit")
        self._leases: dict[str, Lease] = {}

    def charge(self, client_id: str, cost: Decimal) -> None:
        """Add an execution this process recorded to the client's spend reading."""
        lease = self._leases.get(client_id)
        if lease is not None:
            lease.spent += cost

    async def admit(self, client_id: str, plan: Plan, *, now: datetime | None = None) -> None:
        """Let one request of ``client_id`` through, or raise the reason it may not run.

        Raises :class:`RateLimitExceeded` (with ``retry_after`` seconds) or
        :class:`QuotaExceeded`.
        """
        clock = time.monotonic()
        lease = self._leases.get(client_id)
        if lease is not None and lease.budget_fresh(clock):
            lease.check_budget()
            if lease.take(clock):
                return
        if lease is None:
            if len(self._leases) >= self.max_clients:
                self._leases.clear()
            lease = self._leases[client_id] = Lease()
        month = keys.month_period(now or datetime.now(UTC))
        want = lease_size(plan.rate_per_second, plan.burst, self.lease_fraction)
        try:
            granted, wait_ms, plain, packed, override = await self._admit(
                keys=[keys.rate(client_id), keys.usage(client_id, month), keys.budget(client_id)],
                args=[repr(float(plan.rate_per_second)), plan.burst, want],
            )
        except UNREACHABLE:
            log.warning("admission checks skipped: Redis unreachable")
            return
        clock = time.monotonic()
        lease.spent = from_pico(spent_pusd(plain, packed))
        lease.budget = budget_for(plan, override or None)
        lease.budget_until = clock + self.quota_ttl_s
        lease.tokens = max(0, int(granted) - 1)
        lease.tokens_until = clock + self.lease_ttl_s
        lease.check_budget()
        if int(granted) == 0:
            raise RateLimitExceeded(int(wait_ms) / 1000.0)
