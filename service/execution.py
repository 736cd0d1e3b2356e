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
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError
from redis.exceptions import RedisError

from billing.alerts import Alerts
from billing.errors import QuotaExceeded, RateLimitExceeded
from billing.gate import Gate
from billing.leases import Reservation
from billing.money import format_usd, to_pico
from billing.plans import Plan, Plans
from billing.pricing import FUEL_PER_CPU_MS, price
from billing.quotas import fuel_for_cost
from billing.usage import UsageRecord, UsageStore
from sandbox import Limits, Result, Sandbox
from sandbox.runner import DEFAULT_CACHE_DIR
from sandbox.typescript import (
    StripLimits,
    Stripped,
    StripperUnavailable,
    TypeScript,
    TypeScriptLoader,
)
from service.admission import Admission
from service.auth import Caller
from service.config import Settings
from service.errors import (
    BadRequest,
    Conflict,
    Unavailable,
    rate_limit_headers,
    validation_error,
)
from service.metrics import Metrics
from service.receipting import Receipting, receipt_path
from service.schemas import (
    EXECUTION_ID_RE,
    TYPESCRIPT_LANGUAGES,
    ExecuteRequest,
    render_execution,
)
from service.streaming import OutputStream

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
        # "receipt": false (the default) is left out, so hashes stored before the field existed
        # still match a retry
        {
            "client": client_id,
            **request.model_dump(mode="json", exclude=None if request.receipt else {"receipt"}),
        },
        option=orjson.OPT_SORT_KEYS,
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


