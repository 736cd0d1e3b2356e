"""``Result.read_random``: set when a run drew on its host random key, and only then."""

from __future__ import annotations

import pytest

from sandbox import Limits, Sandbox

LIMITS = Limits(timeout_ms=3000, fuel=5_000_000_000, modules=frozenset({"*"}))


@pytest.mark.parametrize(
    ("code", "draws"),
    [
        ("return 1", False),
        ("return Math.random() < 1", False),  # seeded: replayed from the receipt's seed
        ("return typeof crypto.randomUUID", False),
        ("return require('crypto').createHash('sha256').update('x').digest('hex').length", False),
        ("return crypto.randomUUID().length", True),
        ("return crypto.getRandomValues(new Uint8Array(4)).length", True),
        ("return require('crypto').randomBytes(8).length", True),
        ("return require('node:crypto').randomInt(10) < 10", True),
        ("const c = await import('crypto'); return c.randomUUID().length", True),
        ("console.log(crypto.randomUUID()); return {a: 1}", True),  # the slow path too
        ("crypto.randomUUID(); throw new Error('after drawing')", True),
        # the plain snapshot's stand-in is touched, the run is repeated in the full one
        ("return globalThis['cry' + 'pto'].randomUUID().length", True),
    ],
)
def test_read_random(sb: Sandbox, code: str, draws: bool) -> None:
    res = sb.run(code, limits=LIMITS)
    assert res.read_random is draws, res.error
    assert res.read_clock is False


def test_the_flag_does_not_carry_over_to_the_next_run(sb: Sandbox) -> None:
    assert sb.run("return crypto.randomUUID()", limits=LIMITS).read_random is True
    for code in ("return 1", "return {a: [1, 2]}", "return crypto.subtle !== undefined"):
        assert sb.run(code, limits=LIMITS).read_random is False, code


def test_a_trapped_run_keeps_its_flag(sb: Sandbox) -> None:
    res = sb.run("crypto.randomUUID(); for (;;) {}", limits=Limits(timeout_ms=3000, fuel=10**8))
    assert res.error is not None
    assert res.error.type == "FuelExhaustedError"
    assert res.read_random is True
