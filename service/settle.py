"""After a run: price it, record it, render the response, and count it.

Only a client-chosen execution ID can be retried, so only then is the response kept for
replay; a generated ID keeps just its claim (which makes a spool replay exactly-once).
Redis being unreachable never loses usage: a record that cannot reach Redis within
``redis_budget_s`` goes to the spool. Budget alerts follow a recorded charge and never fail
the answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import Counter
from redis.exceptions import RedisError

from billing.alerts import Alerts
from billing.gate import Gate
from billing.money import format_usd, to_pico
from billing.plans import Plan
from billing.pricing import price
from billing.usage import UsageRecord, UsageStore
from sandbox import Limits, Result
from service.config import Settings
from service.errors import Conflict
from service.metrics import Metrics
from service.receipting import Receipting, receipt_path
from service.schemas import ExecuteRequest, render_execution

__all__ = [
    "Executed",
    "Settler",
    "cost_capped",
    "id_reused",
    "outcome_of",
    "redis_failed",
]

log = logging.getLogger("codexec.execution")


@dataclass(slots=True)
class Executed:
    """What the route sends back, and what the request log line says about it."""

    body: bytes
    execution_id: str
    client_id: str
    outcome: str = "replayed"
    fuel: int = 0
    cpu_ms: float = 0.0
    wall_ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def outcome_of(result: Result) -> str:
    """Metric label for a run: ``ok``, ``error`` or the limit error's type."""
    if result.ok:
        return "ok"
    assert result.error is not None
    if result.error.type.endswith("LimitError") or result.error.type in {
        "TimeoutError",
        "FuelExhaustedError",
    }:
        return result.error.type
    return "error"


def redis_failed(metrics: Metrics, operation: str) -> None:
    """Count and log a Redis operation the execution went on without (it fails open)."""
    metrics.redis_errors.labels(operation).inc()
    log.warning("redis unavailable during %s; continuing without it", operation)


def id_reused() -> Conflict:
    """The 409 of an execution ID already used with another request body."""
    return Conflict(
        "X-Execution-ID was already used with a different request body", field="X-Execution-ID"
    )


def cost_capped(
    result: Result, plan: Plan, request: ExecuteRequest, limits: Limits, timeout_fuel: int
) -> Result:
    """Say so when a run ran out of the fuel its ``maxCost`` bought (``timeout_fuel``: the
    fuel its timeout alone would have given)."""
    error = result.error
    if request.maxCost is None or error is None or error.type != "FuelExhaustedError":
        return result
    if limits.fuel >= timeout_fuel:
        return result  # the timeout's fuel was the lower cap
    so_far = format_usd(price(plan, result.fuel, result.peak_memory).cost)
    message = f"maxCost of {request.maxCost} USD reached (cost so far: {so_far} USD)"
    return replace(result, error=replace(error, message=message))


class Settler:
    """Prices, records and renders runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        usage: UsageStore,
        gate: Gate,
        metrics: Metrics,
        receipting: Receipting | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self._settings = settings
        self._usage = usage
        self._gate = gate
        self._metrics = metrics
        self._receipting = receipting
        self._alerts = alerts
        self._by_outcome: dict[str, Counter] = {}

    async def _check_alerts(self, client_id: str, plan: Plan, cost: Decimal) -> None:
        """Budget alerts after a recorded charge: local arithmetic, rarely one Redis call."""
        if self._alerts is None:
            return
        try:  # the Alerts bound their own round trips by redis_budget_s (rarely any)
            await self._alerts.after_charge(client_id, plan, to_pico(cost))
        except (RedisError, OSError, TimeoutError):
            redis_failed(self._metrics, "alerts")
        except Exception:  # an alert is a side effect: the recorded run is still answered
            log.exception("budget alert check failed")

    def _count(self, result: Result) -> str:
        """The run in the execution metrics; its outcome label."""
        m = self._metrics
        label = outcome_of(result)
        counter = self._by_outcome.get(label)
        if counter is None:  # one child per outcome label (a handful), looked up once
            counter = self._by_outcome[label] = m.executions.labels(label)
        counter.inc()
        m.execution_seconds.observe(result.wall_ms / 1000)
        m.execution_fuel.observe(result.fuel)
        if result.rebuilt:
            m.sandbox_rebuilds.inc()
        return label

    async def settle(
        self,
        client_id: str,
        plan: Plan,
        execution_id: str,
        body_hash: str,
        result: Result,
        *,
        replayable: bool,
        transpile_ms: float | None = None,
        request: ExecuteRequest | None = None,
        limits: Limits | None = None,
    ) -> Executed:
        """Price, record and render a run (``replayable``: keep the response for a retry)."""
        receipting = self._receipting
        charge = price(plan, result.fuel, result.peak_memory)
        response = render_execution(execution_id, result, charge, transpile_ms=transpile_ms)
        record = UsageRecord(
            client_id=client_id,
            execution_id=execution_id,
            at=datetime.now(UTC),
            plan=plan.name,
            fuel=result.fuel,
            cpu_ms=result.cpu_ms,
            wall_ms=result.wall_ms,
            peak_memory_bytes=result.peak_memory,
            error=not result.ok,
            charge=charge,
            receipt=None
            if receipting is None or request is None or limits is None
            else receipting.facts(request, limits, plan, result),
        )
        if request is not None and request.receipt and receipting is not None:
            signed = receipting.signed(record)
            response = render_execution(
                execution_id, result, charge, transpile_ms=transpile_ms, receipt=signed
            )
        kept = response if replayable else b""
        try:
            async with asyncio.timeout(self._settings.redis_budget_s):
                outcome = await self._usage.record(record, body_hash, kept)
        except TimeoutError:  # Redis stalled: the spool keeps it (the claim dedups a late write)
            outcome = self._usage.spool_record(record, body_hash, kept)
        if not outcome.duplicate:
            self._gate.charge(client_id, charge.cost)
            if not outcome.spooled:
                await self._check_alerts(client_id, plan, charge.cost)
        if outcome.spooled:  # the depth only grows here; the replay task reports it shrinking
            redis_failed(self._metrics, "record")
            self._metrics.spool_depth.set(self._usage.spool_depth())
        label = self._count(result)
        if outcome.duplicate and outcome.stored is not None:
            if outcome.stored.body_hash != body_hash:
                raise id_reused()
            # empty when this request's own first attempt landed (a generated ID keeps none)
            response = outcome.stored.response or response
        return Executed(
            response,
            execution_id,
            client_id,
            outcome=label,
            fuel=result.fuel,
            cpu_ms=result.cpu_ms,
            wall_ms=result.wall_ms,
            headers={"X-Receipt-URL": receipt_path(client_id, execution_id)},
        )
