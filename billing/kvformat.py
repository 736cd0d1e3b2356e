"""Cloudflare KV bulk format <-> usage records (pure; no Redis).

A file is what ``wrangler kv bulk put`` reads: a JSON array of
``{"key", "value", "expiration_ttl"?, "metadata"?, "base64"?}``, string values, at most
:data:`MAX_PAIRS` pairs, keys at most :data:`MAX_KEY_BYTES` bytes. A usage record becomes::

    key       usage:<clientId>:<YYYY-MM-DD|YYYY-MM>     (no hash-tag braces)
    value     JSON text of the contract's {"executions","errors","cpuMs","wallMs","fuel",
              "memoryMb","computeUnits","cost","updatedAt"} (cost an exact decimal string)
    metadata  {"codexec": 1, "billedCpuNs", "cpuUs", "wallUs", "memBytes", "costPusd",
               "updatedMs"}: the exact integers, so codexec -> KV -> codexec is lossless
    expiration_ttl  the record's remaining TTL in seconds (>= 60), when it has one

A pair without codexec metadata (written by the Worker) is converted from its value: cpuMs is
both billed and measured CPU, memoryMb x 2**20 gives bytes, cost is rounded to pico-USD.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from billing import keys
from billing.errors import FormatError
from billing.money import format_usd, parse_usd, to_pico
from billing.pricing import BYTES_PER_MB
from billing.records import StoredRecord
from billing.totals import UsageTotals, contract_value

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_PAIRS",
    "MIN_TTL_S",
    "chunk",
    "pair_to_record",
    "parse_file",
    "record_to_pair",
    "render_file",
]

MAX_PAIRS = 10_000
MAX_KEY_BYTES = 512
MIN_TTL_S = 60  # Cloudflare refuses shorter expiration_ttl values

_VALUE_FIELDS = ("executions", "errors", "cpuMs", "wallMs", "fuel", "memoryMb",
                 "computeUnits", "cost", "updatedAt")  # fmt: skip


def record_to_pair(record: StoredRecord) -> dict[str, Any]:
    """One KV bulk pair for a stored record."""
    key = keys.kv_usage(record.client_id, record.period)
    if len(key.encode()) > MAX_KEY_BYTES:
        raise FormatError(f"KV key longer than {MAX_KEY_BYTES} bytes: {key[:64]}...")
    t = record.totals
    pair: dict[str, Any] = {
        "key": key,
        "value": orjson.dumps(contract_value(t)).decode(),
        "metadata": {
            "codexec": 1,
            "billedCpuNs": t.billed_cpu_ns,
            "cpuUs": t.cpu_us,
            "wallUs": t.wall_us,
            "memBytes": t.mem_bytes,
            "costPusd": t.cost_pusd,
            "updatedMs": t.updated_ms,
        },
    }
    if record.ttl_s > 0:
        pair["expiration_ttl"] = max(record.ttl_s, MIN_TTL_S)
    return pair


def _int(obj: dict[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(f"{where}: {name!r} must be a non-negative integer")
    return value


def _number(obj: dict[str, Any], name: str, where: str) -> Decimal:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FormatError(f"{where}: {name!r} must be a non-negative number")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _updated_ms(text: Any, where: str) -> int:
    if text is None:
        return 0
    try:
        at = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise FormatError(f"{where}: 'updatedAt' is not an ISO-8601 time") from None
    if at.tzinfo is None:
        raise FormatError(f"{where}: 'updatedAt' has no time zone")
    return round(at.timestamp() * 1000)


def pair_to_record(pair: Any, where: str = "pair") -> StoredRecord:
    """The record a KV bulk pair describes; :class:`FormatError` naming ``where`` if invalid."""
    if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
        raise FormatError(f"{where}: expected an object with a string 'key'")
    key: str = pair["key"]
    if len(key.encode()) > MAX_KEY_BYTES:
        raise FormatError(f"{where}: key longer than {MAX_KEY_BYTES} bytes")
    try:
        client, period = keys.parse_kv_usage(key)
    except ValueError as exc:
        raise FormatError(f"{where}: {exc}") from None
    raw = pair.get("value")
    if not isinstance(raw, str):
        raise FormatError(f"{where}: 'value' must be a string")
    try:
        value = orjson.loads(base64.b64decode(raw) if pair.get("base64") else raw)
    except (orjson.JSONDecodeError, ValueError):
        raise FormatError(f"{where}: 'value' is not JSON text") from None
    if not isinstance(value, dict) or not all(f in value for f in _VALUE_FIELDS):
        raise FormatError(f"{where}: 'value' must hold the fields {', '.join(_VALUE_FIELDS)}")
    try:
        cost = parse_usd(str(value["cost"]))
    except ValueError as exc:
        raise FormatError(f"{where}: 'cost': {exc}") from None
    common = {
        "executions": _int(value, "executions", where),
        "errors": _int(value, "errors", where),
        "fuel": _int(value, "fuel", where),
    }
    meta = pair.get("metadata")
    if isinstance(meta, dict) and meta.get("codexec") == 1:
        totals = UsageTotals(
            **common,
            billed_cpu_ns=_int(meta, "billedCpuNs", where),
            cpu_us=_int(meta, "cpuUs", where),
            wall_us=_int(meta, "wallUs", where),
            mem_bytes=_int(meta, "memBytes", where),
            cost_pusd=_int(meta, "costPusd", where),
            updated_ms=_int(meta, "updatedMs", where),
        )
        if format_usd(totals.cost) != format_usd(cost):
            raise FormatError(f"{where}: 'cost' disagrees with its metadata")
    else:
        cpu_ms = _number(value, "cpuMs", where)
        totals = UsageTotals(
            **common,
            billed_cpu_ns=int(cpu_ms.scaleb(6).to_integral_value()),
            cpu_us=int(cpu_ms.scaleb(3).to_integral_value()),
            wall_us=int(_number(value, "wallMs", where).scaleb(3).to_integral_value()),
            mem_bytes=int((_number(value, "memoryMb", where) * BYTES_PER_MB).to_integral_value()),
            cost_pusd=to_pico(cost),
            updated_ms=_updated_ms(value.get("updatedAt"), where),
        )
    ttl = pair.get("expiration_ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
        raise FormatError(f"{where}: 'expiration_ttl' must be a non-negative integer")
    return StoredRecord(client, period, totals, ttl or 0)


def chunk(
    pairs: Sequence[dict[str, Any]], max_pairs: int = MAX_PAIRS
) -> list[list[dict[str, Any]]]:
    """Split pairs into files of at most ``max_pairs`` (<= 10,000) each."""
    if not 1 <= max_pairs <= MAX_PAIRS:
        raise ValueError(f"max_pairs must be 1..{MAX_PAIRS}")
    return [list(pairs[i : i + max_pairs]) for i in range(0, len(pairs), max_pairs)]


def render_file(pairs: Iterable[dict[str, Any]]) -> bytes:
    """The JSON text of one bulk file."""
    return orjson.dumps(list(pairs))


def parse_file(data: bytes | str, source: str = "file") -> list[StoredRecord]:
    """Every record of a bulk file; :class:`FormatError` naming the file and pair on error."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"{source}: not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise FormatError(f"{source}: a KV bulk file is a JSON array")
    if len(doc) > MAX_PAIRS:
        raise FormatError(f"{source}: more than {MAX_PAIRS} pairs")
    return [pair_to_record(p, f"{source}[{i}]") for i, p in enumerate(doc)]
