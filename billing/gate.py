"""Admission of one request of a client: its rate limit and its monthly budget.

A process takes rate-limit tokens from the client's Redis token bucket in leases (one
``lua/admit.lua`` call takes up to ``lease_fraction`` of a second's worth of tokens), then
spends them locally, so most requests cost no round trip. Leased tokens not used within
``lease_ttl_s`` are dropped, never carried over, so a client is never admitted faster than
its plan allows; at worst a process wastes one lease per period.

The budget, in one of two modes:

* hard caps (``hard_caps=True``, the service's default): the same call also leases a slice
  of the client's remaining monthly budget (:mod:`billing.leases`); each run reserves its
  maximum cost from the slice, and its actual cost is taken and the rest given back when it
  is recorded. Recorded spend + outstanding leases never exceed the budget, so concurrent
  runs in any number of processes cannot take a month past its cap. A call's lease lives
  ``budget_lease_ttl_s`` + the request's timeout + ``settle_grace_s`` (+ 1 s in Redis),
  and a run reserves locally only while the lease outlives it; a dead process's lease is
  swept by the next call after its deadline.
  A client without a budget holds no lease: it is re-checked every ``quota_ttl_s``.
* soft (``hard_caps=False``): the call reads the month's spend, trusted for ``quota_ttl_s``;
  a client can overshoot by what OTHER processes record in that time.

While Redis is unreachable requests are admitted (usage is spooled and billed later).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal

from billing import keys
from billing.errors import QuotaExceeded, RateLimitExceeded
from billing.leases import BudgetLease, Reservation
from billing.money import format_usd, from_pico, to_pico
from billing.plans import Plan
from billing.quotas import budget_for
from billing.scripts import UNREACHABLE, AnyRedis, register, until, within
from billing.tokens import Lease, RateState, lease_size, policy
from billing.totals import spent_pusd

__all__ = ["Gate", "Lease", "RateState", "lease_size"]

log = logging.getLogger("codexec.billing.gate")

_RESERVATION: ContextVar[Reservation | None] = ContextVar("codexec_reservation", default=None)
"""The reservation the current task's request holds (settled by :meth:`Gate.charge`)."""


