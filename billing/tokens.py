"""What one process holds for each client between admission calls: rate-limit tokens leased
from the client's Redis token bucket, a reading of its monthly spend (soft mode) and its
budget lease (hard caps, :mod:`billing.leases`); and, from that, what the client may still
send (the ``RateLimit`` headers). :mod:`billing.gate` fills these in.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from decimal import Decimal

from billing.leases import BudgetLease
from billing.plans import Plan
from billing.quotas import ensure_within

__all__ = ["Lease", "RateState", "lease_size", "policy", "window_s"]


def lease_size(rate_per_second: float, burst: int, fraction: float) -> int:
    """Tokens to ask for at once: ``fraction`` of a second's rate, within 1..burst."""
    return max(1, min(burst, math.floor(rate_per_second * fraction)))


@dataclass(frozen=True, slots=True)
class RateState:
    """What a client may still send, as this process last saw its token bucket."""

    limit: int
    """The bucket's size (the plan's ``burst``)."""
    window_s: int
    """Seconds an empty bucket takes to fill up (``burst / rate``, rounded up)."""
    remaining: int
    """Tokens this process holds plus the bucket's refilled remainder at its last call."""
    reset_s: int
    """Seconds until the bucket is full again (0: it is)."""

    @classmethod
    def of(cls, lease: Lease | None, plan: Plan, clock: float) -> RateState:
        """The state of a client's bucket from the lease this process holds (or none)."""
        rate, burst = plan.rate_per_second, plan.burst
        remaining = burst
        if lease is not None and lease.bucket_left >= 0:
            held = lease.tokens if clock < lease.tokens_until else 0
            refilled = lease.bucket_left + (clock - lease.bucket_at) * rate
            remaining = min(burst, math.floor(held + refilled))
        return cls(
            limit=burst,
            window_s=window_s(plan),
            remaining=remaining,
            reset_s=max(0, math.ceil((burst - remaining) / rate)),
        )


@dataclass(slots=True)
class Lease:
    """Tokens, a spend reading (soft mode) and a budget lease (hard caps) for one client."""

    tokens: int = 0
    tokens_until: float = 0.0
    spent: Decimal = Decimal(0)
    budget: Decimal | None = None
    budget_until: float = 0.0
    bucket_left: int = -1
    bucket_at: float = 0.0
    unlimited_until: float = 0.0
    slice: BudgetLease | None = None
    syncing: asyncio.Future[None] | None = None

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


def window_s(plan: Plan) -> int:
    """Seconds an empty bucket of ``plan`` takes to fill up (``burst / rate``, rounded up)."""
    return max(1, math.ceil(plan.burst / plan.rate_per_second))


def policy(plan: Plan) -> dict[str, int]:
    """The bucket of ``plan`` as :class:`RateLimitExceeded` describes it."""
    return {"limit": plan.burst, "window_s": window_s(plan)}
