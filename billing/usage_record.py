"""One finished execution as billing sees it, and what it adds to a usage record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.money import pico_of_scaled
from billing.plans import Plan
from billing.pricing import Charge, price
from billing.receipt_facts import ReceiptFacts
from billing.totals import UsageTotals

__all__ = ["DAY_MS", "EPOCH", "UsageRecord", "epoch_ms", "increments_of"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One finished execution, as billing sees it (``at`` is a UTC datetime).

    ``receipt`` holds what the execution's receipt needs beyond the counters (code and
    context hashes, engine, limits, seed, prices); it goes into the ledger entry.
    """

    client_id: str
    execution_id: str
    at: datetime
    plan: str
    fuel: int
    cpu_ms: float
    wall_ms: float
    peak_memory_bytes: int
    error: bool
    charge: Charge
    receipt: ReceiptFacts | None = None

    @classmethod
    def priced(
        cls,
        plan: Plan,
        *,
        client_id: str,
        execution_id: str,
        at: datetime,
        fuel: int,
        cpu_ms: float,
        wall_ms: float,
        peak_memory_bytes: int,
        error: bool = False,
        receipt: ReceiptFacts | None = None,
    ) -> UsageRecord:
        """A record whose charge is :func:`~billing.pricing.price` under ``plan``."""
        return cls(
            client_id=client_id,
            execution_id=execution_id,
            at=at,
            plan=plan.name,
            fuel=fuel,
            cpu_ms=cpu_ms,
            wall_ms=wall_ms,
            peak_memory_bytes=peak_memory_bytes,
            error=error,
            charge=price(plan, fuel, peak_memory_bytes),
            receipt=receipt,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (spool lines); money and CPU as exact decimal strings."""
        return {
            "client_id": self.client_id,
            "execution_id": self.execution_id,
            "at": self.at.astimezone(UTC).isoformat(),
            "plan": self.plan,
            "fuel": self.fuel,
            "cpu_ms": self.cpu_ms,
            "wall_ms": self.wall_ms,
            "peak_memory_bytes": self.peak_memory_bytes,
            "error": self.error,
            "billed_cpu_ms": str(self.charge.billed_cpu_ms),
            "compute_units": str(self.charge.compute_units),
            "cost": str(self.charge.cost),
            "receipt": None if self.receipt is None else self.receipt.pack().hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        """Inverse of :meth:`to_json`."""
        charge = Charge(
            Decimal(data["billed_cpu_ms"]), Decimal(data["compute_units"]), Decimal(data["cost"])
        )
        packed = data.get("receipt")
        return cls(
            client_id=data["client_id"],
            execution_id=data["execution_id"],
            at=datetime.fromisoformat(data["at"]),
            plan=data["plan"],
            fuel=int(data["fuel"]),
            cpu_ms=float(data["cpu_ms"]),
            wall_ms=float(data["wall_ms"]),
            peak_memory_bytes=int(data["peak_memory_bytes"]),
            error=bool(data["error"]),
            charge=charge,
            receipt=None if not packed else ReceiptFacts.unpack(bytes.fromhex(packed)),
        )

    def increments(self) -> UsageTotals:
        """What this execution adds to its daily and monthly records."""
        return UsageTotals(*increments_of(self))


def increments_of(rec: UsageRecord) -> tuple[int, ...]:
    """What the execution adds to each of :data:`~billing.totals.FIELDS` (cost: to_pico),
    from the charge's integers (no Decimal arithmetic)."""
    charge = rec.charge
    return (
        1,
        int(rec.error),
        rec.fuel,
        charge.billed_ns,
        round(rec.cpu_ms * 1000),
        round(rec.wall_ms * 1000),
        rec.peak_memory_bytes,
        pico_of_scaled(charge.cost_num, charge.cost_scale),
        epoch_ms(rec.at),
    )


def epoch_ms(at: datetime) -> int:
    """Milliseconds since 1970 of a timezone-aware datetime (exact, no float)."""
    if at.tzinfo is None:
        raise ValueError("UsageRecord.at must be timezone-aware (UTC)")
    delta = at - EPOCH
    return delta.days * DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000
