"""Usage reports per client or for all clients over a day, a month or any range of days.

A range is split into whole calendar months (read from the monthly records, which are kept
when daily ones expire) and the remaining days (daily records), so no execution is counted
twice. The folding and rendering are pure; only :func:`build_report` touches Redis. Every
total is the exact sum of the rows shown (integers and pico-USD), so the CSV adds up.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

from billing import keys
from billing.money import format_decimal
from billing.records import StoredRecord, fetch_records, scan_usage_keys
from billing.scripts import AnyRedis
from billing.totals import UsageTotals, contract_value, fold, iso_utc

__all__ = [
    "CSV_COLUMNS",
    "Report",
    "ReportRow",
    "build_report",
    "fold_report",
    "month_end",
    "periods_between",
    "render_csv",
    "render_json",
]

CSV_COLUMNS = (
    "client", "period", "executions", "errors", "cpuMs", "measuredCpuMs", "wallMs", "fuel",
    "memoryMb", "computeUnits", "cost", "updatedAt",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One stored record in the report."""

    client_id: str
    period: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class Report:
    """Rows (sorted by client, period), per-client totals and the grand total."""

    start: date
    end: date
    client_id: str | None
    rows: tuple[ReportRow, ...]
    by_client: dict[str, UsageTotals]
    total: UsageTotals


def month_end(d: date) -> date:
    """The last day of ``d``'s month."""
    nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def periods_between(start: date, end: date) -> list[str]:
    """Periods covering ``start..end`` (inclusive): whole months as ``YYYY-MM``, else days."""
    if end < start:
        raise ValueError(f"report range ends ({end}) before it starts ({start})")
    out: list[str] = []
    d = start
    while d <= end:
        last = month_end(d)
        if d.day == 1 and last <= end:
            out.append(keys.month_period(d))
            d = last + timedelta(days=1)
        else:
            out.append(keys.day_period(d))
            d += timedelta(days=1)
    return out


def fold_report(
    start: date, end: date, client_id: str | None, records: Iterable[StoredRecord]
) -> Report:
    """Keep the records of the range's periods (and client) and add them up."""
    wanted = set(periods_between(start, end))
    rows = sorted(
        (
            ReportRow(r.client_id, r.period, r.totals)
            for r in records
            if r.period in wanted and (client_id is None or r.client_id == client_id)
        ),
        key=lambda row: (row.client_id, row.period),
    )
    by_client: dict[str, UsageTotals] = {}
    for row in rows:
        by_client[row.client_id] = by_client.get(row.client_id, UsageTotals()) + row.totals
    return Report(start, end, client_id, tuple(rows), by_client, fold(r.totals for r in rows))


async def build_report(
    redis: AnyRedis, start: date, end: date, client_id: str | None = None
) -> Report:
    """Read the records of ``start..end`` for one client (or all) and fold them."""
    periods = periods_between(start, end)
    if client_id is not None:
        names = [keys.usage(client_id, p) for p in periods]
    else:
        wanted = set(periods)
        names = [
            n
            for n in await scan_usage_keys(redis)
            if (parsed := keys.parse_usage_key(n)) is not None and parsed[1] in wanted
        ]
    return fold_report(start, end, client_id, await fetch_records(redis, names))


def _row_fields(totals: UsageTotals) -> dict[str, Any]:
    out = contract_value(totals)
    out["measuredCpuMs"] = float(totals.measured_cpu_ms)
    return out


def render_json(report: Report) -> str:
    """The report as JSON text (``cost`` exact decimal strings)."""
    doc = {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "client": report.client_id,
        "rows": [
            {"client": r.client_id, "period": r.period, **_row_fields(r.totals)}
            for r in report.rows
        ],
        "byClient": {c: _row_fields(t) for c, t in sorted(report.by_client.items())},
        "total": _row_fields(report.total),
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def _csv_row(client: str, period: str, t: UsageTotals) -> list[str]:
    return [
        client,
        period,
        str(t.executions),
        str(t.errors),
        format_decimal(t.cpu_ms),
        format_decimal(t.measured_cpu_ms),
        format_decimal(t.wall_ms),
        str(t.fuel),
        format_decimal(t.memory_mb),
        format_decimal(t.compute_units),
        format_decimal(t.cost),
        iso_utc(t.updated_at) or "",
    ]


def render_csv(report: Report) -> str:
    """The report as CSV: one row per record, then a ``*`` total row; decimals exact."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        writer.writerow(_csv_row(r.client_id, r.period, r.totals))
    span = f"{report.start.isoformat()}..{report.end.isoformat()}"
    writer.writerow(_csv_row("*", span, report.total))
    return buf.getvalue()
