"""Usage totals of one period: the Redis hash, exact derived figures, and folding.

Every field of a ``usage:{client}:<period>`` hash is an integer (summed with HINCRBY)::

    executions     executions recorded
    errors         of which ended in an error (JS exception or limit)
    fuel           wasm fuel consumed
    billed_cpu_ns  billed CPU time (from fuel), nanoseconds
    cpu_us         measured CPU time, microseconds (recorded, never priced)
    wall_us        wall-clock time, microseconds
    mem_bytes      sum of each execution's peak memory, bytes
    cost_pusd      cost, pico-USD (each execution rounded once when recorded)
    updated_ms     last update, Unix milliseconds (a maximum, not a sum)

The contract's figures (``cpuMs``, ``memoryMb``, ``computeUnits``, ``cost``) are derived
exactly from these; nothing here touches Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from billing.money import EXACT, format_usd, from_pico
from billing.pricing import BYTES_PER_MB

__all__ = ["FIELDS", "UsageTotals", "contract_value", "fold", "iso_utc"]

FIELDS = (
    "executions",
    "errors",
    "fuel",
    "billed_cpu_ns",
    "cpu_us",
    "wall_us",
    "mem_bytes",
    "cost_pusd",
    "updated_ms",
)
"""Hash fields of a usage record, in a fixed order (``updated_ms`` last)."""


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
        """Build from an HGETALL reply (unknown fields ignored, missing ones zero)."""
        values: dict[str, int] = {}
        for k, v in raw.items():
            name = k.decode() if isinstance(k, bytes) else k
            if name in FIELDS:
                values[name] = int(v)
        return cls(**values)

    def to_hash(self) -> dict[str, int]:
        """The hash fields, for HSET."""
        return {f: getattr(self, f) for f in FIELDS}

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
