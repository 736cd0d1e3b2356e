"""Exact money: :class:`~decimal.Decimal` in Python, integer pico-USD in Redis.

A charge is computed exactly (pricing.py) and rounded once, half-to-even, to whole pico-USD
(10**-12 USD) when it is recorded. From then on every sum is integer arithmetic (HINCRBY,
never HINCRBYFLOAT), so totals and reports add up to the records exactly. A signed 64-bit
counter of pico-USD holds 9.2 million USD, far above any one client's month.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

__all__ = ["EXACT", "PICO", "format_decimal", "format_usd", "from_pico", "parse_usd", "to_pico"]

PICO = Decimal("1e-12")
"""The unit stored in Redis: one pico-USD."""

EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)
"""Context for money arithmetic: wide enough that no product of plan prices rounds."""


def to_pico(usd: Decimal) -> int:
    """Round ``usd`` once (half-to-even) to an integer count of pico-USD."""
    with localcontext(EXACT):
        return int(usd.scaleb(12).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_pico(pico: int) -> Decimal:
    """The exact USD amount of ``pico`` pico-USD."""
    with localcontext(EXACT):
        return Decimal(pico).scaleb(-12)


def format_decimal(value: Decimal) -> str:
    """An exact decimal string without exponent or trailing zeros (``"0.0000021"``, ``"0"``)."""
    if value.is_zero():
        return "0"
    return format(value.normalize(EXACT), "f")


format_usd = format_decimal
"""Money is shown exactly, the same way as any other decimal."""


def parse_usd(text: str) -> Decimal:
    """Parse a decimal USD string; ValueError if it is not a finite decimal."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ValueError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    return value
