"""Report folding and rendering, without Redis."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import orjson
import pytest

from billing.records import StoredRecord
from billing.reports import fold_report, periods_between, render_csv, render_json
from billing.totals import UsageTotals


def test_periods_use_whole_months_and_leftover_days() -> None:
    assert periods_between(date(2024, 5, 1), date(2024, 5, 31)) == ["2024-05"]
    assert periods_between(date(2024, 5, 30), date(2024, 7, 2)) == [
        "2024-05-30", "2024-05-31", "2024-06", "2024-07-01", "2024-07-02",
    ]  # fmt: skip
    assert periods_between(date(2024, 2, 29), date(2024, 2, 29)) == ["2024-02-29"]
    assert periods_between(date(2023, 12, 1), date(2024, 1, 31)) == ["2023-12", "2024-01"]
    with pytest.raises(ValueError):
        periods_between(date(2024, 5, 2), date(2024, 5, 1))


def _rec(client: str, period: str, n: int) -> StoredRecord:
    return StoredRecord(
        client,
        period,
        UsageTotals(
            executions=n, errors=n // 2, fuel=1000 * n, billed_cpu_ns=7 * n, cpu_us=3 * n,
            wall_us=5 * n, mem_bytes=(1 << 20) * n, cost_pusd=333_333 * n, updated_ms=n,
        ),
    )  # fmt: skip


RECORDS = [
    _rec("a", "2024-05-01", 1),
    _rec("a", "2024-05-02", 2),
    _rec("a", "2024-05", 3),  # the month of the days above: never mixed with them
    _rec("b", "2024-05-02", 4),
    _rec("b", "2024-06-01", 5),  # outside the range
]


def test_fold_keeps_the_range_and_adds_up() -> None:
    report = fold_report(date(2024, 5, 1), date(2024, 5, 2), None, RECORDS)
    assert [(r.client_id, r.period) for r in report.rows] == [
        ("a", "2024-05-01"), ("a", "2024-05-02"), ("b", "2024-05-02"),
    ]  # fmt: skip
    assert report.total.executions == 7
    assert report.total.cost_pusd == 333_333 * 7
    assert report.by_client["a"].executions == 3
    assert report.total.updated_ms == 4
    month = fold_report(date(2024, 5, 1), date(2024, 5, 31), "a", RECORDS)
    assert [r.period for r in month.rows] == ["2024-05"]


def test_json_and_csv_totals_equal_the_rows() -> None:
    report = fold_report(date(2024, 5, 1), date(2024, 5, 2), None, RECORDS)
    doc = orjson.loads(render_json(report))
    assert doc["total"]["executions"] == sum(r["executions"] for r in doc["rows"])
    assert Decimal(doc["total"]["cost"]) == sum(Decimal(r["cost"]) for r in doc["rows"])
    assert doc["total"]["cost"] == "0.000002333331"
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    body, total = rows[:-1], rows[-1]
    assert total["client"] == "*"
    for column in ("executions", "errors", "fuel"):
        assert int(total[column]) == sum(int(r[column]) for r in body)
    for column in ("cost", "cpuMs", "memoryMb", "computeUnits", "wallMs"):
        assert Decimal(total[column]) == sum(Decimal(r[column]) for r in body)
    assert body[0]["memoryMb"] == "1"
