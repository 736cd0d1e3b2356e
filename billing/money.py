"""Exact money: :class:`~decimal.Decimal` in Python, integer pico-USD in Redis.

A charge is computed exactly (pricing.py) and rounded once, half-to-even, to whole pico-USD
(10**-12 USD) when it is recorded. From then on every sum is integer arithmetic (HINCRBY,
never HINCRBYFLOAT), so totals and reports add up to the records exactly. A signed 64-bit
counter of pico-USD holds 9.2 million USD, far above any one client's month.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

__all__ = [
    "EXACT",
    "PICO",
    "format_decimal",
    "format_scaled",
    "format_usd",
    "from_pico",
    "parse_usd",
    "pico_of_scaled",
    "round_half_even",
    "to_pico",
]

PICO = Decimal("1e-12")
"""The unit stored in Redis: one pico-USD."""

EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)
"""Context for money arithmetic: wide enough that no product of plan prices rounds."""


_POW10: tuple[int, ...] = tuple(10**k for k in range(128))


def to_pico(usd: Decimal) -> int:
    """Round ``usd`` once (half-to-even) to an integer count of pico-USD."""
    return int(usd.scaleb(12, EXACT).to_integral_value(ROUND_HALF_EVEN, EXACT))


def round_half_even(num: int, div: int) -> int:
    """``num / div`` rounded half-to-even to an integer (``div > 0``)."""
    q, r = divmod(num, div)  # r in [0, div)
    r += r
    if r > div or (r == div and q & 1):
        q += 1
    return q


def pico_of_scaled(num: int, scale: int) -> int:
    """:func:`to_pico` of ``num / 10**scale`` (``scale >= 0``), in integers."""
    if scale <= 12:
        return num * _POW10[12 - scale]
    k = scale - 12
    div: int = _POW10[k] if k < 128 else 10**k
    q, r = divmod(num, div)  # round_half_even, inlined: this is per request
    r += r
    if r > div or (r == div and q & 1):
        q += 1
    return q


def format_scaled(num: int, scale: int, places: int) -> str:
    """``num / 10**scale`` rounded half-to-even to ``places`` decimals and written without
    exponent or trailing zeros: the text of ``format(d.quantize(Decimal(10) ** -places)
    .normalize(), "f")`` for ``d = num / 10**scale``, in integers (``scale >= 0``)."""
    k = scale - places
    if k > 0:
        div: int = _POW10[k] if k < 128 else 10**k
        q, r = divmod(num, div)  # round_half_even, inlined: this is per request
        r += r
        if r > div or (r == div and q & 1):
            q += 1
    else:
        q = num * (_POW10[-k] if k > -128 else 10**-k)
    if q <= 0:
        # half-to-even is symmetric; Decimal writes a negative rounded to zero as "-0"
        return "0" if num >= 0 else "-" + format_scaled(-num, scale, places)
    text = str(q)
    if places == 0:
        return text
    cut = len(text) - places
    if cut > 0:
        frac = text[cut:].rstrip("0")
        return f"{text[:cut]}.{frac}" if frac else text[:cut]
    return "0." + "0" * -cut + text.rstrip("0")


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
