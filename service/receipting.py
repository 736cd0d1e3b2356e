"""Receipts in the service: the signing key, the facts of each run, the signed document.

The key comes from ``CODEXEC_RECEIPT_SIGNING_KEY``; without it a development or staging
service generates one under ``./var`` (:func:`billing.receipt_keys.load_or_create`), while
production starts without one (logging a warning) and answers the receipt endpoints with 503
until it is set. Ledger entries carry the receipt facts either way, and receipts are signed
when fetched (and during the request only when it asks for its receipt, ``"receipt": true``),
so every execution's receipt becomes available once the key is configured.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from billing import receipt_keys, receipts
from billing.plans import Plan
from billing.receipt_facts import ReceiptFacts, context_sha256
from billing.usage_record import UsageRecord
from sandbox import EngineInfo, Limits, Result, _engine, _prelude, modules
from service.config import Environment, Settings
from service.schemas import ExecuteRequest

__all__ = [
    "Receipting",
    "allowed_modules",
    "engine_build",
    "limits_of",
    "load_signing_key",
    "receipt_path",
]

log = logging.getLogger("codexec.receipts")


def load_signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    """The configured key, a development key under ``var_dir``, or None in production."""
    if settings.receipt_signing_key is not None:
        return receipt_keys.parse_private_key(settings.receipt_signing_key.get_secret_value())
    if settings.environment is Environment.production:
        log.warning("CODEXEC_RECEIPT_SIGNING_KEY is not set: receipts cannot be served")
        return None
    return receipt_keys.load_or_create(settings.var_dir)


def engine_build(info: EngineInfo) -> str:
    """Fingerprint of what decides fuel besides the wasm and wasmtime: the compiled module's
    configuration (its cache key: stack-guard patch, engine settings) and the prelude run
    before user code. 32 hex digits; a verifier refuses to re-run on another build."""
    key = _engine.cache_key(info.wasmtime_version, info.wasm_sha256)
    return hashlib.sha256(f"{key}|{_prelude.source()}".encode()).hexdigest()[:32]


def receipt_path(client_id: str, execution_id: str) -> str:
    """Where the receipt of an execution is fetched (``X-Receipt-URL``)."""
    return f"/v1/receipts/{execution_id}?clientId={client_id}"


@functools.lru_cache(maxsize=64)
def allowed_modules(names: frozenset[str]) -> tuple[str, ...]:
    """How a receipt records ``Limits.modules``: ``("*",)`` for all, else the names without
    ``node:``, sorted (the same ``require`` bitmask either way)."""
    if modules.ALL in names:
        return (modules.ALL,)
    return tuple(sorted({modules.normalize(n) for n in names}))


def limits_of(facts: ReceiptFacts) -> Limits:
    """The limits a receipt's run had (the inverse of :meth:`Receipting.facts`), to re-run it
    (ValueError if it names a module this sandbox does not provide)."""
    return Limits(
        timeout_ms=facts.timeout_ms,
        memory_bytes=facts.memory_bytes,
        fuel=facts.fuel_cap,
        max_code_bytes=facts.max_code_bytes,
        max_output_lines=facts.max_output_lines,
        max_output_bytes=facts.max_output_bytes,
        max_result_bytes=facts.max_result_bytes,
        modules=frozenset(facts.allowed_modules),
    )


class Receipting:
    """Builds each run's receipt facts and, when asked, its signed receipt."""

    def __init__(self, key: Ed25519PrivateKey | None, engine: EngineInfo, build: str = "") -> None:
        self.key = key
        self.engine = engine
        self.build = build
        self._wasm_sha256 = bytes.fromhex(engine.wasm_sha256)

    def facts(
        self, request: ExecuteRequest, limits: Limits, plan: Plan, result: Result
    ) -> ReceiptFacts:
        """What the ledger keeps of a run for its receipt (the code as the client sent it)."""
        per_cpu_s, per_mb, per_exec = ReceiptFacts.prices_of(plan)
        return ReceiptFacts(
            code_sha256=hashlib.sha256(request.code.encode("utf-8", "surrogatepass")).digest(),
            context_sha256=context_sha256(request.context),
            wasm_sha256=self._wasm_sha256,
            wasmtime_version=self.engine.wasmtime_version,
            random_seed=result.random_seed,
            read_clock=result.read_clock,
            read_random=result.read_random,
            timeout_ms=limits.timeout_ms,
            memory_bytes=limits.memory_bytes,
            fuel_cap=limits.fuel,
            max_code_bytes=limits.max_code_bytes,
            max_output_lines=limits.max_output_lines,
            max_output_bytes=limits.max_output_bytes,
            max_result_bytes=limits.max_result_bytes,
            price_per_cpu_second=per_cpu_s,
            price_per_mb=per_mb,
            price_per_execution=per_exec,
            language=request.language,
            engine_build=self.build,
            allowed_modules=allowed_modules(limits.modules),
        )

    def signed(self, record: UsageRecord) -> dict[str, Any] | None:
        """The signed receipt of a record (None without a key or facts)."""
        body = receipts.receipt_of_record(record)
        if body is None or self.key is None:
            return None
        return receipts.sign(body, self.key)
