"""Admin billing endpoints: reports (JSON/CSV) and the KV bulk export."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from billing.kv import export_pages
from billing.reports import build_report, render_csv, render_json
from service.deps import AdminDep, ServicesDep
from service.errors import BadRequest, NotFound
from service.schemas import ClientQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1/billing", tags=["billing"])

MAX_REPORT_DAYS = 400


class ReportFormat(StrEnum):
    """Output formats of a report."""

    json = "json"
    csv = "csv"


@router.get("/report", summary="Usage report over a range of days (admin)", response_model=None)
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


@router.get("/export", summary="Usage in Cloudflare KV bulk format (admin)", response_model=None)
async def export(
    services: ServicesDep,
    _admin: AdminDep,
    client_id: ClientQuery = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """One bulk file (at most 10,000 pairs) for ``wrangler kv bulk put``; ``X-Total-Pages``."""
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
