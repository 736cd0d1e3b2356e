"""Usage totals of one period: the Redis hash, exact derived figures, and folding.

A ``usage:{client}:<period>`` hash holds nine non-negative integers::

    executions     executions recorded
    errors         of which ended in an error (JS exception or limit)
    fuel           wasm fuel consumed
    billed_cpu_ns  billed CPU time (from fuel), nanoseconds
    cpu_us         measured CPU time, microseconds (recorded, never priced)
    wall_us        wall-clock time, microseconds
    mem_bytes      sum of each execution's peak memory, bytes
    cost_pusd      cost, pico-USD (each execution rounded once when recorded)
    updated_ms     last update, Unix milliseconds (a maximum, not a sum)

They are stored packed in the one hash field ``packed`` (:data:`PACKED_FIELD`): for each
field, in the order above, a big-endian ``uint64`` high limb and ``uint32`` low limb, value =
high x 2**32 + low with low < 2**32 (108 bytes; Lua's ``struct`` format ``>I8I4`` x 9, Python's
``>QI`` x 9). The record script adds an execution with one HGET and one HSET per hash and
exact limb arithmetic (Lua numbers are doubles, exact below 2**53); a sum can grow to 2**85.

Records written before this layout (and test fixtures) hold the nine names as plain decimal
hash fields (HINCRBY). Every reader adds those to the packed field (``updated_ms``: the
maximum), so old and new records, or a mix within one hash, read correctly; the rollup and
the KV import rewrite a record in the packed form.

The contract's figures (``cpuMs``, ``memoryMb``, ``computeUnits``, ``cost``) are derived
exactly from these; nothing here touches Redis.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from billing.money import EXACT, format_usd, from_pico
from billing.pricing import BYTES_PER_MB

__all__ = [
    "COUNTERS",
    "FIELDS",
    "MEASURES",
    "PACKED_FIELD",
    "UsageTotals",
    "contract_value",
    "fold",
    "iso_utc",
    "packed_values",
    "spent_pusd",
]

MEASURES = ("fuel", "billed_cpu_ns", "cpu_us", "wall_us", "mem_bytes", "cost_pusd")
"""What each execution measures, summed into the counters (a ledger entry holds each)."""

COUNTERS = ("executions", "errors", *MEASURES)
"""The summed counters of a usage record."""

FIELDS = (*COUNTERS, "updated_ms")
"""Hash fields of a usage record, in a fixed order (``updated_ms`` last: a time, not a sum)."""

PACKED_FIELD = "packed"
"""The hash field holding all of :data:`FIELDS` in the packed form (module docstring)."""

_PACKED = struct.Struct(">" + "QI" * len(FIELDS))
_FIELD_NAMES = {name.encode(): name for name in FIELDS} | {name: name for name in FIELDS}
_PACKED_NAMES = (PACKED_FIELD.encode(), PACKED_FIELD)
_COST = FIELDS.index("cost_pusd")


def packed_values(data: bytes) -> list[int]:
    """The nine integers of a packed field (ValueError if it is not 108 bytes)."""
    try:
        limbs = _PACKED.unpack(data)
    except struct.error:
        raise ValueError(f"a packed usage field is {_PACKED.size} bytes, not {len(data)}") from None
    return [(limbs[i] << 32) + limbs[i + 1] for i in range(0, len(limbs), 2)]


def spent_pusd(legacy_cost: bytes | str | None, packed: bytes | None) -> int:
    """``cost_pusd`` of a record read as its plain field and its packed field (either None)."""
    spent = int(legacy_cost) if legacy_cost is not None else 0
    return spent + (packed_values(packed)[_COST] if packed is not None else 0)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over one period (or over several, after :func:`fold`)."""

    executions: int = 0
    errors: int = 0
    fuel: int = 0
    billed_cpu_ns: int = 0
    cpu_us: int = 0
    wall_us: int = 0
    mem_bytes: int = 0
    cost_pusd: int = 0
    updated_ms: int = 0

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes] | Mapping[str, str]) -> UsageTotals:
        """Build from an HGETALL reply: packed plus plain fields (others ignored, missing 0)."""
        values = dict.fromkeys(FIELDS, 0)
        for k, v in raw.items():
            if k in _PACKED_NAMES:
                if not isinstance(v, bytes):
                    raise TypeError("billing needs a Redis client with decode_responses=False")
                pairs: Iterable[tuple[str, int]] = zip(FIELDS, packed_values(v), strict=True)
            elif (name := _FIELD_NAMES.get(k)) is not None:
                pairs = ((name, int(v)),)
            else:
                continue
            for name, value in pairs:
                if name == "updated_ms":
                    values[name] = max(values[name], value)
                else:
                    values[name] += value
        return cls(**values)

    def to_hash(self) -> dict[str, int]:
        """The nine values by field name."""
        return {f: getattr(self, f) for f in FIELDS}

    def packed(self) -> bytes:
        """The packed field's bytes (ValueError for a negative value or one of 2**96 or more)."""
        limbs: list[int] = []
        for name in FIELDS:
            value = getattr(self, name)
            if not 0 <= value < 1 << 96:
                raise ValueError(f"{name}={value} cannot be packed")
            limbs += (value >> 32, value & 0xFFFFFFFF)
        return _PACKED.pack(*limbs)

    def __add__(self, other: UsageTotals) -> UsageTotals:
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        summed["updated_ms"] = max(self.updated_ms, other.updated_ms)
        return UsageTotals(**summed)

    @property
    def empty(self) -> bool:
        """True when nothing was recorded."""
        return self == UsageTotals()

    @property
    def cpu_ms(self) -> Decimal:
        """Billed CPU milliseconds (the contract's ``cpuMs``), exact."""
        return Decimal(self.billed_cpu_ns).scaleb(-6)

    @property
    def measured_cpu_ms(self) -> Decimal:
        """Measured CPU milliseconds."""
        return Decimal(self.cpu_us).scaleb(-3)

    @property
    def wall_ms(self) -> Decimal:
        """Wall-clock milliseconds."""
        return Decimal(self.wall_us).scaleb(-3)

    @property
    def memory_mb(self) -> Decimal:
        """Sum of peak MB (2**20 bytes), exact."""
        with localcontext(EXACT):
            return Decimal(self.mem_bytes) / BYTES_PER_MB

    @property
    def compute_units(self) -> Decimal:
        """Billed CPU seconds + 0.1 x peak MB, exact."""
        with localcontext(EXACT):
            return Decimal(self.billed_cpu_ns).scaleb(-9) + self.memory_mb / 10

    @property
    def cost(self) -> Decimal:
        """Cost in USD, exact (the sum of the recorded pico-USD)."""
        return from_pico(self.cost_pusd)

    @property
    def updated_at(self) -> datetime | None:
        """Last update (UTC), or None if never updated."""
        if not self.updated_ms:
            return None
        seconds, ms = divmod(self.updated_ms, 1000)
        return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=ms)


def iso_utc(at: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` (JavaScript's ``toISOString``), or None."""
    if at is None:
        return None
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def contract_value(totals: UsageTotals) -> dict[str, Any]:
    """The contract's record object: numbers as JSON numbers, ``cost`` an exact string."""
    return {
        "executions": totals.executions,
        "errors": totals.errors,
        "cpuMs": float(totals.cpu_ms),
        "wallMs": float(totals.wall_ms),
        "fuel": totals.fuel,
        "memoryMb": float(totals.memory_mb),
        "computeUnits": float(totals.compute_units),
        "cost": format_usd(totals.cost),
        "updatedAt": iso_utc(totals.updated_at),
    }


def fold(items: Iterable[UsageTotals]) -> UsageTotals:
    """The sum of several totals."""
    total = UsageTotals()
    for item in items:
        total = total + item
    return total
