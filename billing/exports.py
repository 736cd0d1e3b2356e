"""Ledger exports other billing systems ingest: CSV, JSON lines, CloudEvents, Stripe meter events.

Each ledger entry (:class:`billing.ledger.LedgerEntry`: an execution, or a ``void``/``credit``
correction) becomes one line (CSV row or JSON object); the converters are pure functions.

``cloudevents``
    One CloudEvents 1.0 JSON object per entry, one per line (what OpenMeter's ingest API and
    ``benthos``-style collectors read)::

        {"specversion": "1.0", "id": "<execution ID>", "source": "<CODEXEC_EXPORT_SOURCE>",
         "type": "codexec.execution", "subject": "<client>", "time": "<RFC 3339 UTC>",
         "datacontenttype": "application/json", "data": {...the metered fields...}}

    A correction has ``type`` ``codexec.void`` / ``codexec.credit``, ``id``
    ``void:<execution ID>`` / ``credit:<credit ID>`` and a negative cost.
``stripe``
    One Stripe Billing meter event per execution (the parameters of
    ``POST /v1/billing/meter_events``), one per line::

        {"event_name": "<CODEXEC_STRIPE_EVENT_NAME>", "identifier": "<execution ID>",
         "timestamp": <Unix seconds>, "payload": {"stripe_customer_id": "cus_...",
         "value": "<integer>"}}

    ``value`` is the fuel, or the cost in micro-USD rounded half-to-even per execution
    (Stripe wants whole numbers; fuel is exact). The client -> customer mapping comes from a
    file (:func:`load_customers`). Corrections are not exported (Stripe meters cannot take
    them as events; make them in Stripe as credits). Identifiers longer than Stripe's 100
    characters are replaced by ``sha256:<first 64 hex of their SHA-256>``.
``json`` / ``csv``
    The entry's fields, as JSON lines or as CSV with a header row.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal

import orjson

from billing.errors import FormatError
from billing.ledger import LedgerEntry, iter_entries, ledger_clients
from billing.money import format_usd, from_pico
from billing.scripts import AnyRedis
from billing.totals import iso_utc

__all__ = [
    "CSV_COLUMNS",
    "LEDGER_FORMATS",
    "ExportOptions",
    "StripeValue",
    "entry_fields",
    "export_lines",
    "load_customers",
    "to_cloudevent",
    "to_csv_row",
    "to_stripe_event",
]

LEDGER_FORMATS = ("csv", "json", "cloudevents", "stripe")
"""Export formats read from the ledger (``kv`` is the usage records' format: billing.kv)."""

StripeValue = Literal["fuel", "micro_usd"]

CSV_COLUMNS = (
    "entryId", "kind", "executionId", "clientId", "plan", "time", "fuel", "billedCpuNs",
    "cpuUs", "wallUs", "memoryBytes", "cost", "costPicoUsd", "error", "reason",
)  # fmt: skip

STRIPE_IDENTIFIER_MAX = 100


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Settings of the ``cloudevents`` and ``stripe`` formats (``CODEXEC_EXPORT_SOURCE``,
    ``CODEXEC_STRIPE_EVENT_NAME``, ``CODEXEC_STRIPE_CUSTOMERS_FILE``, ``CODEXEC_STRIPE_VALUE``)."""

    source: str = "codexec"
    event_name: str = "codexec_execution"
    customers_file: Path | None = None
    value: StripeValue = "micro_usd"


def entry_fields(entry: LedgerEntry) -> dict[str, Any]:
    """The metered fields of an entry (the ``data`` of its CloudEvent, a JSON line)."""
    fields: dict[str, Any] = {
        "entryId": entry.entry_id,
        "kind": entry.kind,
        "executionId": entry.execution_id,
        "clientId": entry.client_id,
        "plan": entry.plan,
        "time": iso_utc(entry.at),
        "fuel": entry.fuel,
        "billedCpuNs": entry.billed_cpu_ns,
        "cpuUs": entry.cpu_us,
        "wallUs": entry.wall_us,
        "memoryBytes": entry.mem_bytes,
        "cost": format_usd(from_pico(entry.cost_pusd)),
        "costPicoUsd": entry.cost_pusd,
        "error": entry.error,
    }
    if entry.kind != "execution":
        fields["reason"] = entry.fields.get("reason", "")
    return fields


def _event_id(entry: LedgerEntry) -> str:
    return entry.execution_id if entry.kind == "execution" else f"{entry.kind}:{entry.execution_id}"


def to_cloudevent(entry: LedgerEntry, source: str) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode JSON object for ``entry`` (module docstring)."""
    return {
        "specversion": "1.0",
        "id": _event_id(entry),
        "source": source,
        "type": f"codexec.{entry.kind}",
        "subject": entry.client_id,
        "time": iso_utc(entry.at),
        "datacontenttype": "application/json",
        "data": entry_fields(entry),
    }


def _stripe_identifier(execution_id: str) -> str:
    if len(execution_id) <= STRIPE_IDENTIFIER_MAX:
        return execution_id
    return "sha256:" + hashlib.sha256(execution_id.encode()).hexdigest()[:64]


def to_stripe_event(
    entry: LedgerEntry, event_name: str, customer_id: str, value: StripeValue = "micro_usd"
) -> dict[str, Any] | None:
    """A Stripe meter event for an execution entry; None for a correction."""
    if entry.kind != "execution":
        return None
    if value == "fuel":
        amount = entry.fuel
    else:
        micro = Decimal(entry.cost_pusd).scaleb(-6)
        amount = int(micro.to_integral_value(rounding=ROUND_HALF_EVEN))
    return {
        "event_name": event_name,
        "identifier": _stripe_identifier(entry.execution_id),
        "timestamp": int(entry.at.timestamp()),
        "payload": {"stripe_customer_id": customer_id, "value": str(amount)},
    }


def to_csv_row(entry: LedgerEntry) -> list[str]:
    """One CSV row (:data:`CSV_COLUMNS`); cost an exact decimal."""
    f = entry_fields(entry)
    return [
        "true" if value is True else "false" if value is False else str(value)
        for value in (f.get(c, "") for c in CSV_COLUMNS)
    ]


def load_customers(path: Path) -> dict[str, str]:
    """Client -> Stripe customer: a JSON object, or CSV lines ``client,customer`` (a header
    row ``client,...`` is skipped). :class:`FormatError` naming the file if malformed."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise FormatError(f"customer mapping {path}: cannot read: {exc}") from None
    if text.lstrip().startswith("{"):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FormatError(f"customer mapping {path}: not JSON: {exc}") from None
        if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in doc.items()):
            raise FormatError(f"customer mapping {path}: values must be customer ID strings")
        return dict(doc)
    mapping: dict[str, str] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or (n == 1 and row[0].strip().lower() in ("client", "clientid", "client_id")):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise FormatError(f"customer mapping {path}: line {n}: expected client,customer")
        mapping[row[0].strip()] = row[1].strip()
    return mapping


async def _clients(redis: AnyRedis, client_id: str | None) -> list[str]:
    if client_id is not None:
        return [client_id]
    return sorted([c async for c in ledger_clients(redis)])


async def export_lines(
    redis: AnyRedis,
    fmt: str,
    start: datetime,
    end: datetime,
    client_id: str | None = None,
    *,
    source: str = "codexec",
    event_name: str = "codexec_execution",
    customers: Mapping[str, str] | None = None,
    value: StripeValue = "micro_usd",
) -> AsyncIterator[bytes]:
    """The export of ``start <= at < end`` in ``fmt`` (:data:`LEDGER_FORMATS`), line by line.

    Clients in client-ID order, each one's entries oldest first. ``stripe`` needs a customer
    for every client exported: :class:`FormatError` naming those without one, before any
    line is produced.
    """
    if fmt not in LEDGER_FORMATS:
        raise FormatError(f"unknown export format {fmt!r}: one of {', '.join(LEDGER_FORMATS)}")
    clients = await _clients(redis, client_id)
    if fmt == "stripe":
        missing = [c for c in clients if c not in (customers or {})]
        if missing:
            raise FormatError(
                f"no Stripe customer for client(s) {', '.join(missing[:10])}: add them to the "
                "customer mapping file"
            )
    if fmt == "csv":
        yield _csv_line(list(CSV_COLUMNS))
    for client in clients:
        async for entry in iter_entries(redis, client, start, end):
            if fmt == "csv":
                yield _csv_line(to_csv_row(entry))
                continue
            if fmt == "json":
                doc: dict[str, Any] | None = entry_fields(entry)
            elif fmt == "cloudevents":
                doc = to_cloudevent(entry, source)
            else:
                assert customers is not None
                doc = to_stripe_event(entry, event_name, customers[client], value)
            if doc is not None:
                yield orjson.dumps(doc) + b"\n"


def _csv_line(row: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue().encode()
