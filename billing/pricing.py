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

:func:`price` computes in integers: a plan's prices become integer numerators at one
decimal scale (:class:`Tariff`, once per plan), so that ``cost = cost_num / 10**cost_scale``
and ``compute_units = units_num / 10**21`` exactly (``2**-20 = 5**20 / 10**20``). The
:class:`~decimal.Decimal` fields of a :class:`Charge` are built from those integers only when
read, with the very value and exponent the Decimal formulas above give (:func:`price_decimal`,
the reference, which :func:`price` also falls back to outside the integer path's bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import TYPE_CHECKING

from billing.money import EXACT, pico_of_scaled

if TYPE_CHECKING:
    from billing.plans import Plan

__all__ = [
    "BYTES_PER_MB",
    "FUEL_PER_CPU_MS",
    "UNITS_SCALE",
    "Charge",
    "Tariff",
    "billed_cpu_ms",
    "peak_mb",
    "price",
    "price_decimal",
    "tariff",
]

FUEL_PER_CPU_MS: int = 15_625_000
"""Wasm fuel that counts as one millisecond of billed CPU. Calibrated on the reference
machine (2 vCPU, see docs/performance.md) with the engine's unrolled dispatch loop: the
fastest workload of ``make bench``'s calibration, ``fib(24)``, burns 15.56 M fuel per ms of
thread CPU (the interpreter-bound loop ``let s=0; for(let i=0;i<1e6;i++) s+=i; return s;``
14.3 M, string and JSON work 6-9 M), so every one of them is billed for no more CPU than it
took. 15,625,000 = 10**6 x 125 / 8: one fuel is exactly 0.064 ns, so billed time is an exact
decimal and never a tie to round. Before the unrolled loop it was 13,500,000 (receipts
record the value they were billed with). It is the only knob between fuel and money, and no
plan overrides it."""

BYTES_PER_MB = 1 << 20
"""A "MB" of peak memory, as the existing client counts it (``bytes / 1024 / 1024``)."""

UNITS_SCALE = 21
"""Decimal places of :attr:`Charge.units_num`: ns / 10**9 + bytes * 5**20 / 10**21."""

_NS = Decimal("0.000001")  # one nanosecond, in milliseconds
_TENTH = Decimal("0.1")
_MB_NUM = 5**20  # bytes / 2**20 == bytes * 5**20 / 10**20
_UNITS_PER_NS = 10**12  # ns / 10**9 at UNITS_SCALE
_MAX_FUEL = 1 << 64  # integer path bounds: within them no Decimal step of the
_MAX_BYTES = 1 << 48  # reference rounds (every coefficient stays under EXACT.prec digits)
_POW10: tuple[int, ...] = tuple(10**k for k in range(128))


@dataclass(frozen=True, slots=True)
class Tariff:
    """A plan's prices as integers: ``cost = (ns * per_ns + bytes * per_byte + fixed) /
    10**scale`` for ``ns`` billed nanoseconds and ``bytes`` of peak memory.

    The ``*_exp`` fields are the prices' decimal exponents, which fix the exponent of the
    Decimal cost; ``fits`` is False when the integer path could differ from the reference
    (prices with more digits than :data:`~billing.money.EXACT` keeps, negative zero).
    ``plan`` keeps the plan alive while its tariff is cached by ``id``."""

    plan: Plan
    per_ns: int
    per_byte: int
    fixed: int
    scale: int
    cpu_exp: int
    mb_exp: int
    fixed_exp: int
    fits: bool


def _parts(value: Decimal) -> tuple[int, int]:
    """(coefficient, exponent) of a finite non-negative Decimal."""
    _sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    return int("".join(map(str, digits))), exp


def _tariff(plan: Plan) -> Tariff:
    cpu, cpu_exp = _parts(plan.price_per_cpu_second)
    mb, mb_exp = _parts(plan.price_per_mb)
    fixed, fixed_exp = _parts(plan.price_per_execution)
    # cost = ns / 10**9 * cpu * 10**cpu_exp + bytes * 5**20 / 10**20 * mb * 10**mb_exp + ...
    scale = max(0, 9 - cpu_exp, 20 - mb_exp, -fixed_exp)
    per_ns = cpu * 10 ** (scale - 9 + cpu_exp)
    per_byte = _MB_NUM * mb * 10 ** (scale - 20 + mb_exp)
    fixed_num = fixed * 10 ** (scale + fixed_exp)
    most_ns = _MAX_FUEL * 1_000_000 // FUEL_PER_CPU_MS + 1
    largest = most_ns * per_ns + _MAX_BYTES * per_byte + fixed_num  # bounds every coefficient
    prices = (plan.price_per_cpu_second, plan.price_per_mb, plan.price_per_execution)
    signed = any(p.is_signed() for p in prices)  # -0: the reference's zeros keep signs
    fits = largest < 10**EXACT.prec and scale < len(_POW10) and not signed
    return Tariff(plan, per_ns, per_byte, fixed_num, scale, cpu_exp, mb_exp, fixed_exp, fits)


_TARIFFS: dict[int, Tariff] = {}
_MAX_TARIFFS = 256


def tariff(plan: Plan) -> Tariff:
    """The integer prices of ``plan``, computed once per plan object (plans are frozen)."""
    found = _TARIFFS.get(id(plan))
    if found is None:
        if len(_TARIFFS) >= _MAX_TARIFFS:
            _TARIFFS.clear()
        found = _TARIFFS[id(plan)] = _tariff(plan)
    return found


@dataclass
class Charge:
    """What one execution is billed: billed CPU-ms, compute units and exact (unrounded) cost.

    Treat it as read-only. The Decimal fields are exact; the integer attributes say the same
    for the hot path: ``billed_ns`` (billed CPU in nanoseconds), ``units_num /
    10**units_scale`` (compute units), ``cost_num / 10**cost_scale`` (cost) and
    :attr:`cost_pico`. ``Charge(billed_cpu_ms, compute_units, cost)`` (finite Decimals, e.g.
    read back from JSON) derives the integers; :func:`price` sets the integers and the
    Decimal fields are built on first read (not a frozen dataclass: setting the integers
    through ``object.__setattr__`` would cost more than the Decimal arithmetic saved)."""

    __slots__ = (
        "_bytes",
        "_tariff",
        "billed_cpu_ms",
        "billed_ns",
        "compute_units",
        "cost",
        "cost_num",
        "cost_scale",
        "units_num",
        "units_scale",
    )

    billed_cpu_ms: Decimal
    compute_units: Decimal
    cost: Decimal

    def __post_init__(self) -> None:
        self.billed_ns: int = int(self.billed_cpu_ms.scaleb(6).to_integral_value())
        self.units_num: int
        self.units_scale: int
        self.cost_num: int
        self.cost_scale: int
        self.units_num, self.units_scale = _scaled(self.compute_units)
        self.cost_num, self.cost_scale = _scaled(self.cost)
        self._bytes: int = 0
        self._tariff: Tariff | None = None

    @property
    def cost_pico(self) -> int:
        """The cost rounded once (half-to-even) to pico-USD: ``to_pico(cost)``."""
        return pico_of_scaled(self.cost_num, self.cost_scale)

    def __hash__(self) -> int:
        return hash((self.billed_cpu_ms, self.compute_units, self.cost))

    if not TYPE_CHECKING:  # mypy keeps checking attribute names

        def __getattr__(self, name: str) -> Decimal:
            """Build a Decimal field that :func:`price` left unset (slots raise, then this)."""
            if name == "cost":
                self.cost = value = self._decimal_cost()
            elif name == "compute_units":
                self.compute_units = value = self._decimal_units()
            elif name == "billed_cpu_ms":
                self.billed_cpu_ms = value = Decimal(self.billed_ns).scaleb(-6, EXACT)
            else:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            return value

    def _decimal_units(self) -> Decimal:
        cpu_exp, mb_exp = self._exponents()
        exp = min(cpu_exp, mb_exp - 1)
        return Decimal(self.units_num // _POW10[UNITS_SCALE + exp]).scaleb(exp, EXACT)

    def _decimal_cost(self) -> Decimal:
        t = self._tariff
        assert t is not None
        cpu_exp, mb_exp = self._exponents()
        exp = min(cpu_exp + t.cpu_exp, mb_exp + t.mb_exp, t.fixed_exp)
        return Decimal(self.cost_num // _POW10[t.scale + exp]).scaleb(exp, EXACT)

    def _exponents(self) -> tuple[int, int]:
        """Exponents of the reference's ``billed_cpu_ms / 1000`` and ``bytes / 2**20``:
        exact divisions keep their ideal exponent (-6 and 0) where they can, else take as
        few places as the exact quotient needs."""
        ns, size = self.billed_ns, self._bytes
        cpu_exp = -6 if ns % 1000 == 0 else -9 if ns % 10 else -8 if ns % 100 else -7
        return cpu_exp, min(0, (size & -size).bit_length() - 21) if size else 0


def _scaled(value: Decimal) -> tuple[int, int]:
    """(num, scale) with ``value == num / 10**scale`` exactly, scale >= 0."""
    num, den = value.as_integer_ratio()  # den = 2**a * 5**b
    scale = max((den & -den).bit_length() - 1, 0)
    while 10**scale % den:
        scale += 1
    return num * (10**scale // den), scale


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


def price_decimal(plan: Plan, fuel: int, peak_memory_bytes: int) -> Charge:
    """The exact charge of one execution under ``plan``, computed in Decimal (the reference
    :func:`price` agrees with)."""
    cpu_ms = billed_cpu_ms(fuel)
    mb = peak_mb(peak_memory_bytes)
    with localcontext(EXACT):
        cpu_s = cpu_ms / 1000
        units = cpu_s + _TENTH * mb
        cost = cpu_s * plan.price_per_cpu_second + mb * plan.price_per_mb
        cost += plan.price_per_execution
    return Charge(billed_cpu_ms=cpu_ms, compute_units=units, cost=cost)


def price(plan: Plan, fuel: int, peak_memory_bytes: int) -> Charge:
    """The exact charge of one execution under ``plan``."""
    t = _TARIFFS.get(id(plan)) or tariff(plan)
    if not (t.fits and 0 <= fuel < _MAX_FUEL and 0 <= peak_memory_bytes < _MAX_BYTES):
        return price_decimal(plan, fuel, peak_memory_bytes)
    # fuel / FUEL_PER_CPU_MS in ns, half-to-even (with 15.625 M fuel per ms a fuel is exactly
    # 0.064 ns: the reference's quotient is exact and never a tie)
    ns, rest = divmod(fuel * 1_000_000, FUEL_PER_CPU_MS)
    twice = rest * 2
    if twice > FUEL_PER_CPU_MS or (twice == FUEL_PER_CPU_MS and ns & 1):
        ns += 1
    charge = Charge.__new__(Charge)
    charge.billed_ns = ns
    charge.units_num = ns * _UNITS_PER_NS + peak_memory_bytes * _MB_NUM
    charge.units_scale = UNITS_SCALE
    charge.cost_num = ns * t.per_ns + peak_memory_bytes * t.per_byte + t.fixed
    charge.cost_scale = t.scale
    charge._bytes = peak_memory_bytes
    charge._tariff = t
    return charge
