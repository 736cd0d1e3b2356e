"""Key building: hash tags, validation, KV names, parsing back."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing import keys

CLIENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-",
    min_size=1,
    max_size=128,
)


def test_keys_of_one_client_share_a_hash_tag() -> None:
    built = [
        keys.usage("acme", "2024-05-01"),
        keys.usage("acme", "2024-05"),
        keys.execution("acme", "run-1"),
        keys.ledger("acme"),
        keys.budget("acme"),
        keys.rate("acme"),
        keys.rollup_scratch("acme"),
    ]
    assert built[0] == "usage:{acme}:2024-05-01"
    assert built[1] == "usage:{acme}:2024-05"
    assert built[2] == "exec:{acme}:run-1"
    assert built[3] == "ledger:{acme}"
    assert all("{acme}" in k for k in built)


@pytest.mark.parametrize("bad", ["", "a{b", "a}b", "a b", "x" * 129, "é"])
def test_bad_client_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        keys.usage(bad, "2024-05")


@pytest.mark.parametrize("bad", ["2024-5", "2024-05-1", "24-05", "2024-05-01T00", "2024-13"])
def test_bad_periods_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        keys.usage("acme", bad)


def test_execution_ids_and_api_keys_are_validated() -> None:
    with pytest.raises(ValueError):
        keys.execution("acme", "bad id")
    with pytest.raises(ValueError):
        keys.api_key("ABC")
    assert keys.api_key("a" * 64) == "key:" + "a" * 64


def test_periods_of_dates() -> None:
    assert keys.day_period(date(2024, 2, 9)) == "2024-02-09"
    assert keys.month_period(datetime(2024, 2, 9, tzinfo=UTC)) == "2024-02"
    assert keys.parse_period("2024-02") == date(2024, 2, 1)


@given(CLIENT, st.dates(min_value=date(1000, 1, 1)), st.booleans())
def test_usage_keys_parse_back(client: str, day: date, monthly: bool) -> None:
    period = keys.month_period(day) if monthly else keys.day_period(day)
    assert keys.parse_usage_key(keys.usage(client, period)) == (client, period)
    assert keys.parse_usage_key(keys.usage(client, period).encode()) == (client, period)
    kv = keys.kv_usage(client, period)
    assert "{" not in kv
    assert keys.parse_kv_usage(kv) == (client, period)


def test_non_usage_keys_do_not_parse() -> None:
    assert keys.parse_usage_key("usage:{a}:2024-05:x") is None
    assert keys.parse_usage_key("tmp:{a}:rollup") is None
    assert keys.client_of_usage_key("usage:{a}:2024-05") == "a"
    with pytest.raises(ValueError):
        keys.parse_kv_usage("usage:{a}:2024-05")
    with pytest.raises(ValueError):
        keys.parse_kv_usage("other:a:2024-05")
