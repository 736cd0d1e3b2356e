"""The packed usage field: exact round trip, mixing with the older plain fields, the spend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import to_pico
from billing.plans import Plans
from billing.totals import FIELDS, PACKED_FIELD, UsageTotals, packed_values, spent_pusd
from billing.usage import UsageRecord

HUGE = st.integers(min_value=0, max_value=2**96 - 1)
TOTALS = st.builds(UsageTotals, **dict.fromkeys(FIELDS, HUGE))


@given(TOTALS)
def test_packed_round_trip_is_exact(totals: UsageTotals) -> None:
    data = totals.packed()
    assert len(data) == 108
    assert packed_values(data) == [getattr(totals, f) for f in FIELDS]
    assert UsageTotals.from_hash({PACKED_FIELD.encode(): data}) == totals


@given(TOTALS, TOTALS)
def test_plain_fields_add_to_the_packed_field(packed: UsageTotals, plain: UsageTotals) -> None:
    raw = {k.encode(): str(v).encode() for k, v in plain.to_hash().items()}
    raw[b"packed"] = packed.packed()
    raw[b"unrelated"] = b"x"
    assert UsageTotals.from_hash(raw) == packed + plain  # updated_ms: the maximum


def test_the_older_plain_layout_alone_still_reads() -> None:
    raw = {b"executions": b"3", b"cost_pusd": b"12345678901234567890", b"updated_ms": b"7"}
    assert UsageTotals.from_hash(raw) == UsageTotals(
        executions=3, cost_pusd=12345678901234567890, updated_ms=7
    )


def test_bad_packed_values_are_refused() -> None:
    with pytest.raises(ValueError, match="108 bytes"):
        packed_values(b"\0" * 107)
    with pytest.raises(ValueError, match="cannot be packed"):
        UsageTotals(fuel=-1).packed()
    with pytest.raises(ValueError, match="cannot be packed"):
        UsageTotals(fuel=2**96).packed()
    with pytest.raises(TypeError, match="decode_responses"):
        UsageTotals.from_hash({"packed": "text"})


def test_spent_sums_both_layouts() -> None:
    packed = UsageTotals(cost_pusd=2**70 + 5).packed()
    assert spent_pusd(None, None) == 0
    assert spent_pusd(b"10", None) == 10
    assert spent_pusd(None, packed) == 2**70 + 5
    assert spent_pusd(b"10", packed) == 2**70 + 15


@pytest.mark.parametrize(
    "cost",
    ["0", "0.0000000000005", "0.0000000000015", "0.0000000000025", "1.2345678901234567", "9" * 7],
)
def test_increments_round_cost_like_to_pico(cost: str) -> None:
    rec = UsageRecord.priced(
        Plans.load().get("standard"), client_id="a", execution_id="e", fuel=1, cpu_ms=0.0004,
        wall_ms=1.0005, peak_memory_bytes=0, at=datetime(2024, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),
    )  # fmt: skip
    charge = replace(rec.charge, cost=Decimal(cost))
    totals = replace(rec, charge=charge).increments()
    assert totals.cost_pusd == to_pico(Decimal(cost))
    assert totals.updated_ms == 1704067200999
    assert (totals.cpu_us, totals.wall_us) == (round(0.4), round(1000.5))
