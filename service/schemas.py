"""Request and response shapes of the contract, and the one renderer of a response body."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from billing.pricing import Charge
from sandbox import Result

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

RUNNABLE_LANGUAGES = ("javascript", "js")
# Languages the Worker's client knows but codexec does not run (answered 400 by name).
KNOWN_LANGUAGES = (*RUNNABLE_LANGUAGES, "typescript", "ts", "python", "shell", "html", "css")

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_MEMORY_BYTES = 52_428_800
MIN_MEMORY_BYTES = 1024 * 1024


class ExecuteRequest(BaseModel):
    """Body of ``POST /execute`` (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: Annotated[StrictStr, Field(min_length=1, description="Body of an async function")]
    language: StrictStr = Field("javascript", description="`javascript` or `js`")
    timeout: StrictInt = Field(DEFAULT_TIMEOUT_MS, ge=1, description="Wall-clock limit, ms")
    memoryLimit: StrictInt = Field(
        DEFAULT_MEMORY_BYTES, ge=MIN_MEMORY_BYTES, description="Linear-memory limit, bytes"
    )
    allowedModules: list[StrictStr] = Field(
        default_factory=list, max_length=64, description="Modules `require` may load"
    )
    context: dict[str, Any] = Field(default_factory=dict, description="Global `context`")
    clientId: StrictStr | None = Field(None, pattern=CLIENT_ID_PATTERN, description="Billed client")

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
        if value:
            names = ", ".join(sorted({m[:40] for m in value}))
            raise ValueError(f"no modules are available to require (asked for: {names})")
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


class ExecuteResponse(BaseModel):
    """Body of a 200 answer to ``POST /execute`` (documentation model)."""

    success: bool
    executionId: str
    result: Any = None
    output: list[str]
    error: ExecutionError | None
    metrics: ExecutionMetrics


class ErrorDetail(BaseModel):
    """``error`` of a non-200 answer."""

    type: str
    message: str
    field: str | None = None


class ErrorEnvelope(BaseModel):
    """Every non-200 answer."""

    success: Literal[False] = False
    error: ErrorDetail


def _decimal_fragment(value: Decimal, places: int) -> orjson.Fragment:
    quantum = Decimal(1).scaleb(-places)
    text = format(value.quantize(quantum).normalize(), "f")
    return orjson.Fragment(text)


def render_execution(execution_id: str, result: Result, charge: Charge) -> bytes:
    """The 200 body of the contract for a run and its price; ``cost`` exact to 10 places."""
    error = result.error
    return orjson.dumps(
        {
            "success": result.ok,
            "executionId": execution_id,
            "result": orjson.Fragment(result.result_json),
            "output": list(result.output),
            "error": None
            if error is None
            else {"type": error.type, "message": error.message, "stack": error.stack},
            "metrics": {
                "executionTime": round(result.wall_ms, 3),
                "cpuTime": round(result.cpu_ms, 3),
                "memoryUsage": result.peak_memory,
                "fuel": result.fuel,
                "computeUnits": _decimal_fragment(charge.compute_units, 6),
                "cost": _decimal_fragment(charge.cost, 10),
            },
        }
    )
