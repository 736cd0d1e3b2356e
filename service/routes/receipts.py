"""``GET /v1/receipts/public-key`` and ``GET /v1/receipts/{executionId}``: signed receipts.

A receipt is rebuilt from the execution's ledger entry and signed when fetched (see
:mod:`billing.receipts`). A client sees only its own executions (any other ID is 404); the
admin and the legacy key name the client with ``clientId``.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Path, Response

from billing import receipt_keys
from billing.ledger import entry_by_execution
from billing.receipts import receipt_of_entry, sign
from service.deps import CallerDep, Services, ServicesDep
from service.errors import NotFound, Unavailable
from service.routes.openapi import READ_NOTES, error_responses
from service.routes.usage import caller_client
from service.schemas import EXECUTION_ID_PATTERN, ClientQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1/receipts", tags=["receipts"])


def _key(services: Services) -> Ed25519PrivateKey:
    receipting = services.executor.receipting
    if receipting is None or receipting.key is None:
        raise Unavailable(
            "receipt signing is not configured (CODEXEC_RECEIPT_SIGNING_KEY)",
            type="ReceiptsUnavailable",
            retry_after=3600,
        )
    return receipting.key


_NO_KEY = "No receipt signing key configured: ReceiptsUnavailable (Retry-After)"


@router.get(
    "/public-key",
    summary="The Ed25519 public key that signs receipts",
    responses=error_responses(503, notes={503: _NO_KEY}),
)
async def public_key(services: ServicesDep) -> dict[str, Any]:
    """The key in two forms (base64 of the 32 raw bytes, and PEM) and its key ID."""
    public = _key(services).public_key()
    return {
        "algorithm": "Ed25519",
        "keyId": receipt_keys.key_id(public),
        "publicKey": receipt_keys.public_raw_b64(public),
        "pem": receipt_keys.public_pem(public),
    }


@router.get(
    "/{execution_id}",
    summary="The signed receipt of one execution",
    response_model=None,
    responses=error_responses(
        400,
        401,
        403,
        404,
        503,
        notes={
            **READ_NOTES,
            404: "No such execution of this client (or past the retention)",
            503: f"{_NO_KEY}, or the key store is unreachable",
        },
        success={200: "`{receipt, signature}`"},
    ),
)
async def receipt(
    services: ServicesDep,
    caller: CallerDep,
    execution_id: Annotated[str, Path(pattern=EXECUTION_ID_PATTERN)],
    client_id: ClientQuery = None,
) -> Response:
    """``{"receipt": {...}, "signature": {"algorithm", "keyId", "value"}}``."""
    client = caller_client(caller, client_id)
    key = _key(services)
    entry = await entry_by_execution(services.redis, client, execution_id)
    body = None if entry is None else receipt_of_entry(entry)
    if body is None:
        raise NotFound(f"no receipt for execution {execution_id}", field="executionId")
    return Response(orjson.dumps(sign(body, key)), media_type="application/json")
