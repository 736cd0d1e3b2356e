"""The pure part of the admission gate: lease sizes and local token bookkeeping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import QuotaExceeded
from billing.gate import Lease, lease_size


@given(
    st.floats(min_value=0.01, max_value=1e7, allow_nan=False),
    st.integers(min_value=1, max_value=10**7),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_lease_size_is_between_one_and_burst(rate: float, burst: int, fraction: float) -> None:
    size = lease_size(rate, burst, fraction)
    assert 1 <= size <= burst
    assert size <= max(1, rate * fraction)


def test_lease_tokens_expire_and_run_out() -> None:
    lease = Lease(tokens=2, tokens_until=10.0)
    assert lease.take(1.0)
    assert lease.take(2.0)
    assert not lease.take(3.0)  # spent
    lease.tokens = 5
    assert not lease.take(10.0)  # expired, even with tokens left
    assert lease.tokens == 5


def test_lease_budget_reading() -> None:
    lease = Lease(spent=Decimal("1.00"), budget=Decimal("1.00"), budget_until=5.0)
    assert lease.budget_fresh(4.9)
    assert not lease.budget_fresh(5.0)
    with pytest.raises(QuotaExceeded):
        lease.check_budget()
    lease.budget = None
    lease.check_budget()
    lease.budget = Decimal("1.01")
    lease.check_budget()


async def test_charge_updates_the_local_reading() -> None:
    from billing.gate import Gate

    class NoRedis:
        def register_script(self, source: str) -> object:
            return object()

    gate = Gate(NoRedis())  # type: ignore[arg-type]
    gate.charge("nobody", Decimal(1))  # no lease yet: nothing to update, no error
    lease = gate._leases["acme"] = Lease(spent=Decimal("0.5"), budget=Decimal(1), budget_until=1e18)
    gate.charge("acme", Decimal("0.5"))
    assert lease.spent == Decimal(1)
    with pytest.raises(QuotaExceeded):
        lease.check_budget()
