"""Request and response shapes of the contract, and the one renderer of a response body."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from billing.money import format_scaled, parse_usd
from billing.pricing import Charge
from sandbox import Result, modules

__all__ = [
    "CLIENT_ID_PATTERN",
    "EXECUTION_ID_PATTERN",
    "ClientQuery",
    "ErrorEnvelope",
    "ExecuteRequest",
    "ExecuteResponse",
    "render_execution",
]

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
EXECUTION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
EXECUTION_ID_RE = re.compile(EXECUTION_ID_PATTERN)

ClientQuery = Annotated[str | None, Query(alias="clientId", pattern=CLIENT_ID_PATTERN)]

TYPESCRIPT_LANGUAGES = ("typescript", "ts")  # types stripped first (sandbox.typescript)
RUNNABLE_LANGUAGES = ("javascript", "js", *TYPESCRIPT_LANGUAGES)
# Languages the Worker's client knows but codexec does not run (answered 400 by name).
KNOWN_LANGUAGES = (*RUNNABLE_LANGUAGES, "python", "shell", "html", "css")

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_MEMORY_BYTES = 52_428_800
MIN_MEMORY_BYTES = 1024 * 1024


class ExecuteRequest(BaseModel):
    """Body of ``POST /execute`` (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: Annotated[StrictStr, Field(min_length=1, description="Body of an async function")]
    language: StrictStr = Field(
        "javascript", description="`javascript`/`js`, or `typescript`/`ts` (types stripped)"
    )
    timeout: StrictInt = Field(DEFAULT_TIMEOUT_MS, ge=1, description="Wall-clock limit, ms")
    memoryLimit: StrictInt = Field(
        DEFAULT_MEMORY_BYTES, ge=MIN_MEMORY_BYTES, description="Linear-memory limit, bytes"
    )
    allowedModules: list[StrictStr] = Field(
        default_factory=list, max_length=64, description="Modules `require` may load"
    )
    context: dict[str, Any] = Field(default_factory=dict, description="Global `context`")
    clientId: StrictStr | None = Field(None, pattern=CLIENT_ID_PATTERN, description="Billed client")
    receipt: StrictBool = Field(
        False, description="Include the signed receipt under `receipt` in the response"
    )
    maxCost: StrictStr | None = Field(
        None,
        max_length=40,
        description="Most this run may cost, USD as a decimal string: its fuel is capped to "
        "what that buys under the client's plan (FuelExhaustedError when reached)",
    )

    @field_validator("maxCost")
    @classmethod
    def _max_cost(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            amount = parse_usd(value)
        except ValueError:
            raise ValueError('maxCost must be a decimal string of USD, e.g. "0.001"') from None
        if amount <= 0:
            raise ValueError("maxCost must be more than 0")
        return value

    @property
    def max_cost(self) -> Decimal | None:
        """``maxCost`` as an exact amount, if given."""
        return None if self.maxCost is None else parse_usd(self.maxCost)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        lang = value.strip().lower()
        if lang not in RUNNABLE_LANGUAGES:
            raise ValueError(
                f"language {value[:40]!r} is not supported; supported: "
                + ", ".join(RUNNABLE_LANGUAGES)
            )
        return lang

    @field_validator("allowedModules")
    @classmethod
    def _modules(cls, value: list[str]) -> list[str]:
        if bad := modules.unknown(value):
            names = ", ".join(sorted({m[:40] for m in bad}))
            provided = ", ".join(modules.PROVIDED)
            raise ValueError(f"no such module: {names} (available: {provided}, or * for all)")
        return value


class ExecutionError(BaseModel):
    """``error`` of a failed execution."""

    type: str
    message: str
    stack: str


class ExecutionMetrics(BaseModel):
    """``metrics`` of an execution."""

    executionTime: float
    cpuTime: float
    memoryUsage: int
    fuel: int
    computeUnits: float
    cost: float
    transpileTime: float | None = Field(
        None, description="TypeScript only: ms spent stripping types (not billed)"
    )


class ExecuteResponse(BaseModel):
    """Body of a 200 answer to ``POST /execute`` (documentation model)."""

    success: bool
    executionId: str
    result: Any = None
    output: list[str]
    error: ExecutionError | None
    metrics: ExecutionMetrics
    receipt: dict[str, Any] | None = Field(
        None, description="The signed receipt (only when the request set `receipt: true`)"
    )


class ErrorDetail(BaseModel):
    """``error`` of a non-200 answer."""

    type: str
    message: str
    field: str | None = None


class ErrorEnvelope(BaseModel):
    """Every non-200 answer."""

    success: Literal[False] = False
    error: ErrorDetail


def _decimal_fragment(num: int, scale: int, places: int) -> orjson.Fragment:
    """``num / 10**scale`` to ``places`` decimals (half-to-even), no trailing zeros."""
    return orjson.Fragment(format_scaled(num, scale, places))


def render_execution(
    execution_id: str,
    result: Result,
    charge: Charge,
    *,
    transpile_ms: float | None = None,
    receipt: dict[str, Any] | None = None,
) -> bytes:
    """The 200 body of the contract for a run and its price; ``cost`` exact to 10 places.

    ``transpile_ms`` (TypeScript only) adds ``metrics.transpileTime``; ``receipt`` (the
    signed receipt, when the request asked for it) adds ``receipt``."""
    error = result.error
    metrics: dict[str, Any] = {
        "executionTime": round(result.wall_ms, 3),
        "cpuTime": round(result.cpu_ms, 3),
        "memoryUsage": result.peak_memory,
        "fuel": result.fuel,
        "computeUnits": _decimal_fragment(charge.units_num, charge.units_scale, 6),
        "cost": _decimal_fragment(charge.cost_num, charge.cost_scale, 10),
    }
    if transpile_ms is not None:
        metrics["transpileTime"] = round(transpile_ms, 3)
    body: dict[str, Any] = {
        "success": result.ok,
        "executionId": execution_id,
        "result": orjson.Fragment(result.result_json),
        "output": list(result.output),
        "error": None
        if error is None
        else {"type": error.type, "message": error.message, "stack": error.stack},
        "metrics": metrics,
    }
    if receipt is not None:
        body["receipt"] = receipt
    return orjson.dumps(body)
