"""Receipts: an itemized, signed account of one execution, rebuilt from its ledger entry.

A receipt is built from integers, booleans and strings only (no binary floats, so its
canonical JSON is the same in every language): :func:`receipt_body` from the ledger entry's
counters and receipt facts (:mod:`billing.receipt_facts`). It is signed when it is fetched,
and during the request only when the request asks for it (``"receipt": true``):
:func:`sign` wraps it as ``{"receipt": {...}, "signature":
{"algorithm": "Ed25519", "keyId", "value"}}``, ``value`` being the base64 Ed25519 signature
of the receipt's canonical JSON (UTF-8, keys sorted, no whitespace). :func:`check` verifies
the signature and that the bill inside adds up (billed CPU from fuel, each line, the total,
its rounding to what was recorded).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, localcontext
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from billing import receipt_keys
from billing.errors import InvalidReceipt
from billing.ledger import LedgerEntry
from billing.money import EXACT, format_decimal, from_pico, to_pico
from billing.pricing import BYTES_PER_MB
from billing.receipt_facts import ReceiptFacts, canonical_json
from billing.totals import FIELDS, MEASURES, iso_utc
from billing.usage_record import EPOCH, UsageRecord, increments_of

__all__ = [
    "VERSION",
    "InvalidReceipt",
    "check",
    "price_lines",
    "receipt_body",
    "receipt_of_entry",
    "receipt_of_record",
    "sign",
]

VERSION = 1


def _ms(micros: int) -> str:
    return format_decimal(Decimal(micros).scaleb(-3))


def price_lines(
    billed_cpu_ns: int, mem_bytes: int, facts: ReceiptFacts
) -> tuple[list[dict[str, str]], Decimal]:
    """Each priced line (quantity x unit price = amount, exact) and their exact sum."""
    with localcontext(EXACT):
        items = (
            ("cpu", "cpu-second", Decimal(billed_cpu_ns).scaleb(-9), facts.price_per_cpu_second),
            ("memory", "MB", Decimal(mem_bytes) / BYTES_PER_MB, facts.price_per_mb),
            ("execution", "execution", Decimal(1), facts.price_per_execution),
        )
        lines: list[dict[str, str]] = []
        total = Decimal(0)
        for item, unit, quantity, unit_price in items:
            amount = quantity * Decimal(unit_price)
            total += amount
            lines.append(
                {
                    "item": item,
                    "unit": unit,
                    "quantity": format_decimal(quantity),
                    "unitPrice": unit_price,
                    "amount": format_decimal(amount),
                }
            )
    return lines, total


def receipt_body(
    *,
    client_id: str,
    execution_id: str,
    plan: str,
    at_ms: int,
    error: bool,
    measures: Mapping[str, int],
    facts: ReceiptFacts,
) -> dict[str, Any]:
    """The receipt of one execution (what is signed); ``measures``: each of
    :data:`~billing.totals.MEASURES`."""
    fuel, billed_cpu_ns, cpu_us, wall_us, mem_bytes, cost_pusd = (measures[m] for m in MEASURES)
    at = EPOCH + timedelta(milliseconds=at_ms)
    lines, total = price_lines(billed_cpu_ns, mem_bytes, facts)
    return {
        "version": VERSION,
        "executionId": execution_id,
        "clientId": client_id,
        "plan": plan,
        "time": iso_utc(at),
        "language": facts.language,
        "codeSha256": facts.code_sha256.hex(),
        "contextSha256": facts.context_sha256.hex(),
        "engine": {
            "wasmSha256": facts.wasm_sha256.hex(),
            "wasmtimeVersion": facts.wasmtime_version,
            "build": facts.engine_build,
            "limits": {
                "timeoutMs": facts.timeout_ms,
                "memoryBytes": facts.memory_bytes,
                "fuel": facts.fuel_cap,
                "maxCodeBytes": facts.max_code_bytes,
                "maxOutputLines": facts.max_output_lines,
                "maxOutputBytes": facts.max_output_bytes,
                "maxResultBytes": facts.max_result_bytes,
                "allowedModules": list(facts.allowed_modules),
            },
        },
        "randomSeed": str(facts.random_seed),
        "readClock": facts.read_clock,
        "readRandom": facts.read_random,
        "error": error,
        "usage": {
            "fuel": fuel,
            "fuelPerCpuMs": facts.fuel_per_cpu_ms,
            "billedCpuMs": format_decimal(Decimal(billed_cpu_ns).scaleb(-6)),
            "measuredCpuMs": _ms(cpu_us),
            "wallMs": _ms(wall_us),
            "peakMemoryBytes": mem_bytes,
        },
        "currency": "USD",
        "lines": lines,
        "cost": format_decimal(total),
        "costRecorded": format_decimal(from_pico(cost_pusd)),
    }


def receipt_of_entry(entry: LedgerEntry) -> dict[str, Any] | None:
    """The receipt of an execution's ledger entry (None for a correction, or an entry
    recorded without receipt facts)."""
    if entry.kind != "execution":
        return None
    try:
        facts = ReceiptFacts.from_named(dict(entry.fields))
    except (KeyError, ValueError):
        return None
    return receipt_body(
        client_id=entry.client_id,
        execution_id=entry.execution_id,
        plan=entry.plan,
        at_ms=entry.at_ms,
        error=entry.error,
        measures={m: getattr(entry, m) for m in MEASURES},
        facts=facts,
    )


def receipt_of_record(rec: UsageRecord) -> dict[str, Any] | None:
    """The receipt that the ledger entry of ``rec`` will give (None without facts)."""
    if rec.receipt is None:
        return None
    counts = dict(zip(FIELDS, increments_of(rec), strict=True))
    return receipt_body(
        client_id=rec.client_id,
        execution_id=rec.execution_id,
        plan=rec.plan,
        at_ms=counts["updated_ms"],
        error=bool(counts["errors"]),
        measures=counts,
        facts=rec.receipt,
    )


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed envelope of a receipt."""
    signature = key.sign(canonical_json(body))
    return {
        "receipt": body,
        "signature": {
            "algorithm": "Ed25519",
            "keyId": receipt_keys.key_id(key.public_key()),
            "value": base64.b64encode(signature).decode(),
        },
    }


