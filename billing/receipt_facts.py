"""What a receipt needs beyond the usage counters, packed into one ledger field.

A ledger entry of an execution carries, besides the counters, the field ``r``: the facts
below in one compact binary value (about 210 bytes), so the record script passes it through
as it is (no parsing in Lua) and the hot path pays one field. Layout (big-endian)::

    B    version (2; version 1, written before the modules and the random flag were
         recorded, is read as allowing no module and drawing no host randomness)
    32s  sha256 of the code (UTF-8)
    32s  sha256 of the canonical JSON of the context (sorted keys, no spaces)
    32s  sha256 of the engine's wasm module
    Q    Math.random seed
    B    flags: bit 0 = the code read a clock, bit 1 = it drew on the run's host random key
    I    timeout_ms        I memory_bytes     Q fuel (the run's fuel cap)
    I    max_code_bytes    I max_output_lines I max_output_bytes  I max_result_bytes
    I    fuel per billed CPU millisecond (billing.pricing.FUEL_PER_CPU_MS when recorded)
    then seven strings, each one length byte and UTF-8: wasmtime version, the plan's price
    per CPU-second, per MB and per execution (exact decimal strings, USD), the language, the
    engine build (a fingerprint of the prelude and module configuration, see
    ``service/receipting.py``), and the modules the code was allowed to ``require``
    (comma-separated, sorted; ``*`` for all; empty for none)

:func:`decode` gives the same facts as named strings (what
:attr:`billing.ledger.LedgerEntry.fields` shows): ``code_sha256``, ``context_sha256``,
``wasm_sha256`` (hex), ``random_seed``, ``read_clock`` and ``read_random`` (``0``/``1``),
``timeout_ms``, ``memory_bytes``, ``fuel_cap``, ``max_code_bytes``, ``max_output_lines``,
``max_output_bytes``, ``max_result_bytes``, ``fuel_per_cpu_ms``, ``wasmtime_version``,
``price_per_cpu_second``, ``price_per_mb``, ``price_per_execution``, ``language``,
``engine_build``, ``allowed_modules`` (comma-separated).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from billing.money import format_decimal
from billing.plans import Plan
from billing.pricing import FUEL_PER_CPU_MS

__all__ = ["FIELD", "ReceiptFacts", "canonical_json", "context_sha256", "decode", "sha256_hex"]

FIELD = "r"
"""Name of the ledger field that holds the packed facts."""

VERSION = 2
_STRINGS = {1: 6, 2: 7}  # trailing strings by version
_CLOCK, _RANDOM = 1, 2  # flag bits
_FIXED = struct.Struct(">B32s32s32sQBIIQIIIII")


@functools.lru_cache(maxsize=256)
def _prices(
    per_cpu_second: Decimal, per_mb: Decimal, per_execution: Decimal
) -> tuple[str, str, str]:
    return format_decimal(per_cpu_second), format_decimal(per_mb), format_decimal(per_execution)


@functools.lru_cache(maxsize=256)
def _strings(*values: str) -> bytes:
    """The length-prefixed strings at the end of the packed facts (the same for every run of
    one plan on one engine, hence cached)."""
    encoded = [v.encode() for v in values]
    if any(len(e) > 255 for e in encoded):
        raise ValueError("receipt strings are at most 255 bytes")
    return b"".join(bytes((len(e),)) + e for e in encoded)


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: UTF-8, keys sorted, no whitespace (what is hashed and signed)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def context_sha256(context: Any) -> bytes:
    """sha256 of the canonical JSON of a request's ``context``."""
    return hashlib.sha256(canonical_json(context)).digest()


