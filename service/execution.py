"""One execution end to end: validate, replay or run, price, record, render.

This is the only module that talks to both :mod:`sandbox` and :mod:`billing`. Redis being
unreachable never loses usage (records go to the spool) and never blocks an execution:
idempotency look-ups, rate limits and quota reads fail open, counted in
``codexec_redis_errors_total``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from redis.exceptions import RedisError

from billing.errors import QuotaExceeded, RateLimitExceeded
from billing.gate import Gate
from billing.plans import Plan, Plans
from billing.pricing import FUEL_PER_CPU_MS, price
from billing.usage import UsageRecord, UsageStore
from sandbox import Limits, Result, Sandbox
from service.admission import Admission
from service.auth import Caller
from service.config import Settings
from service.errors import BadRequest, Conflict, validation_error
from service.metrics import Metrics
from service.schemas import EXECUTION_ID_RE, ExecuteRequest, render_execution

__all__ = ["Executed", "ExecutionService"]

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


def request_hash(client_id: str, request: ExecuteRequest) -> str:
    """Identity of a request for idempotency: the normalized body, defaults filled in."""
    canonical = orjson.dumps(
        {"client": client_id, **request.model_dump(mode="json")}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()


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


class ExecutionService:
    """Runs requests for authenticated callers."""

    def __init__(
        self,
        settings: Settings,
        *,
        sandbox: Sandbox,
        admission: Admission,
        usage: UsageStore,
        gate: Gate,
        plans: Plans,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._admission = admission
        self._usage = usage
        self._gate = gate
        self._plans = plans
        self._metrics = metrics

    def close(self) -> None:
        """Wait for the runs in progress, then stop the sandbox threads."""
        self._admission.close()

    def _validate(self, caller: Caller, body: dict[str, Any]) -> tuple[ExecuteRequest, str, Plan]:
        try:
            request = ExecuteRequest.model_validate(body)
        except ValidationError as exc:
            raise validation_error(exc.errors()) from None
        client_id = caller.billed_client(request.clientId)
        plan = self._plans.get(caller.plan)
        s = self._settings
        if len(request.code.encode("utf-8", "surrogatepass")) > s.max_code_bytes:
            raise BadRequest(f"code is over {s.max_code_bytes} bytes", field="code")
        if request.timeout > plan.max_timeout_ms:
            raise BadRequest(
                f"timeout is over the {plan.name} plan's maximum of {plan.max_timeout_ms} ms",
                field="timeout",
            )
        if request.memoryLimit > plan.max_memory_bytes:
            raise BadRequest(
                f"memoryLimit is over the {plan.name} plan's maximum of "
                f"{plan.max_memory_bytes} bytes",
                field="memoryLimit",
            )
        return request, client_id, plan

    def _limits(self, request: ExecuteRequest) -> Limits:
        s = self._settings
        return Limits(
            timeout_ms=request.timeout,
            memory_bytes=request.memoryLimit,
            fuel=int(request.timeout * FUEL_PER_CPU_MS * s.fuel_headroom),
            max_code_bytes=s.max_code_bytes,
            max_output_lines=s.max_output_lines,
            max_output_bytes=s.max_output_bytes,
            max_result_bytes=s.max_result_bytes,
        )

    def _redis_failed(self, operation: str) -> None:
        self._metrics.redis_errors.labels(operation).inc()
        log.warning("redis unavailable during %s; continuing without it", operation)

    async def execute(
        self, caller: Caller, body: dict[str, Any], execution_id: str | None
    ) -> Executed:
        """Answer one ``POST /execute``."""
        if execution_id is not None and not EXECUTION_ID_RE.fullmatch(execution_id):
            raise BadRequest(
                "X-Execution-ID must be 1-128 characters of [A-Za-z0-9._:-]",
                field="X-Execution-ID",
            )
        request, client_id, plan = self._validate(caller, body)
        context_json = orjson.dumps(request.context).decode()
        if len(context_json) > self._settings.max_context_bytes:
            raise BadRequest(
                f"context is over {self._settings.max_context_bytes} bytes", field="context"
            )
        execution_id_given = execution_id is not None
        # Only a client-chosen ID can come back; a generated one needs no body identity.
        body_hash = request_hash(client_id, request) if execution_id_given else "-"
        if execution_id is not None:
            try:
                async with asyncio.timeout(self._settings.redis_budget_s):
                    stored = await self._usage.lookup(client_id, execution_id)
            except (RedisError, TimeoutError):
                self._redis_failed("lookup")
                stored = None
            if stored is not None:
                if stored.body_hash != body_hash:
                    raise Conflict(
                        "X-Execution-ID was already used with a different request body",
                        field="X-Execution-ID",
                    )
                self._metrics.idempotent_replays.inc()
                replay = {"Idempotent-Replayed": "true"}
                return Executed(stored.response, execution_id, client_id, headers=replay)
        else:
            execution_id = uuid.uuid4().hex

        with self._admission.request():
            await self._admit(client_id, plan)
            result = await self._run(client_id, request.code, context_json, self._limits(request))
            return await self._settle(
                client_id, plan, execution_id, body_hash, result, replayable=execution_id_given
            )

    async def _run(self, client_id: str, code: str, context_json: str, limits: Limits) -> Result:
        """Run the code: first inline with a small fuel slice, then, if the slice was not
        enough, again from scratch in a sandbox thread with the full limits.

        The event loop is therefore blocked by wasm for at most ``inline_fuel`` (about
        0.4 ms by default); everything longer runs in the bounded thread pool. The second
        run gets the first run's ``Math.random`` seed, and runs are deterministic, so the
        client sees (and is billed for) exactly what one run in a thread would have given;
        the discarded slice is not billed. ``CODEXEC_INLINE_FUEL=0`` sends every run to a
        thread."""
        slice_fuel = self._settings.inline_fuel
        if slice_fuel <= 0:
            return await self._admission.run(
                client_id, lambda: self._sandbox.run(code, context_json, limits)
            )
        first = self._sandbox.run(
            code, context_json, replace(limits, fuel=min(limits.fuel, slice_fuel))
        )
        error = first.error
        if error is None or error.type != "FuelExhaustedError" or limits.fuel <= slice_fuel:
            self._metrics.inline_runs.labels("done").inc()
            return first
        self._metrics.inline_runs.labels("moved").inc()
        seed = first.random_seed
        return await self._admission.run(
            client_id, lambda: self._sandbox.run(code, context_json, limits, random_seed=seed)
        )

    async def _admit(self, client_id: str, plan: Plan) -> None:
        try:
            async with asyncio.timeout(self._settings.redis_budget_s):
                await self._gate.admit(client_id, plan)
        except TimeoutError:
            self._redis_failed("admission")
        except RateLimitExceeded:
            self._metrics.rate_limited.inc()
            raise
        except QuotaExceeded:
            self._metrics.quota_rejections.inc()
            raise
        except RedisError:
            self._redis_failed("admission")

    async def _settle(
        self,
        client_id: str,
        plan: Plan,
        execution_id: str,
        body_hash: str,
        result: Result,
        *,
        replayable: bool,
    ) -> Executed:
        """Price, record and render a run. Only a client-chosen execution ID can be retried,
        so only then is the response kept for replay; a generated ID keeps just its claim
        (which makes a spool replay exactly-once)."""
        charge = price(plan, result.fuel, result.peak_memory)
        response = render_execution(execution_id, result, charge)
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
        )
        kept = response if replayable else b""
        try:
            async with asyncio.timeout(self._settings.redis_budget_s):
                outcome = await self._usage.record(record, body_hash, kept)
        except TimeoutError:  # Redis stalled: the spool keeps it (the claim dedups a late write)
            outcome = self._usage.spool_record(record, body_hash, kept)
        if not outcome.duplicate:
            self._gate.charge(client_id, charge.cost)
        if outcome.spooled:
            self._redis_failed("record")
        self._metrics.spool_depth.set(self._usage.spool_depth())
        m = self._metrics
        label = outcome_of(result)
        m.executions.labels(label).inc()
        m.execution_seconds.observe(result.wall_ms / 1000)
        m.execution_fuel.observe(result.fuel)
        if result.rebuilt:
            m.sandbox_rebuilds.inc()
        if outcome.duplicate and outcome.stored is not None:
            if outcome.stored.body_hash != body_hash:
                raise Conflict(
                    "X-Execution-ID was already used with a different request body",
                    field="X-Execution-ID",
                )
            response = outcome.stored.response
        return Executed(
            response,
            execution_id,
            client_id,
            outcome=label,
            fuel=result.fuel,
            cpu_ms=result.cpu_ms,
            wall_ms=result.wall_ms,
        )
