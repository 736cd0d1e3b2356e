"""Admin billing endpoints: reports (JSON/CSV) and exports (KV bulk, ledger CSV/JSON lines,
CloudEvents, Stripe meter events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from billing.errors import FormatError
from billing.exports import export_lines, load_customers
from billing.kv import export_pages
from billing.reports import build_report, render_csv, render_json
from service.deps import AdminDep, Services, ServicesDep
from service.errors import BadRequest, NotFound
from service.routes.openapi import ADMIN_NOTES, error_responses
from service.schemas import ClientQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1/billing", tags=["billing"])

MAX_REPORT_DAYS = 400


class ReportFormat(StrEnum):
    """Output formats of a report."""

    json = "json"
    csv = "csv"


@router.get(
    "/report",
    summary="Usage report over a range of days (admin)",
    response_model=None,
    responses=error_responses(400, 401, 403, 503, notes=ADMIN_NOTES),
)
async def report(
    services: ServicesDep,
    _admin: AdminDep,
    start: date | None = None,
    end: date | None = None,
    client_id: ClientQuery = None,
    format: ReportFormat = ReportFormat.json,
) -> Response:
    """Totals per client and period for ``start..end`` (default: this month so far)."""
    today = datetime.now(UTC).date()
    start = start or today.replace(day=1)
    end = end or today
    if end < start:
        raise BadRequest("end is before start", field="end")
    if (end - start).days > MAX_REPORT_DAYS:
        raise BadRequest(f"a report spans at most {MAX_REPORT_DAYS} days", field="end")
    built = await build_report(services.redis, start, end, client_id)
    if format is ReportFormat.csv:
        filename = f"codexec-usage-{start}-{end}.csv"
        return Response(
            render_csv(built),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return Response(render_json(built), media_type="application/json")


class ExportFormat(StrEnum):
    """Export formats: KV bulk pages of the usage records, or the ledger line by line."""

    kv = "kv"
    csv = "csv"
    json = "json"
    cloudevents = "cloudevents"
    stripe = "stripe"


_LEDGER_MEDIA = {
    ExportFormat.csv: "text/csv",
    ExportFormat.json: "application/x-ndjson",
    ExportFormat.cloudevents: "application/x-ndjson",
    ExportFormat.stripe: "application/x-ndjson",
}


@router.get(
    "/export",
    summary="Usage for other billing systems (admin)",
    response_model=None,
    responses=error_responses(
        400, 401, 403, 404, 503, notes={**ADMIN_NOTES, 404: "page is past the last page"}
    ),
)
async def export(
    services: ServicesDep,
    _admin: AdminDep,
    client_id: ClientQuery = None,
    format: ExportFormat = ExportFormat.kv,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    start: date | None = None,
    end: date | None = None,
    value: Literal["fuel", "micro_usd"] | None = None,
) -> Response:
    """``kv``: one bulk file (at most 10,000 pairs) for ``wrangler kv bulk put`` and
    ``X-Total-Pages``. Other formats: the ledger entries of ``start..end`` (inclusive days,
    default this month so far) streamed as CSV or JSON lines (``json``, ``cloudevents``,
    ``stripe``; see docs/billing.md "Exports")."""
    if format is not ExportFormat.kv:
        return await _ledger_export(services, format, client_id, start, end, value)
    pages = await export_pages(services.redis, client_id)
    total = max(1, len(pages))
    if page > total:
        raise NotFound(f"there are {total} pages", field="page")
    body = pages[page - 1] if pages else b"[]"
    return Response(
        body,
        media_type="application/json",
        headers={"X-Total-Pages": str(total), "X-Page": str(page)},
    )


async def _ledger_export(
    services: Services,
    format: ExportFormat,
    client_id: str | None,
    start: date | None,
    end: date | None,
    value: Literal["fuel", "micro_usd"] | None,
) -> Response:
    s = services.settings
    today = datetime.now(UTC).date()
    first, last = start or today.replace(day=1), end or today
    if last < first:
        raise BadRequest("end is before start", field="end")
    if (last - first).days > MAX_REPORT_DAYS:
        raise BadRequest(f"an export spans at most {MAX_REPORT_DAYS} days", field="end")
    try:
        customers = (
            load_customers(s.stripe_customers_file)
            if format is ExportFormat.stripe and s.stripe_customers_file
            else None
        )
        if format is ExportFormat.stripe and customers is None:
            raise FormatError("CODEXEC_STRIPE_CUSTOMERS_FILE is not set")
        lines = export_lines(
            services.redis,
            format.value,
            datetime.combine(first, time(), UTC),
            datetime.combine(last + timedelta(days=1), time(), UTC),
            client_id,
            source=s.export_source,
            event_name=s.stripe_event_name,
            customers=customers,
            value=value or s.stripe_value,
        )
        head = await anext(lines, b"")  # errors (e.g. unmapped clients) before any byte is sent
    except FormatError as exc:
        raise BadRequest(str(exc), field="format") from None

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for line in lines:
            yield line

    filename = (
        f"codexec-{format.value}-{first}-{last}.{'csv' if format is ExportFormat.csv else 'jsonl'}"
    )
    return StreamingResponse(
        body(),
        media_type=_LEDGER_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