def _source_positions(result: Result, stripped: Stripped | None) -> Result:
    """TypeScript reprinted in transform mode: the error's stack in source positions."""
    error = result.error
    if stripped is None or error is None or stripped.source_map is None:
        return result
    return replace(result, error=replace(error, stack=stripped.map_positions(error.stack)))


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
        receipting: Receipting | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._admission = admission
        self._usage = usage
        self._gate = gate
        self._plans = plans
        self._metrics = metrics
        self.receipting = receipting
        self._alerts = alerts
        self._typescript = TypeScriptLoader(
            lambda: TypeScript(
                sandbox.compiled.engine,
                settings.cache_dir,
                tick_ms=settings.tick_ms,
                package_dirs=(DEFAULT_CACHE_DIR,),
                fetch=True,
                fetch_timeout_s=20,
            )
        )  # built on the first TypeScript request (JavaScript never pays for it)

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

    def _fuel_for_timeout(self, request: ExecuteRequest) -> int:
        return int(request.timeout * FUEL_PER_CPU_MS * self._settings.fuel_headroom)

    def check(self, caller: Caller, body: dict[str, Any]) -> tuple[str, str]:
        """Validate a request as ``execute`` does, without running it (async submissions):
        the client billed and the request's identity for idempotency."""
        request, client_id, _ = self._validate(caller, body)
        if len(orjson.dumps(request.context)) > self._settings.max_context_bytes:
            raise BadRequest(
                f"context is over {self._settings.max_context_bytes} bytes", field="context"
            )
        return client_id, request_hash(client_id, request)

    def _limits(self, request: ExecuteRequest, plan: Plan) -> Limits:
        """The run's limits; ``maxCost`` lowers the fuel to what that amount buys."""
        s = self._settings
        fuel = self._fuel_for_timeout(request)
        max_cost = request.max_cost
        if max_cost is not None:
            bought = fuel_for_cost(plan, max_cost, request.memoryLimit)
            if bought is not None and bought < 1:
                raise BadRequest(
                    f"maxCost of {request.maxCost} USD does not cover the {plan.name} plan's "
                    f"per-execution and memory price for memoryLimit {request.memoryLimit}",
                    field="maxCost",
                )
            fuel = min(fuel, bought or fuel)
        return Limits(
            timeout_ms=request.timeout,
            memory_bytes=request.memoryLimit,
            fuel=fuel,
            max_code_bytes=s.max_code_bytes,
            max_output_lines=s.max_output_lines,
            max_output_bytes=s.max_output_bytes,
            max_result_bytes=s.max_result_bytes,
            modules=frozenset(request.allowedModules),
        )

    def _redis_failed(self, operation: str) -> None:
        self._metrics.redis_errors.labels(operation).inc()
        log.warning("redis unavailable during %s; continuing without it", operation)

    async def _check_alerts(self, client_id: str, plan: Plan, cost: Decimal) -> None:
        """Budget alerts after a recorded charge: local arithmetic, rarely one Redis call."""
        if self._alerts is None:
            return
        try:
            async with asyncio.timeout(self._settings.redis_budget_s):
                await self._alerts.after_charge(client_id, plan, to_pico(cost))
        except (RedisError, OSError, TimeoutError):
            self._redis_failed("alerts")
        except Exception:  # an alert is a side effect: the recorded run is still answered
            log.exception("budget alert check failed")

    async def execute(
        self,
        caller: Caller,
        body: dict[str, Any],
        execution_id: str | None,
        *,
        stream: OutputStream | None = None,
    ) -> Executed:
        """Answer one ``POST /execute`` (``stream``: hand console lines out as they come)."""
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
                replay = {
                    "Idempotent-Replayed": "true",
                    "X-Receipt-URL": receipt_path(client_id, execution_id),
                }
                return Executed(stored.response, execution_id, client_id, headers=replay)
        else:
            execution_id = uuid.uuid4().hex
        if stream is not None:
            stream.execution_id = execution_id

        limits = self._limits(request, plan)
        with self._admission.request(client_id, plan.max_concurrency):
            reservation = await self._admit(client_id, plan, limits)
            try:
                code, stripped, failed = await self._transpile(client_id, request)
                result = failed or await self._run(
                    client_id, code, context_json, limits, stream, plan.max_concurrency
                )
                result = _source_positions(result, stripped)
                result = self._cost_capped(result, plan, request, limits)
                done = await self._settle(
                    client_id,
                    plan,
                    execution_id,
                    body_hash,
                    result,
                    replayable=execution_id_given,
                    transpile_ms=None if stripped is None else stripped.wall_ms,
                    request=request,
                    limits=limits,
                )
            finally:
                if reservation is not None:  # after the cost was charged to the lease
                    reservation.release()
        rate = self._gate.rate_state(client_id, plan)
        done.headers.update(
            rate_limit_headers(
                rate.limit, rate.window_s, remaining=rate.remaining, reset_s=rate.reset_s
            )
        )
        return done

    def _cost_capped(
        self, result: Result, plan: Plan, request: ExecuteRequest, limits: Limits
    ) -> Result:
        """Say so when a run ran out of the fuel its ``maxCost`` bought."""
        error = result.error
        if request.maxCost is None or error is None or error.type != "FuelExhaustedError":
            return result
        if limits.fuel >= self._fuel_for_timeout(request):
            return result  # the timeout's fuel was the lower cap
        so_far = format_usd(price(plan, result.fuel, result.peak_memory).cost)
        message = f"maxCost of {request.maxCost} USD reached (cost so far: {so_far} USD)"
        return replace(result, error=replace(error, message=message))

    async def _transpile(
        self, client_id: str, request: ExecuteRequest
    ) -> tuple[str, Stripped | None, Result | None]:
        """TypeScript: the JavaScript to run, the strip (its time is reported), and the
        failed result to record when the code did not strip (a ``SyntaxError`` or a limit:
        nothing runs, fuel 0). JavaScript passes through. Like ``_run``, the strip first runs
        inline with the ``inline_fuel`` slice and, if that was not enough, again in a thread
        with its full limits (``sandbox.typescript.StripLimits``). Its cost is reported, not
        billed."""
        if request.language not in TYPESCRIPT_LANGUAGES:
            return request.code, None, None
        loader = self._typescript
        try:
            stripper = loader.get() if loader.ready else await asyncio.to_thread(loader.get)
        except StripperUnavailable as exc:
            raise Unavailable(str(exc), type="TypeScriptUnavailable", retry_after=30) from None
        full, slice_fuel = StripLimits(), self._settings.inline_fuel
        stripped = None
        if 0 < slice_fuel < full.fuel:
            stripped = stripper.strip_types(request.code, replace(full, fuel=slice_fuel))
        if stripped is None or stripped.out_of_fuel:
            stripped = await self._admission.run(
                client_id, lambda: stripper.strip_types(request.code, full)
            )
        if stripped.error is None:
            return stripped.code, stripped, None
        failed = Result(
            ok=False,
            result_json="null",
            output=(),
            error=stripped.error,
            fuel=0,
            cpu_ms=0.0,
            wall_ms=0.0,
            peak_memory=0,
            random_seed=0,
            rebuilt=False,
        )
        return "", stripped, failed

    async def _run(
        self,
        client_id: str,
        code: str,
        context_json: str,
        limits: Limits,
        stream: OutputStream | None = None,
        share: int | None = None,
    ) -> Result:
        """Run the code: first inline with a small fuel slice, then, if the slice was not
        enough, again from scratch in a sandbox thread with the full limits.

        The event loop is therefore blocked by wasm for at most ``inline_fuel`` (about
        0.4 ms by default); everything longer runs in the bounded thread pool. The second
        run gets the first run's ``Math.random`` seed, and runs are deterministic, so the
        client sees (and is billed for) exactly what one run in a thread would have given;
        the discarded slice is not billed. ``CODEXEC_INLINE_FUEL=0`` sends every run to a
        thread. A streamed run always goes to a thread (its lines must not be sent twice)."""
        if stream is not None:
            out = stream

            def streamed() -> Result:
                out.started()
                return self._sandbox.run(
                    code, context_json, limits, on_output=out.line, stop=out.stop
                )

            return await self._admission.run(client_id, streamed, share=share)
        slice_fuel = self._settings.inline_fuel
        if slice_fuel <= 0:
            return await self._admission.run(
                client_id, lambda: self._sandbox.run(code, context_json, limits), share=share
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
            client_id,
            lambda: self._sandbox.run(code, context_json, limits, random_seed=seed),
            share=share,
        )

    async def _admit(self, client_id: str, plan: Plan, limits: Limits) -> Reservation | None:
        """Rate limit and budget: reserve the most this run can cost (its fuel cap and memory
        limit priced by the plan) for as long as it can last."""
        hard = self._gate.hard_caps
        max_cost = price(plan, limits.fuel, limits.memory_bytes).cost if hard else Decimal(0)
        try:
            async with asyncio.timeout(self._settings.redis_budget_s):
                return await self._gate.admit(
                    client_id, plan, max_cost=max_cost, hold_s=limits.timeout_ms / 1000
                )
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
        return None

    async def _settle(
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
        """Price, record and render a run. Only a client-chosen execution ID can be retried,
        so only then is the response kept for replay; a generated ID keeps just its claim
        (which makes a spool replay exactly-once)."""
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
            if self.receipting is None or request is None or limits is None
            else self.receipting.facts(request, limits, plan, result),
        )
        if request is not None and request.receipt and self.receipting is not None:
            signed = self.receipting.signed(record)
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
            headers={"X-Receipt-URL": receipt_path(client_id, execution_id)},
        )
