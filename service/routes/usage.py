"""``GET /v1/usage``: the caller's own usage, today and this month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from billing.totals import contract_value
from service.deps import CallerDep, ServicesDep
from service.errors import BadRequest
from service.schemas import ClientQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["billing"])


@router.get("/usage", summary="The caller's usage today and this month")
async def usage(
    services: ServicesDep, caller: CallerDep, client_id: ClientQuery = None
) -> dict[str, Any]:
    """Totals of the caller's client (the legacy key names the client with ``clientId``)."""
    if caller.admin or caller.legacy:
        if not client_id:
            raise BadRequest("clientId is required with this key", field="clientId")
    else:
        client_id = caller.billed_client(client_id)
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
