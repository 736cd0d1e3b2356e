"""One execution end to end: check, replay or admit, transpile, run, settle.

:class:`ExecutionService` is the orchestrator, the only place that talks to both
:mod:`sandbox` and :mod:`billing`; each step is its own module:

- :mod:`service.validation`: the request checked, its identity and its limits;
- :mod:`service.transpile`: TypeScript stripped to JavaScript;
- :mod:`service.dispatch`: the run, inline or in a sandbox thread;
- :mod:`service.settle`: price, record, render, receipts, budget alerts, metrics.

Redis being unreachable never loses usage (records go to the spool) and never blocks an
execution: idempotency look-ups, rate limits and quota reads fail open, counted in
``codexec_redis_errors_total``.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from billing.alerts import Alerts
from billing.errors import QuotaExceeded, RateLimitExceeded
from billing.gate import Gate
from billing.leases import Reservation
from billing.plans import Plan, Plans
from billing.pricing import price
from billing.scripts import within
from billing.usage import UsageStore
from sandbox import Limits, Sandbox
from service.admission import Admission
from service.auth import Caller
from service.config import Settings
from service.dispatch import Dispatcher
from service.errors import rate_limit_headers
from service.metrics import Metrics
from service.receipting import Receipting, receipt_path
from service.settle import Executed, Settler, cost_capped, id_reused, redis_failed
from service.streaming import OutputStream
from service.transpile import Transpiler, source_positions
from service.validation import RequestCheck, request_hash

__all__ = ["Executed", "ExecutionService"]

_MAX_COSTS_KEPT = 1024


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
        self._admission = admission
        self._usage = usage
        self._gate = gate
        self._metrics = metrics
        self.receipting = receipting
        self._check = RequestCheck(settings, plans)
        self._max_costs: dict[Limits, tuple[Plan, Decimal]] = {}
        self._transpiler = Transpiler(settings, sandbox, admission)
        self._dispatcher = Dispatcher(settings, sandbox, admission, metrics)
        self._settler = Settler(
            settings, usage=usage, gate=gate, metrics=metrics, receipting=receipting, alerts=alerts
        )

    def close(self) -> None:
        """Wait for the runs in progress, then stop the sandbox threads."""
        self._admission.close()

    def check(self, caller: Caller, body: dict[str, Any]) -> tuple[str, str]:
        """Validate a request as ``execute`` does, without running it (async submissions):
        the client billed and the request's identity for idempotency."""
        request, client_id, _ = self._check.parse(caller, body)
        self._check.context_json(request)
        return client_id, request_hash(client_id, request)

    async def execute(
        self,
        caller: Caller,
        body: dict[str, Any],
        execution_id: str | None,
        *,
        stream: OutputStream | None = None,
    ) -> Executed:
        """Answer one ``POST /execute`` (``stream``: hand console lines out as they come)."""
        self._check.execution_id(execution_id)
        request, client_id, plan = self._check.parse(caller, body)
        context_json = self._check.context_json(request)
        execution_id_given = execution_id is not None
        # Only a client-chosen ID can come back; a generated one needs no body identity.
        body_hash = request_hash(client_id, request) if execution_id_given else "-"
        if execution_id is not None:
            replayed = await self._replay(client_id, execution_id, body_hash)
            if replayed is not None:
                return replayed
        else:
            execution_id = secrets.token_hex(16)  # 128 random bits, as uuid4().hex minus its cost
        if stream is not None:
            stream.execution_id = execution_id

        limits = self._check.limits(request, plan)
        with self._admission.request(client_id, plan.max_concurrency):
            reservation = await self._admit(client_id, plan, limits)
            try:
                code, stripped, failed = await self._transpiler.transpile(client_id, request)
                result = failed or await self._dispatcher.run(
                    client_id, code, context_json, limits, stream, plan.max_concurrency
                )
                result = source_positions(result, stripped)
                result = cost_capped(
                    result, plan, request, limits, self._check.fuel_for_timeout(request)
                )
                done = await self._settler.settle(
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

    async def _replay(self, client_id: str, execution_id: str, body_hash: str) -> Executed | None:
        """The stored answer of an execution ID already used (409 for another body)."""
        try:
            stored = await within(
                self._settings.redis_budget_s, self._usage.lookup(client_id, execution_id)
            )
        except (RedisError, TimeoutError):
            redis_failed(self._metrics, "lookup")
            return None
        if stored is None:
            return None
        if stored.body_hash != body_hash:
            raise id_reused()
        self._metrics.idempotent_replays.inc()
        replay = {
            "Idempotent-Replayed": "true",
            "X-Receipt-URL": receipt_path(client_id, execution_id),
        }
        return Executed(stored.response, execution_id, client_id, headers=replay)

    def _max_cost(self, plan: Plan, limits: Limits) -> Decimal:
        """The price of a run's fuel cap and memory limit under ``plan`` (equal requests share
        one ``Limits`` object, so this is computed once per plan and limits)."""
        found = self._max_costs.get(limits)
        if found is None or found[0] is not plan:
            if len(self._max_costs) >= _MAX_COSTS_KEPT:
                self._max_costs.clear()
            cost = price(plan, limits.fuel, limits.memory_bytes).cost
            found = self._max_costs[limits] = (plan, cost)
        return found[1]

    async def _admit(self, client_id: str, plan: Plan, limits: Limits) -> Reservation | None:
        """Rate limit and budget: reserve the most this run can cost (its fuel cap and memory
        limit priced by the plan) for as long as it can last."""
        max_cost = self._max_cost(plan, limits) if self._gate.hard_caps else Decimal(0)
        try:  # the Gate bounds its own round trips by redis_budget_s (usually none)
            return await self._gate.admit(
                client_id, plan, max_cost=max_cost, hold_s=limits.timeout_ms / 1000
            )
        except TimeoutError:
            redis_failed(self._metrics, "admission")
        except RateLimitExceeded:
            self._metrics.rate_limited.inc()
            raise
        except QuotaExceeded:
            self._metrics.quota_rejections.inc()
            raise
        except RedisError:
            redis_failed(self._metrics, "admission")
        return None
