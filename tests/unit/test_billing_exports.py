"""Export converters (pure): CloudEvents, Stripe meter events, CSV/JSON rows, customer files."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from billing.errors import FormatError
from billing.exports import (
    CSV_COLUMNS,
    entry_fields,
    load_customers,
    to_cloudevent,
    to_csv_row,
    to_stripe_event,
)
from billing.ledger import LedgerEntry

AT = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def entry(**overrides: object) -> LedgerEntry:
    values: dict[str, object] = {
        "entry_id": "1714564800250-0",
        "kind": "execution",
        "execution_id": "run-1",
        "client_id": "acme",
        "plan": "basic",
        "at": AT,
        "fuel": 73_511,
        "billed_cpu_ns": 6_000,
        "cpu_us": 330,
        "wall_us": 410,
        "mem_bytes": 262_144,
        "cost_pusd": 2_100_000,
        "error": False,
        "fields": {},
    }
    values.update(overrides)
    return LedgerEntry(**values)  # type: ignore[arg-type]


def test_cloudevent_has_the_required_attributes() -> None:
    event = to_cloudevent(entry(), "//codexec/production")
    assert event["specversion"] == "1.0"
    assert event["id"] == "run-1"
    assert event["source"] == "//codexec/production"
    assert event["type"] == "codexec.execution"
    assert event["subject"] == "acme"
    assert event["time"] == "2024-05-01T12:00:00.250Z"
    assert event["datacontenttype"] == "application/json"
    data = event["data"]
    assert data["fuel"] == 73_511
    assert data["cost"] == "0.0000021"
    assert data["costPicoUsd"] == 2_100_000
    assert data["memoryBytes"] == 262_144
    assert data["error"] is False
    assert orjson.loads(orjson.dumps(event)) == event


def test_corrections_are_their_own_event_type_with_a_distinct_id() -> None:
    void = entry(kind="void", cost_pusd=-2_100_000, fields={"reason": "duplicate"}, fuel=0)
    event = to_cloudevent(void, "codexec")
    assert event["type"] == "codexec.void"
    assert event["id"] == "void:run-1"
    assert event["data"]["cost"] == "-0.0000021"
    assert event["data"]["reason"] == "duplicate"


def test_stripe_meter_event_in_micro_usd_and_fuel() -> None:
    e = entry(cost_pusd=2_500_000)  # 2.5 micro-USD: half-to-even -> 2
    event = to_stripe_event(e, "codexec_execution", "cus_123")
    assert event == {
        "event_name": "codexec_execution",
        "identifier": "run-1",
        "timestamp": 1_714_564_800,
        "payload": {"stripe_customer_id": "cus_123", "value": "2"},
    }
    assert to_stripe_event(entry(cost_pusd=3_500_000), "m", "c")["payload"]["value"] == "4"  # type: ignore[index]
    fuel = to_stripe_event(e, "m", "cus_123", "fuel")
    assert fuel is not None
    assert fuel["payload"]["value"] == "73511"


def test_stripe_skips_corrections_and_shortens_long_identifiers() -> None:
    assert to_stripe_event(entry(kind="credit", cost_pusd=-5), "m", "c") is None
    long_id = "x" * 128
    event = to_stripe_event(entry(execution_id=long_id), "m", "c")
    assert event is not None
    assert len(event["identifier"]) <= 100
    assert event["identifier"].startswith("sha256:")
    other = to_stripe_event(entry(execution_id="y" * 128), "m", "c")
    assert other is not None
    assert other["identifier"] != event["identifier"]


def test_csv_row_matches_the_columns() -> None:
    row = to_csv_row(entry(error=True))
    assert len(row) == len(CSV_COLUMNS)
    parsed = next(csv.DictReader(io.StringIO(",".join(CSV_COLUMNS) + "\n" + ",".join(row))))
    assert parsed["executionId"] == "run-1"
    assert parsed["cost"] == "0.0000021"
    assert parsed["error"] == "true"
    assert parsed["reason"] == ""


def test_json_fields_are_the_cloudevent_data() -> None:
    e = entry()
    assert entry_fields(e) == to_cloudevent(e, "s")["data"]


def test_customer_files_json_and_csv(tmp_path: Path) -> None:
    j = tmp_path / "c.json"
    j.write_text('{"acme": "cus_1", "bob": "cus_2"}')
    assert load_customers(j) == {"acme": "cus_1", "bob": "cus_2"}
    c = tmp_path / "c.csv"
    c.write_text("client,customer\nacme,cus_1\n\nbob, cus_2\n")
    assert load_customers(c) == {"acme": "cus_1", "bob": "cus_2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"acme": 5}', "customer ID strings"), ("{", "not JSON"), ("acme\n", "client,customer")],
)
def test_bad_customer_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        load_customers(path)
    with pytest.raises(FormatError, match="cannot read"):
        load_customers(tmp_path / "absent.json")
