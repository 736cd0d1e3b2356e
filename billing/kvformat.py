"""Cloudflare KV bulk format <-> usage records (pure; no Redis).

A file is what ``wrangler kv bulk put`` reads: a JSON array of
``{"key", "value", "expiration_ttl"?, "metadata"?, "base64"?}``, string values, at most
:data:`MAX_PAIRS` pairs and :data:`MAX_FILE_BYTES` bytes (Cloudflare takes 100 MB), keys at
most :data:`MAX_KEY_BYTES` bytes. A usage record becomes::

    key       usage:<clientId>:<YYYY-MM-DD|YYYY-MM>     (no hash-tag braces)
    value     JSON text of the contract's {"executions","errors","cpuMs","wallMs","fuel",
              "memoryMb","computeUnits","cost","updatedAt"} (cost an exact decimal string)
    metadata  {"codexec": 1, "billedCpuNs", "cpuUs", "wallUs", "memBytes", "costPusd",
               "updatedMs", "ttlS"?}: the exact integers and the record's remaining TTL in
               Redis, so codexec -> KV -> codexec is lossless

No ``expiration_ttl`` is written: billing records must not silently expire in KV (codexec's
own retention of daily records travels in ``ttlS`` instead). A pair without codexec metadata
(written by the Worker) is converted from its value: cpuMs is both billed and measured CPU,
memoryMb x 2**20 gives bytes, cost is rounded to pico-USD; its ``expiration_ttl`` (or
``expiration``, Unix seconds) is kept as the record's TTL.

Import also reads what wrangler prints (:func:`parse_file`, with :mod:`billing.wrangler`):

- ``wrangler kv bulk get KEYS.json`` output: a JSON object ``{key: value}`` where a value is
  the text, ``{"value": text, "metadata"?: {...}}`` (``--local``), already-parsed JSON, or
  null for a missing key (skipped); wrangler's ``Success!`` line after it (and a banner
  before it) are ignored. Without metadata the exact integers are rebuilt from the value;
  pass the key listing too (``key_list``) to restore them and the expirations exactly.
- ``wrangler kv key list`` output (``[{"name", "expiration"?, "metadata"?}]``) has no values:
  alone it is refused with a message saying to fetch the values with ``wrangler kv bulk get``
  (the listing is the input that command takes) and import its output.
"""

from __future__ import annotations

import base64
import time
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
from billing.wrangler import bulk_get_pairs, is_key_list, load_document, parse_key_list

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_KEY_BYTES",
    "MAX_PAIRS",
    "chunk",
    "paginate",
    "pair_to_record",
    "parse_file",
    "parse_key_list",
    "record_to_pair",
    "render_file",
]

MAX_PAIRS = 10_000
MAX_KEY_BYTES = 512
MAX_FILE_BYTES = 50 * 1024 * 1024  # half of what Cloudflare's bulk write accepts (100 MB)

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
        pair["metadata"]["ttlS"] = record.ttl_s
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


def pair_to_record(pair: Any, where: str = "pair", now: float | None = None) -> StoredRecord:
    """The record a KV bulk pair describes; :class:`FormatError` naming ``where`` if invalid.

    ``now`` (Unix seconds, default the clock) turns an absolute ``expiration`` into a TTL."""
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
    return StoredRecord(client, period, totals, _ttl(pair, meta, where, now))


def _ttl(pair: dict[str, Any], meta: Any, where: str, now: float | None) -> int:
    """The record's TTL: codexec's ``ttlS``, else ``expiration_ttl``, else ``expiration``."""
    if isinstance(meta, dict) and meta.get("codexec") == 1 and "ttlS" in meta:
        return _int(meta, "ttlS", where)
    if pair.get("expiration_ttl") is not None:
        return _int(pair, "expiration_ttl", where)
    if pair.get("expiration") is not None:
        expires = _int(pair, "expiration", where)
        return max(1, expires - int(time.time() if now is None else now))
    return 0


def chunk(
    pairs: Sequence[dict[str, Any]], max_pairs: int = MAX_PAIRS
) -> list[list[dict[str, Any]]]:
    """Split pairs into files of at most ``max_pairs`` (<= 10,000) each."""
    if not 1 <= max_pairs <= MAX_PAIRS:
        raise ValueError(f"max_pairs must be 1..{MAX_PAIRS}")
    return [list(pairs[i : i + max_pairs]) for i in range(0, len(pairs), max_pairs)]


def paginate(
    pairs: Iterable[dict[str, Any]],
    max_pairs: int = MAX_PAIRS,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[bytes]:
    """Rendered bulk files of at most ``max_pairs`` pairs and ``max_bytes`` bytes each."""
    if not 1 <= max_pairs <= MAX_PAIRS:
        raise ValueError(f"max_pairs must be 1..{MAX_PAIRS}")
    files: list[bytes] = []
    page: list[bytes] = []
    size = 2  # the brackets
    for pair in pairs:
        item = orjson.dumps(pair)
        if len(item) + 2 > max_bytes:
            raise FormatError(f"one KV pair is larger than {max_bytes} bytes: {pair['key']}")
        if page and (len(page) == max_pairs or size + len(item) + 1 > max_bytes):
            files.append(b"[" + b",".join(page) + b"]")
            page, size = [], 2
        page.append(item)
        size += len(item) + (1 if len(page) > 1 else 0)
    if page:
        files.append(b"[" + b",".join(page) + b"]")
    return files


def render_file(pairs: Iterable[dict[str, Any]]) -> bytes:
    """The JSON text of one bulk file."""
    return orjson.dumps(list(pairs))


def parse_file(
    data: bytes | str,
    source: str = "file",
    *,
    key_list: bytes | str | None = None,
    now: float | None = None,
) -> list[StoredRecord]:
    """Every record of a bulk file or of ``wrangler kv bulk get`` output (module docstring);
    :class:`FormatError` naming the file and pair on error. ``key_list``: the ``wrangler kv
    key list`` output the values were fetched with (metadata and expirations)."""
    doc = load_document(data, source)
    listing = parse_key_list(key_list, "key list") if key_list is not None else {}
    if isinstance(doc, dict):
        doc = bulk_get_pairs(doc, listing)
    elif not isinstance(doc, list):
        raise FormatError(f"{source}: a KV bulk file is a JSON array (or wrangler's bulk get)")
    elif is_key_list(doc):
        raise FormatError(
            f"{source}: this is a key listing (wrangler kv key list) without values: fetch them "
            f"with `wrangler kv bulk get {source} ...` and import that output (with "
            "--keys " + source + " to keep metadata and expirations)"
        )
    if len(doc) > MAX_PAIRS:
        raise FormatError(f"{source}: more than {MAX_PAIRS} pairs")
    return [pair_to_record(p, f"{source}[{i}]", now) for i, p in enumerate(doc)]