def _budget_arg(plan: Plan) -> str:
    return "none" if plan.monthly_budget is None else str(to_pico(plan.monthly_budget))


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
        hard_caps: bool = False,
        budget_lease_ttl_s: float = 10.0,
        budget_lease_runs: int = 8,
        budget_lease_share: float = 0.25,
        settle_grace_s: float = 2.0,
        redis_timeout_s: float | None = None,
    ) -> None:
        self.redis = redis
        self.redis_timeout_s = redis_timeout_s
        self.lease_fraction = lease_fraction
        self.lease_ttl_s = lease_ttl_s
        self.quota_ttl_s = quota_ttl_s
        self.max_clients = max_clients
        self.hard_caps = hard_caps
        self.budget_lease_ttl_s = budget_lease_ttl_s
        self.budget_lease_runs = budget_lease_runs
        self.budget_lease_share = budget_lease_share
        self.settle_grace_s = settle_grace_s
        """Time allowed beyond a run's timeout to wait for a thread and record its cost."""
        self.lease_id = uuid.uuid4().hex
        """This process's name in every ``budget:{client}:<month>`` hash."""
        self._admit = register(redis, "admit")
        self._leases: dict[str, Lease] = {}

    def _lease(self, client_id: str) -> Lease:
        lease = self._leases.get(client_id)
        if lease is None:
            if len(self._leases) >= self.max_clients:  # forget all but runs in flight
                self._leases = {
                    c: held
                    for c, held in self._leases.items()
                    if held.slice is not None and held.slice.reserved > 0
                }
            lease = self._leases[client_id] = Lease()
        return lease

    def charge(self, client_id: str, cost: Decimal) -> None:
        """An execution this process recorded: add it to the spend reading, and settle the
        reservation that this task's :meth:`admit` made (hard caps) at its actual cost."""
        lease = self._leases.get(client_id)
        if lease is not None:
            lease.spent += cost
        held = _RESERVATION.get()
        if held is not None and held.client_id == client_id:
            held.settle(to_pico(cost))

    def rate_state(self, client_id: str, plan: Plan) -> RateState:
        """The client's rate limit as this process knows it (no round trip)."""
        return RateState.of(self._leases.get(client_id), plan, time.monotonic())

    async def admit(
        self,
        client_id: str,
        plan: Plan,
        *,
        now: datetime | None = None,
        max_cost: Decimal = Decimal(0),
        hold_s: float = 0.0,
    ) -> Reservation | None:
        """Let one request of ``client_id`` through, or raise the reason it may not run.

        With hard caps, reserves ``max_cost`` (the most the run can cost) for a run lasting
        at most ``hold_s`` seconds and returns the reservation; :meth:`charge` in the same
        task settles it at the recorded cost, and :meth:`Reservation.release` (always call
        it, e.g. in ``finally``) gives it back if the run was not billed. None when nothing
        is reserved (no budget, soft mode, Redis unreachable).

        Raises :class:`RateLimitExceeded` (with ``retry_after`` seconds) or
        :class:`QuotaExceeded` (with ``remaining``).
        """
        month = keys.month_period(now or datetime.now(UTC))
        lease = self._lease(client_id)
        _RESERVATION.set(None)
        try:
            if self.hard_caps:
                held = await self._admit_capped(client_id, plan, lease, month, max_cost, hold_s)
                _RESERVATION.set(held)
                return held
            await self._admit_soft(client_id, plan, lease, month)
        except UNREACHABLE:
            log.warning("admission checks skipped: Redis unreachable")
        return None

    async def _admit_soft(self, client_id: str, plan: Plan, lease: Lease, month: str) -> None:
        clock = time.monotonic()
        if lease.budget_fresh(clock):
            lease.check_budget()
            if lease.take(clock):
                return
        want = lease_size(plan.rate_per_second, plan.burst, self.lease_fraction)
        granted, wait_ms, left, plain, packed, override = await within(
            self.redis_timeout_s,
            self._admit(
                keys=self._keys(client_id, month),
                args=[repr(float(plan.rate_per_second)), plan.burst, want, "read"],
            ),
        )
        clock = time.monotonic()
        lease.spent = from_pico(spent_pusd(plain, packed))
        lease.budget = budget_for(plan, override or None)
        lease.budget_until = clock + self.quota_ttl_s
        self._got_tokens(lease, plan, int(granted), int(left), clock)
        lease.check_budget()
        if int(granted) == 0:
            raise RateLimitExceeded(int(wait_ms) / 1000.0, **policy(plan))

    def _keys(self, client_id: str, month: str) -> list[str]:
        return [
            keys.rate(client_id),
            keys.usage(client_id, month),
            keys.budget(client_id),
            keys.budget_leases(client_id, month),
            keys.lease_deadlines(client_id, month),
        ]

    def _got_tokens(self, lease: Lease, plan: Plan, granted: int, left: int, clock: float) -> None:
        if left < 0:  # the bucket was not asked
            return
        lease.tokens = max(0, granted - 1)
        lease.tokens_until = clock + self.lease_ttl_s
        lease.bucket_left, lease.bucket_at = left, clock

    async def _admit_capped(
        self,
        client_id: str,
        plan: Plan,
        lease: Lease,
        month: str,
        max_cost: Decimal,
        hold_s: float,
    ) -> Reservation | None:
        need = to_pico(max_cost)
        hold = hold_s + self.settle_grace_s  # the lease must outlive the run and its record
        token = lease.take(time.monotonic())
        # One Redis time budget for the whole step, waiting on another request's call included
        # (set when this request first has to wait for Redis; None: no bound)
        deadline: float | None = None
        while True:
            clock = time.monotonic()
            if lease.unlimited_until > clock:
                if token:
                    return None
            else:
                held = lease.slice
                fits = held is not None and held.month == month and held.usable(need, clock + hold)
                if token and fits:
                    assert held is not None
                    return held.reserve(client_id, need)
            if lease.syncing is None:
                break
            deadline = self._deadline(deadline)
            async with asyncio.timeout_at(deadline):  # one call per client at a time: wait
                await asyncio.shield(lease.syncing)
            token = token or lease.take(time.monotonic())
        deadline = self._deadline(deadline)
        return await self._sync(client_id, plan, lease, month, need, hold, token, deadline)

    def _deadline(self, deadline: float | None) -> float | None:
        """``deadline``, or (the first time) the loop time when the Redis budget runs out."""
        if deadline is not None or self.redis_timeout_s is None:
            return deadline
        return asyncio.get_running_loop().time() + self.redis_timeout_s

    async def _sync(
        self,
        client_id: str,
        plan: Plan,
        lease: Lease,
        month: str,
        need: int,
        hold: float,
        token: bool,
        deadline: float | None,
    ) -> Reservation | None:
        """Replace this process's budget lease (and take tokens unless ``token``): one call,
        bounded by ``deadline`` (loop time; None: no bound)."""
        held = lease.slice
        if held is None or held.month != month:
            held = lease.slice = BudgetLease(month)
        clock = time.monotonic()
        # Locally the lease ends after ttl; in Redis 1 s later (clocks and round trips).
        ttl = max(self.budget_lease_ttl_s + hold, held.expires - clock)
        want_tokens = (
            0 if token else lease_size(plan.rate_per_second, plan.burst, self.lease_fraction)
        )
        want = max(need, 1) * self.budget_lease_runs
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lease.syncing = done
        keep = held.begin_sync()
        try:
            reply = await until(
                deadline,
                self._admit(
                    keys=self._keys(client_id, month),
                    args=[
                        repr(float(plan.rate_per_second)),
                        plan.burst,
                        want_tokens,
                        "lease",
                        self.lease_id,
                        _budget_arg(plan),
                        keep,
                        need,
                        want,
                        math.ceil((ttl + 1.0) * 1000),
                        repr(self.budget_lease_share),
                    ],
                ),
            )
        except BaseException:
            held.end_sync(0, held.expires)  # the old free part may be gone: never reuse it
            raise
        finally:
            lease.syncing = None
            done.set_result(None)
        granted, wait_ms, left, free, avail = (int(x) for x in reply[:5])
        clock_after = time.monotonic()
        if want_tokens:
            self._got_tokens(lease, plan, granted, left, clock_after)
        if free < 0:  # no budget: nothing leased
            lease.slice = None
            lease.unlimited_until = clock_after + self.quota_ttl_s
            reservation = None
        else:
            lease.unlimited_until = 0.0
            held.end_sync(free, clock + ttl)
            if avail <= 0 or avail < need:
                remaining = format_usd(from_pico(max(0, avail)))
                raise QuotaExceeded(
                    f"monthly budget: {remaining} USD left, this run may cost up to "
                    f"{format_usd(from_pico(need))} USD",
                    remaining=remaining,
                )
            reservation = held.reserve(client_id, need)
        if want_tokens and granted == 0:
            if reservation is not None:
                reservation.release()
            raise RateLimitExceeded(wait_ms / 1000.0, **policy(plan))
        return reservation
