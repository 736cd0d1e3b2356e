"""The price of one execution: fuel and peak memory in, an exact :class:`Charge` out.

Billing is deterministic: the CPU time billed is derived from wasm fuel, not from the
measured (noisy) CPU time, by the one calibration constant :data:`FUEL_PER_CPU_MS`. The
measured CPU time is recorded beside it (usage.py) but never priced.

Formulas (the contract's, with MB = 2**20 bytes, as the client computes ``bytes/1024/1024``)::

    billed_cpu_ms = fuel / FUEL_PER_CPU_MS, to the nanosecond (half-to-even)
    peak_mb       = peak_memory_bytes / 2**20                 (exact decimal)
    compute_units = billed_cpu_ms / 1000 + 0.1 * peak_mb
    cost          = billed_cpu_ms / 1000 * price_per_cpu_second
                    + peak_mb * price_per_mb + price_per_execution

``cost`` is exact (every term is a terminating decimal); it is rounded once, to pico-USD,
when recorded (money.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import TYPE_CHECKING

from billing.money import EXACT

if TYPE_CHECKING:
    from billing.plans import Plan

__all__ = ["BYTES_PER_MB", "FUEL_PER_CPU_MS", "Charge", "billed_cpu_ms", "peak_mb", "price"]

FUEL_PER_CPU_MS: int = 13_500_000
"""Wasm fuel that counts as one millisecond of billed CPU. Calibrated on the reference
machine (2 vCPU, see docs/performance.md) with the interpreter-bound loop
``let s=0; for(let i=0;i<1e6;i++) s+=i; return s;``: 900,424,214 fuel in 66.9 ms of thread
CPU, 13.5 M fuel per ms (recursion measured 12.8 M, string and JSON work 6-8 M: those are
billed for less CPU than they took, never more). It is the only knob between fuel and money,
and no plan overrides it."""

BYTES_PER_MB = 1 << 20
"""A "MB" of peak memory, as the existing client counts it (``bytes / 1024 / 1024``)."""

_NS = Decimal("0.000001")  # one nanosecond, in milliseconds
_TENTH = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Charge:
    """What one execution is billed: billed CPU-ms, compute units and exact (unrounded) cost."""

    billed_cpu_ms: Decimal
    compute_units: Decimal
    cost: Decimal


def billed_cpu_ms(fuel: int) -> Decimal:
    """CPU milliseconds billed for ``fuel``, to the nanosecond (half-to-even)."""
    if fuel < 0:
        raise ValueError("fuel cannot be negative")
    with localcontext(EXACT):
        return (Decimal(fuel) / FUEL_PER_CPU_MS).quantize(_NS, rounding=ROUND_HALF_EVEN)


def peak_mb(peak_memory_bytes: int) -> Decimal:
    """Peak memory in MB (2**20 bytes), exact."""
    if peak_memory_bytes < 0:
        raise ValueError("peak memory cannot be negative")
    with localcontext(EXACT):
        return Decimal(peak_memory_bytes) / BYTES_PER_MB


def price(plan: Plan, fuel: int, peak_memory_bytes: int) -> Charge:
    """The exact charge of one execution under ``plan``."""
    cpu_ms = billed_cpu_ms(fuel)
    mb = peak_mb(peak_memory_bytes)
    with localcontext(EXACT):
        cpu_s = cpu_ms / 1000
        units = cpu_s + _TENTH * mb
        cost = cpu_s * plan.price_per_cpu_second + mb * plan.price_per_mb
        cost += plan.price_per_execution
    return Charge(billed_cpu_ms=cpu_ms, compute_units=units, cost=cost)
