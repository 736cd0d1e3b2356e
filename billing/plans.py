"""Plans: limits, prices, budget and rate limit per tier, read from a JSON file.

File format (``plans.default.json`` is the packaged default, modelled on the contract)::

    {"default": "basic",
     "plans": {"basic": {"max_timeout_ms": 10000, "max_memory_bytes": 134217728,
                         "allowed_modules": ["path"], "price_per_execution": "0",
                         "price_per_cpu_second": "0.0001", "price_per_mb": "0.00001",
                         "monthly_budget": "10", "rate_per_second": 5, "burst": 10}}}

Prices and budgets are decimal strings (numbers are accepted, read via their text);
``monthly_budget: null`` means unlimited; ``max_concurrency`` (optional) bounds one
client's requests in progress and runs in flight per process so that others keep being
served (without it the service's ``CODEXEC_CLIENT_SHARE`` applies). Any error raises
:class:`FormatError` naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from billing.errors import FormatError, UnknownPlan

__all__ = ["Plan", "Plans"]

_Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class Plan(BaseModel):
    """One tier: what a client may ask for and what it pays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    max_timeout_ms: int = Field(gt=0)
    max_memory_bytes: int = Field(gt=0)
    allowed_modules: tuple[str, ...] = ()
    price_per_execution: _Money = Decimal(0)
    price_per_cpu_second: _Money
    price_per_mb: _Money
    monthly_budget: _Money | None = None
    rate_per_second: float = Field(gt=0)
    burst: int = Field(ge=1)
    max_concurrency: int | None = Field(None, ge=1)
    """Requests in progress and runs in flight (running or queued) of one client per
    process; None: the service's ``CODEXEC_CLIENT_SHARE`` of ``CODEXEC_MAX_IN_FLIGHT``
    (requests) and of ``CODEXEC_SANDBOX_THREADS`` (runs), at least 1 each."""
    alert_thresholds: tuple[Annotated[int, Field(ge=1, le=100)], ...] = (50, 80, 100)
    """Percentages of ``monthly_budget`` at which a ``budget.threshold`` webhook is sent (once
    a month each; see billing/alerts.py)."""

    @field_validator("alert_thresholds")
    @classmethod
    def _sorted_thresholds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(set(value)))


class _PlansFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str
    plans: dict[str, dict[str, Any]]


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


class Plans:
    """The configured plans, by name."""

    def __init__(self, plans: Mapping[str, Plan], default_name: str) -> None:
        if default_name not in plans:
            raise FormatError(f"default plan {default_name!r} is not defined")
        self._plans = dict(plans)
        self.default_name = default_name

    @classmethod
    def load(cls, path: Path | None = None) -> Plans:
        """Read a plans file; ``None`` reads the packaged defaults."""
        if path is None:
            source = "plans.default.json (packaged)"
            raw = resources.files("billing").joinpath("plans.default.json").read_bytes()
        else:
            source = str(path)
            try:
                raw = Path(path).read_bytes()
            except OSError as exc:
                raise FormatError(f"plans file {source}: cannot read: {exc}") from exc
        return cls.parse(raw, source)

    @classmethod
    def parse(cls, raw: bytes | str, source: str = "plans") -> Plans:
        """Parse the JSON text of a plans file (``source`` names it in errors)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise FormatError(f"plans file {source}: not JSON: {exc}") from exc
        try:
            parsed = _PlansFile.model_validate(data)
        except ValidationError as exc:
            raise FormatError(f"plans file {source}: {_first_error(exc)}") from exc
        plans: dict[str, Plan] = {}
        for name, fields in parsed.plans.items():
            try:
                plans[name] = Plan.model_validate({**fields, "name": name})
            except ValidationError as exc:
                raise FormatError(f"plans file {source}: plans.{name}.{_first_error(exc)}") from exc
        if not plans:
            raise FormatError(f"plans file {source}: no plans defined")
        if parsed.default not in plans:
            raise FormatError(
                f"plans file {source}: default plan {parsed.default!r} is not defined"
            )
        return cls(plans, parsed.default)

    @property
    def names(self) -> tuple[str, ...]:
        """Plan names in file order."""
        return tuple(self._plans)

    def get(self, name: str) -> Plan:
        """The plan called ``name``; :class:`UnknownPlan` if there is none."""
        try:
            return self._plans[name]
        except KeyError:
            raise UnknownPlan(f"unknown plan {name!r}") from None

    @property
    def default(self) -> Plan:
        """The plan given to clients without one."""
        return self._plans[self.default_name]