def sha256_hex(data: bytes) -> str:
    """Lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class ReceiptFacts:
    """Identity of one run (what, on which engine, with which limits and seed, at which prices).

    Treat it as read-only. Not a frozen dataclass: one is built per execution, and setting
    21 fields through ``object.__setattr__`` cost ~5 us of the request."""

    code_sha256: bytes
    context_sha256: bytes
    wasm_sha256: bytes
    wasmtime_version: str
    random_seed: int
    read_clock: bool
    timeout_ms: int
    memory_bytes: int
    fuel_cap: int
    max_code_bytes: int
    max_output_lines: int
    max_output_bytes: int
    max_result_bytes: int
    price_per_cpu_second: str
    price_per_mb: str
    price_per_execution: str
    fuel_per_cpu_ms: int = FUEL_PER_CPU_MS
    language: str = "javascript"
    engine_build: str = ""
    read_random: bool = False
    allowed_modules: tuple[str, ...] = ()

    @staticmethod
    def prices_of(plan: Plan) -> tuple[str, str, str]:
        """The plan's three unit prices as exact decimal strings."""
        return _prices(plan.price_per_cpu_second, plan.price_per_mb, plan.price_per_execution)

    def pack(self) -> bytes:
        """The ledger field's bytes (ValueError if a value does not fit)."""
        tail = _strings(
            self.wasmtime_version,
            self.price_per_cpu_second,
            self.price_per_mb,
            self.price_per_execution,
            self.language,
            self.engine_build,
            ",".join(self.allowed_modules),
        )
        try:
            fixed = _FIXED.pack(
                VERSION,
                self.code_sha256,
                self.context_sha256,
                self.wasm_sha256,
                self.random_seed,
                _CLOCK * self.read_clock | _RANDOM * self.read_random,
                self.timeout_ms,
                self.memory_bytes,
                self.fuel_cap,
                self.max_code_bytes,
                self.max_output_lines,
                self.max_output_bytes,
                self.max_result_bytes,
                self.fuel_per_cpu_ms,
            )
        except struct.error as exc:
            raise ValueError(f"receipt facts do not fit: {exc}") from None
        return fixed + tail

    @classmethod
    def unpack(cls, data: bytes) -> ReceiptFacts:
        """Inverse of :meth:`pack` (ValueError if malformed)."""
        if len(data) < _FIXED.size or data[0] not in _STRINGS:
            raise ValueError("not a version-1 or version-2 receipt field")
        (_, code, ctx, wasm, seed, flags, timeout, memory, fuel, code_max, lines, out, res, fpm) = (
            _FIXED.unpack_from(data)
        )
        strings: list[str] = []
        pos = _FIXED.size
        for _ in range(_STRINGS[data[0]]):
            if pos >= len(data):
                raise ValueError("truncated receipt field")
            n = data[pos]
            strings.append(data[pos + 1 : pos + 1 + n].decode())
            pos += 1 + n
        if pos != len(data):
            raise ValueError("trailing bytes in receipt field")
        return cls(
            code_sha256=code,
            context_sha256=ctx,
            wasm_sha256=wasm,
            wasmtime_version=strings[0],
            random_seed=seed,
            read_clock=bool(flags & _CLOCK),
            read_random=bool(flags & _RANDOM),
            timeout_ms=timeout,
            memory_bytes=memory,
            fuel_cap=fuel,
            max_code_bytes=code_max,
            max_output_lines=lines,
            max_output_bytes=out,
            max_result_bytes=res,
            price_per_cpu_second=strings[1],
            price_per_mb=strings[2],
            price_per_execution=strings[3],
            fuel_per_cpu_ms=fpm,
            language=strings[4],
            engine_build=strings[5],
            allowed_modules=_modules(strings[6] if len(strings) > 6 else ""),
        )

    def named(self) -> dict[str, str]:
        """The facts as named strings (hashes in hex)."""
        return {
            "code_sha256": self.code_sha256.hex(),
            "context_sha256": self.context_sha256.hex(),
            "wasm_sha256": self.wasm_sha256.hex(),
            "wasmtime_version": self.wasmtime_version,
            "random_seed": str(self.random_seed),
            "read_clock": str(int(self.read_clock)),
            "read_random": str(int(self.read_random)),
            "timeout_ms": str(self.timeout_ms),
            "memory_bytes": str(self.memory_bytes),
            "fuel_cap": str(self.fuel_cap),
            "max_code_bytes": str(self.max_code_bytes),
            "max_output_lines": str(self.max_output_lines),
            "max_output_bytes": str(self.max_output_bytes),
            "max_result_bytes": str(self.max_result_bytes),
            "fuel_per_cpu_ms": str(self.fuel_per_cpu_ms),
            "price_per_cpu_second": self.price_per_cpu_second,
            "price_per_mb": self.price_per_mb,
            "price_per_execution": self.price_per_execution,
            "language": self.language,
            "engine_build": self.engine_build,
            "allowed_modules": ",".join(self.allowed_modules),
        }

    @classmethod
    def from_named(cls, named: dict[str, str]) -> ReceiptFacts:
        """Inverse of :meth:`named` (KeyError/ValueError if a field is missing or malformed)."""
        return cls(
            code_sha256=bytes.fromhex(named["code_sha256"]),
            context_sha256=bytes.fromhex(named["context_sha256"]),
            wasm_sha256=bytes.fromhex(named["wasm_sha256"]),
            wasmtime_version=named["wasmtime_version"],
            random_seed=int(named["random_seed"]),
            read_clock=named["read_clock"] == "1",
            timeout_ms=int(named["timeout_ms"]),
            memory_bytes=int(named["memory_bytes"]),
            fuel_cap=int(named["fuel_cap"]),
            max_code_bytes=int(named["max_code_bytes"]),
            max_output_lines=int(named["max_output_lines"]),
            max_output_bytes=int(named["max_output_bytes"]),
            max_result_bytes=int(named["max_result_bytes"]),
            price_per_cpu_second=named["price_per_cpu_second"],
            price_per_mb=named["price_per_mb"],
            price_per_execution=named["price_per_execution"],
            fuel_per_cpu_ms=int(named["fuel_per_cpu_ms"]),
            language=named.get("language", "javascript"),
            engine_build=named.get("engine_build", ""),
            read_random=named.get("read_random") == "1",
            allowed_modules=_modules(named.get("allowed_modules", "")),
        )


def _modules(joined: str) -> tuple[str, ...]:
    return tuple(joined.split(",")) if joined else ()


def decode(data: bytes) -> dict[str, str]:
    """The named facts of a packed field (empty if the field is empty or unreadable)."""
    if not data:
        return {}
    try:
        return ReceiptFacts.unpack(data).named()
    except (ValueError, UnicodeDecodeError):
        return {}
