"""Pricing and money: the contract's formula, exact decimals, one rounding to pico-USD."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.money import format_usd, from_pico, to_pico
from billing.plans import Plans
from billing.pricing import FUEL_PER_CPU_MS, billed_cpu_ms, peak_mb, price

MiB = 1 << 20

# plan -> (USD per CPU-second, USD per MB), from the contract's table
CONTRACT = {
    "basic": ("0.0001", "0.00001"),
    "standard": ("0.0005", "0.00005"),
    "premium": ("0.001", "0.0001"),
    "enterprise": ("0.002", "0.0002"),
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_default_plans_price_like_the_contract(name: str) -> None:
    plan = Plans.load().get(name)
    per_cpu, per_mb = (Decimal(x) for x in CONTRACT[name])
    # 2 seconds of billed CPU and 3 MB of peak memory
    charge = price(plan, 2000 * FUEL_PER_CPU_MS, 3 * MiB)
    assert charge.billed_cpu_ms == Decimal(2000)
    assert charge.compute_units == Decimal("2.3")
    assert charge.cost == 2 * per_cpu + 3 * per_mb
    assert isinstance(charge.cost, Decimal)


def test_cost_is_exact_not_float() -> None:
    plan = Plans.load().get("basic")
    charge = price(plan, FUEL_PER_CPU_MS // 3, 262_144)  # 1/3 ms, 0.25 MB
    # 1/3 ms is billed to the nanosecond: 0.000333 ms
    assert charge.billed_cpu_ms == Decimal("0.333333")
    expected = Decimal("0.000333333") * Decimal("0.0001") + Decimal("0.25") * Decimal("0.00001")
    assert charge.cost == expected
    assert charge.compute_units == Decimal("0.000333333") + Decimal("0.025")


def test_per_execution_price_is_added() -> None:
    plan = Plans.load().get("basic").model_copy(update={"price_per_execution": Decimal("0.01")})
    assert price(plan, 0, 0).cost == Decimal("0.01")


def test_billed_cpu_comes_from_fuel_only() -> None:
    assert billed_cpu_ms(FUEL_PER_CPU_MS) == 1
    assert billed_cpu_ms(0) == 0
    assert peak_mb(MiB // 2) == Decimal("0.5")
    with pytest.raises(ValueError):
        billed_cpu_ms(-1)


def test_pico_rounding_happens_once_half_even() -> None:
    assert to_pico(Decimal("0.0000000000005")) == 0  # half to even
    assert to_pico(Decimal("0.0000000000015")) == 2
    assert to_pico(Decimal("1.5")) == 1_500_000_000_000
    assert from_pico(2_100_000) == Decimal("0.0000021")
    assert format_usd(from_pico(2_100_000)) == "0.0000021"
    assert format_usd(Decimal(0)) == "0"
    assert format_usd(Decimal("1E+2")) == "100"


def test_sum_of_rounded_records_is_exact() -> None:
    plan = Plans.load().get("premium")
    charges = [price(plan, 7_777_777 * i, 12_345 * i) for i in range(1, 200)]
    picos = [to_pico(c.cost) for c in charges]
    assert from_pico(sum(picos)) == sum(from_pico(p) for p in picos)
    assert abs(from_pico(sum(picos)) - sum(c.cost for c in charges)) <= Decimal("1e-12") * 100
