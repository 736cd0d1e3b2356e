"""Hard caps, the pure parts: a lease's local bookkeeping and what ``maxCost`` buys."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.leases import BudgetLease
from billing.plans import Plans
from billing.pricing import FUEL_PER_CPU_MS, price
from billing.quotas import fuel_for_cost

BASIC = Plans.load().get("basic")
MiB = 1 << 20


def test_reserve_settle_release_keeps_the_lease_whole() -> None:
    lease = BudgetLease("2026-11")
    lease.end_sync(1000, expires=50.0)
    assert lease.usable(400, until=49.0)
    assert not lease.usable(400, until=51.0)  # the run could outlive the lease
    assert not lease.usable(1001, until=1.0)
    a, b = lease.reserve("acme", 400), lease.reserve("acme", 400)
    assert (lease.free, lease.reserved) == (200, 800)
    assert not lease.usable(400, until=1.0)
    a.settle(150)  # a's actual cost was recorded: the rest comes back at once
    a.release()  # and nothing more later
    assert (lease.free, lease.reserved) == (450, 400)
    b.release()  # b was not billed (it failed, or its record was a duplicate)
    assert (lease.free, lease.reserved) == (850, 0)


def test_a_sync_keeps_runs_in_flight_and_any_debt() -> None:
    lease = BudgetLease("2026-11")
    lease.end_sync(100, expires=10.0)
    run = lease.reserve("acme", 100)
    keep = lease.begin_sync()  # while a call replaces the lease...
    assert (keep, lease.free) == (100, 0)
    run.settle(130)  # ...the run is recorded, at more than it reserved (should not happen)
    assert lease.free == -30
    lease.end_sync(50, expires=20.0)
    assert lease.free == 20
    assert lease.begin_sync() == 0  # nothing in flight, no debt left after the grant
    lease.end_sync(0, expires=20.0)
    over = lease.reserve("acme", 0)
    over.settle(10)
    assert lease.keep() == 10  # a debt is kept leased until Redis has seen the record


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(1), places=9),
    st.integers(min_value=MiB, max_value=128 * MiB),
)
def test_fuel_for_cost_never_buys_more_than_the_amount(max_cost: Decimal, memory: int) -> None:
    fuel = fuel_for_cost(BASIC, max_cost, memory)
    assert fuel is not None
    if fuel > 0:
        assert price(BASIC, fuel, memory).cost <= max_cost
        assert price(BASIC, fuel + 20, memory).cost > max_cost  # and not much less


def test_fuel_for_cost_edges() -> None:
    memory_only = price(BASIC, 0, 50 * MiB).cost
    assert fuel_for_cost(BASIC, memory_only / 2, 50 * MiB) == 0  # cannot pay for memory
    one_ms = memory_only + BASIC.price_per_cpu_second / 1000
    assert fuel_for_cost(BASIC, one_ms, 50 * MiB) == FUEL_PER_CPU_MS
    free_cpu = BASIC.model_copy(update={"price_per_cpu_second": Decimal(0)})
    assert fuel_for_cost(free_cpu, Decimal(1), MiB) is None


def test_rate_limit_headers_are_structured_fields() -> None:
    from service.errors import RateLimited, rate_limit_headers

    assert rate_limit_headers(40, 2, remaining=37, reset_s=1) == {
        "RateLimit-Policy": '"burst";q=40;w=2',
        "RateLimit": '"burst";r=37;t=1',
    }
    refused = RateLimited(0.2, limit=40, window_s=2)
    assert refused.headers == {
        "Retry-After": "1",
        "RateLimit-Policy": '"burst";q=40;w=2',
        "RateLimit": '"burst";r=0;t=1',
    }
    assert RateLimited(3.5).headers == {"Retry-After": "4"}  # a concurrency share: no policy


async def test_rate_state_from_the_local_lease() -> None:
    import time

    from billing.gate import Gate, Lease

    class NoRedis:
        def register_script(self, source: str) -> object:
            return object()

    gate = Gate(NoRedis())  # type: ignore[arg-type]
    plan = BASIC.model_copy(update={"rate_per_second": 5.0, "burst": 10})
    fresh = gate.rate_state("nobody", plan)
    assert (fresh.limit, fresh.window_s, fresh.remaining, fresh.reset_s) == (10, 2, 10, 0)
    now = time.monotonic()
    gate._leases["acme"] = Lease(tokens=2, tokens_until=now + 60, bucket_left=3, bucket_at=now)
    state = gate.rate_state("acme", plan)
    assert 5 <= state.remaining <= 6  # 2 held + 3 in the bucket (+ what refilled since)
    assert state.reset_s == 1  # 4-5 tokens at 5/s


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "NaN", "Infinity", 0.1, "1" * 41])
def test_max_cost_must_be_a_positive_decimal_string(bad: object) -> None:
    from pydantic import ValidationError

    from service.errors import validation_error
    from service.schemas import ExecuteRequest

    with pytest.raises(ValidationError) as info:
        ExecuteRequest.model_validate({"code": "return 1", "maxCost": bad})
    error = validation_error(info.value.errors())
    assert (error.status, error.field) == (400, "maxCost")
    ok = ExecuteRequest.model_validate({"code": "return 1", "maxCost": "0.0001"})
    assert ok.max_cost == Decimal("0.0001")