def _check_arithmetic(body: dict[str, Any]) -> None:
    usage = body["usage"]
    fuel, per_ms = int(usage["fuel"]), int(usage["fuelPerCpuMs"])
    with localcontext(EXACT):
        billed = (Decimal(fuel) / per_ms).quantize(Decimal("0.000001"))
    if Decimal(usage["billedCpuMs"]) != billed:
        raise InvalidReceipt("billedCpuMs is not fuel / fuelPerCpuMs")
    total = Decimal(0)
    with localcontext(EXACT):
        for line in body["lines"]:
            amount = Decimal(line["quantity"]) * Decimal(line["unitPrice"])
            if Decimal(line["amount"]) != amount:
                raise InvalidReceipt(f"line {line['item']}: quantity x unitPrice != amount")
            total += amount
        cpu = next(line for line in body["lines"] if line["item"] == "cpu")
        if Decimal(cpu["quantity"]) != billed / 1000:
            raise InvalidReceipt("the CPU line does not bill billedCpuMs")
    if Decimal(body["cost"]) != total:
        raise InvalidReceipt("cost is not the sum of the lines")
    if to_pico(total) != to_pico(Decimal(body["costRecorded"])):
        raise InvalidReceipt("costRecorded is not cost rounded to pico-USD")


def check(envelope: dict[str, Any], public: Ed25519PublicKey) -> dict[str, Any]:
    """Verify a signed receipt (signature, then arithmetic); return the receipt or raise
    :class:`InvalidReceipt` saying what failed."""
    try:
        body = envelope["receipt"]
        signature = envelope["signature"]
        if signature.get("algorithm") != "Ed25519":
            raise InvalidReceipt("unsupported signature algorithm")
        value = signature["value"]
    except (KeyError, TypeError, AttributeError):
        raise InvalidReceipt("not a signed receipt: needs 'receipt' and 'signature'") from None
    if not receipt_keys.verify(public, value, canonical_json(body)):
        raise InvalidReceipt("the signature does not match the receipt (altered or other key)")
    try:
        _check_arithmetic(body)
    except (KeyError, TypeError, ValueError, ArithmeticError, StopIteration) as exc:
        raise InvalidReceipt(f"the receipt's figures are malformed: {exc!r}") from None
    return dict(body)
