"""``GET /v1/usage``: the caller's usage today and this month; ``GET /v1/usage/executions``:
its ledger, page by page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query

from billing.ledger import LedgerEntry, read_page
from billing.money import format_decimal, format_usd, from_pico
from billing.totals import contract_value, iso_utc
from service.auth import Caller
from service.deps import CallerDep, ServicesDep
from service.errors import BadRequest
from service.routes.openapi import READ_NOTES, error_responses
from service.schemas import ClientQuery

__all__ = ["caller_client", "router"]

router = APIRouter(prefix="/v1", tags=["billing"])

CURSOR_PATTERN = r"^\d{1,20}-\d{1,20}$"
DEFAULT_RANGE = timedelta(days=31)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def caller_client(caller: Caller, client_id: str | None) -> str:
    """The client whose data a caller reads: its own, or ``clientId`` for the admin and the
    legacy key (required for them)."""
    if caller.admin or caller.legacy:
        if not client_id:
            raise BadRequest("clientId is required with this key", field="clientId")
        return client_id
    return caller.billed_client(client_id)


@router.get(
    "/usage",
    summary="The caller's usage today and this month",
    responses=error_responses(400, 401, 403, 503, notes=READ_NOTES),
)
async def usage(
    services: ServicesDep, caller: CallerDep, client_id: ClientQuery = None
) -> dict[str, Any]:
    """Totals of the caller's client (the legacy key names the client with ``clientId``)."""
    client_id = caller_client(caller, client_id)
    now = datetime.now(UTC)
    day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
    today = await services.usage.totals(client_id, day)
    this_month = await services.usage.totals(client_id, month)
    return {
        "clientId": client_id,
        "plan": caller.plan,
        "today": {"period": day, **contract_value(today)},
        "month": {"period": month, **contract_value(this_month)},
    }


def _entry_json(e: LedgerEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "entryId": e.entry_id,
        "kind": e.kind,
        "executionId": e.execution_id,
        "plan": e.plan,
        "time": iso_utc(e.at),
        "cost": format_usd(from_pico(e.cost_pusd)),
    }
    if e.kind == "execution":
        item |= {
            "error": e.error,
            "fuel": e.fuel,
            "billedCpuMs": format_decimal(Decimal(e.billed_cpu_ns).scaleb(-6)),
            "cpuMs": e.cpu_us / 1000,
            "wallMs": e.wall_us / 1000,
            "memoryBytes": e.mem_bytes,
            "codeSha256": e.fields.get("code_sha256"),
        }
    else:
        item["reason"] = e.fields.get("reason", "")
        if e.fields.get("ref"):
            item["ref"] = e.fields["ref"]
    return item


@router.get(
    "/usage/executions",
    summary="The caller's ledger entries, page by page",
    responses=error_responses(400, 401, 403, 503, notes=READ_NOTES),
)
async def executions(
    services: ServicesDep,
    caller: CallerDep,
    client_id: ClientQuery = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Ledger entries (executions, voids, credits) with ``from <= time < to`` (ISO-8601, UTC
    if no offset; default: the last 31 days), oldest first; pass ``nextCursor`` back as
    ``cursor`` for the next page (null: no more)."""
    client = caller_client(caller, client_id)
    now = datetime.now(UTC)
    end = _utc(end, "to") if end is not None else now + timedelta(seconds=1)
    start = _utc(start, "from") if start is not None else max(EARLIEST, end - DEFAULT_RANGE)
    if end <= start:
        raise BadRequest("to must be after from", field="to")
    try:
        entries, next_cursor = await read_page(services.redis, client, start, end, cursor, limit)
    except ValueError as exc:
        raise BadRequest(str(exc), field="cursor") from None
    return {
        "clientId": client,
        "from": iso_utc(start),
        "to": iso_utc(end),
        "executions": [_entry_json(e) for e in entries],
        "nextCursor": next_cursor,
    }


def _utc(at: datetime, field: str) -> datetime:
    """``at`` in UTC (naive means UTC); 400 outside 1970..9000."""
    try:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:
        at = EARLIEST - timedelta(days=1)
    if not EARLIEST <= at <= LATEST:
        raise BadRequest(f"{field} must be between 1970 and 9000", field=field)
    return at
