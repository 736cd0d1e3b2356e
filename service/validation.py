"""A request to ``POST /execute`` checked against the settings and the caller's plan.

Everything here refuses with :class:`~service.errors.BadRequest` (or the 422 of a body that
does not parse) before anything runs or is reserved: the execution ID's pattern, the code's
size, the plan's maximum timeout and memory and its ``allowed_modules``, the context's size,
and a ``maxCost`` too small to buy any fuel. It also gives a request its identity for
idempotency and its :class:`~sandbox.Limits`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import ValidationError

from billing.plans import Plan, Plans
from billing.pricing import FUEL_PER_CPU_MS
from billing.quotas import fuel_for_cost
from sandbox import Limits, modules
from service.auth import Caller
from service.config import Settings
from service.errors import BadRequest, validation_error
from service.schemas import EXECUTION_ID_RE, ExecuteRequest

__all__ = ["RequestCheck", "plan_modules", "request_hash"]

_LIMITS_KEPT = 1024


def plan_modules(requested: list[str], plan: Plan) -> frozenset[str]:
    """The modules a run may load: ``requested``, each within the plan's ``allowed_modules``
    (``*`` in a plan: every module; ``*`` in a request: all the plan allows that the sandbox
    provides); a module outside the plan is a 400 naming ``allowedModules`` and the module."""
    if not requested:
        return frozenset()
    allowed = {modules.normalize(m) for m in plan.allowed_modules}
    named = {modules.normalize(m) for m in requested if m != modules.ALL}
    if modules.ALL in allowed:
        return frozenset(requested)
    if outside := sorted(named - allowed):
        raise BadRequest(
            f"allowedModules: module {outside[0][:40]!r} is not allowed by the {plan.name} "
            f"plan (it allows: {', '.join(sorted(allowed)) or 'none'})",
            field="allowedModules",
        )
    if modules.ALL in requested:
        return frozenset(m for m in allowed if m in modules.PROVIDED)
    return frozenset(requested)


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


class RequestCheck:
    """Parses and checks requests; gives each its limits."""

    def __init__(self, settings: Settings, plans: Plans) -> None:
        self._settings = settings
        self._plans = plans
        # (plan name, timeout, memory, fuel, modules asked for) -> (plan, its Limits): equal
        # requests share one Limits object, whose derived values the sandbox keeps per object
        self._limits: dict[tuple[str, int, int, int, tuple[str, ...]], tuple[Plan, Limits]] = {}

    @staticmethod
    def execution_id(execution_id: str | None) -> None:
        """Refuse an ``X-Execution-ID`` outside the execution-ID pattern."""
        if execution_id is not None and not EXECUTION_ID_RE.fullmatch(execution_id):
            raise BadRequest(
                "X-Execution-ID must be 1-128 characters of [A-Za-z0-9._:-]",
                field="X-Execution-ID",
            )

    def parse(self, caller: Caller, body: dict[str, Any]) -> tuple[ExecuteRequest, str, Plan]:
        """The request, the client billed for it and that caller's plan."""
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
        plan_modules(request.allowedModules, plan)
        return request, client_id, plan

    def context_json(self, request: ExecuteRequest) -> str:
        """The request's ``context`` as JSON; refused when over ``max_context_bytes`` (UTF-8)."""
        data = orjson.dumps(request.context)
        limit = self._settings.max_context_bytes
        if len(data) > limit:
            raise BadRequest(f"context is over {limit} bytes", field="context")
        return data.decode()

    def fuel_for_timeout(self, request: ExecuteRequest) -> int:
        """The fuel a run gets for its timeout (with the settings' headroom)."""
        return int(request.timeout * FUEL_PER_CPU_MS * self._settings.fuel_headroom)

    def limits(self, request: ExecuteRequest, plan: Plan) -> Limits:
        """The run's limits; ``maxCost`` lowers the fuel to what that amount buys."""
        s = self._settings
        fuel = self.fuel_for_timeout(request)
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
        key = (plan.name, request.timeout, request.memoryLimit, fuel, tuple(request.allowedModules))
        found = self._limits.get(key)
        if found is not None and found[0] is plan:
            return found[1]
        limits = Limits(
            timeout_ms=request.timeout,
            memory_bytes=request.memoryLimit,
            fuel=fuel,
            max_code_bytes=s.max_code_bytes,
            max_output_lines=s.max_output_lines,
            max_output_bytes=s.max_output_bytes,
            max_result_bytes=s.max_result_bytes,
            modules=plan_modules(request.allowedModules, plan),
        )
        if len(self._limits) >= _LIMITS_KEPT:
            self._limits.clear()
        self._limits[key] = (plan, limits)
        return limits
