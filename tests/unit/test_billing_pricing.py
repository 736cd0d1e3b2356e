"""Pricing and money: the contract's formula, exact decimals, one rounding to pico-USD."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from billing.money import (
    format_scaled,
    format_usd,
    from_pico,
    pico_of_scaled,
    round_half_even,
    to_pico,
)
from billing.plans import Plans
from billing.pricing import (
    FUEL_PER_CPU_MS,
    Charge,
    billed_cpu_ms,
    peak_mb,
    price,
    price_decimal,
)
from billing.usage_record import UsageRecord, increments_of
from sandbox import Result
from service.schemas import render_execution

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


# --- the integer path against the Decimal formulas -------------------------------------------

_EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)
BASIC = Plans.load().get("basic")


def reference_charge(
    per_cpu: Decimal, per_mb: Decimal, per_run: Decimal, fuel: int, memory: int
) -> tuple[Decimal, Decimal, Decimal]:
    """The pricing formulas, written out in Decimal (billed CPU-ms, compute units, cost)."""
    with localcontext(_EXACT):
        cpu_ms = (Decimal(fuel) / FUEL_PER_CPU_MS).quantize(
            Decimal("0.000001"), rounding=ROUND_HALF_EVEN
        )
        mb = Decimal(memory) / (1 << 20)
        cpu_s = cpu_ms / 1000
        units = cpu_s + Decimal("0.1") * mb
        cost = cpu_s * per_cpu + mb * per_mb
        cost += per_run
    return cpu_ms, units, cost


def reference_pico(usd: Decimal) -> int:
    with localcontext(_EXACT):
        return int(usd.scaleb(12).to_integral_value(rounding=ROUND_HALF_EVEN))


def reference_text(value: Decimal, places: int) -> str | None:
    """How the response body wrote a Decimal (default context: half-to-even); None where
    that raised (over 28 digits: a cost of 10**18 USD)."""
    try:
        return format(value.quantize(Decimal(1).scaleb(-places)).normalize(), "f")
    except InvalidOperation:
        return None


# prices as a plans file gives them: up to 12 places, trailing zeros and exponents kept
prices = st.one_of(
    st.builds(
        lambda coefficient, places: Decimal(coefficient).scaleb(-places),
        st.integers(min_value=0, max_value=10**15),
        st.integers(min_value=-3, max_value=12),
    ),
    st.sampled_from(["0", "0.0", "0E-12", "0.0001", "0.00010", "1E+2", "0.000000000001"]).map(
        Decimal
    ),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=12),
)
fuels = st.integers(min_value=0, max_value=2**53)
memories = st.integers(min_value=0, max_value=2**32)

RESULT = Result(
    ok=True,
    result_json="null",
    output=(),
    error=None,
    fuel=0,
    cpu_ms=0.5,
    wall_ms=0.75,
    peak_memory=0,
    random_seed=0,
    rebuilt=False,
)


def metric_text(body: bytes, name: str) -> str:
    found = re.search(rb'"' + name.encode() + rb'":([^,}]*)', body)
    assert found is not None, body
    return found.group(1).decode()


@settings(max_examples=400, deadline=None)
@given(prices, prices, prices, fuels, memories)
def test_integer_price_is_the_decimal_formula(
    per_cpu: Decimal, per_mb: Decimal, per_run: Decimal, fuel: int, memory: int
) -> None:
    plan = BASIC.model_copy(
        update={
            "price_per_cpu_second": per_cpu,
            "price_per_mb": per_mb,
            "price_per_execution": per_run,
        }
    )
    cpu_ms, units, cost = reference_charge(per_cpu, per_mb, per_run, fuel, memory)
    charge = price(plan, fuel, memory)
    # equal values with the same exponents: the same text in spool lines and receipts
    assert (charge.billed_cpu_ms, charge.compute_units, charge.cost) == (cpu_ms, units, cost)
    assert str(charge.billed_cpu_ms) == str(cpu_ms)
    assert str(charge.compute_units) == str(units)
    assert str(charge.cost) == str(cost)
    assert charge == price_decimal(plan, fuel, memory)

    pico = reference_pico(cost)
    assert to_pico(charge.cost) == pico
    assert charge.cost_pico == pico
    assert Decimal(charge.billed_ns).scaleb(-6, _EXACT) == cpu_ms
    assert Decimal(charge.units_num).scaleb(-charge.units_scale, _EXACT) == units
    assert Decimal(charge.cost_num).scaleb(-charge.cost_scale, _EXACT) == cost

    rec = UsageRecord(
        client_id="c",
        execution_id="e",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        plan=plan.name,
        fuel=fuel,
        cpu_ms=0.5,
        wall_ms=0.75,
        peak_memory_bytes=memory,
        error=False,
        charge=charge,
    )
    inc = increments_of(rec)
    assert inc[3] == int(cpu_ms.scaleb(6).to_integral_value())
    assert inc[7] == pico
    back = UsageRecord.from_json(rec.to_json())
    assert back == rec
    assert increments_of(back) == inc

    body = render_execution("e", RESULT, charge)
    assert metric_text(body, "computeUnits") == reference_text(units, 6)
    if (cost_text := reference_text(cost, 10)) is not None:
        assert metric_text(body, "cost") == cost_text
    assert render_execution("e", RESULT, back.charge) == body


@pytest.mark.parametrize(
    ("fuel", "memory"), [(2**64, 5), (2**70 + 3, 2**50 + 1), (FUEL_PER_CPU_MS * 10**9, 2**48)]
)
def test_beyond_the_integer_bounds_prices_the_same(fuel: int, memory: int) -> None:
    charge = price(BASIC, fuel, memory)
    ref = reference_charge(
        BASIC.price_per_cpu_second, BASIC.price_per_mb, BASIC.price_per_execution, fuel, memory
    )
    assert tuple(map(str, (charge.billed_cpu_ms, charge.compute_units, charge.cost))) == tuple(
        map(str, ref)
    )
    assert charge.cost_pico == reference_pico(ref[2])


def test_negative_zero_prices_fall_back_to_decimal() -> None:
    plan = BASIC.model_copy(update={"price_per_execution": Decimal("-0.000")})
    ref = reference_charge(plan.price_per_cpu_second, plan.price_per_mb, Decimal("-0.000"), 7, 9)
    assert str(price(plan, 7, 9).cost) == str(ref[2])


@given(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=0, max_value=40),
    st.sampled_from([0, 1, 6, 10, 12]),
)
def test_scaled_text_and_pico_match_decimal(num: int, scale: int, places: int) -> None:
    value = Decimal(num).scaleb(-scale, _EXACT)
    expected = reference_text(value, places)
    assume(expected is not None)
    assert format_scaled(num, scale, places) == expected
    assert pico_of_scaled(num, scale) == reference_pico(value)
    assert round_half_even(num, 10**scale) == int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def test_charge_from_decimals_keeps_its_values() -> None:
    charge = Charge(Decimal("0.330"), Decimal("0.0250049"), Decimal("2.1E-6"))
    assert charge.billed_ns == 330_000
    assert (charge.units_num, charge.units_scale) == (250_049, 7)
    assert charge.cost_pico == 2_100_000
    assert str(charge.cost) == "0.0000021"
    assert repr(charge) == (
        "Charge(billed_cpu_ms=Decimal('0.330'), compute_units=Decimal('0.0250049'), "
        "cost=Decimal('0.0000021'))"
    )
    assert charge == Charge(Decimal("0.33"), Decimal("0.0250049"), Decimal("0.0000021"))
    assert hash(charge) == hash(Charge(Decimal("0.33"), Decimal("0.0250049"), Decimal("21E-7")))


@pytest.mark.parametrize(("fuel", "memory"), [(-1, 0), (0, -1)])
def test_negative_measurements_are_refused(fuel: int, memory: int) -> None:
    with pytest.raises(ValueError):
        price(BASIC, fuel, memory)
