"""Hostile input to the type stripper: every case ends in a clear error or a normal strip.

The stripper (SWC in wasm) parses untrusted code in a fresh wasm instance per call, with its
own fuel, memory and time limits: deep nesting, huge identifiers and pathological inputs must
end in a ``TranspileLimitError``/``SyntaxError`` (or strip normally), never hang or crash the
host, and leave the stripper and the sandbox working.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import Limits, Sandbox
from sandbox.typescript import StripLimits, Stripped, TypeScript

MAX_CODE = 64 * 1024
HANG_GUARD_S = 20.0
LIMITS = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000)
HEALTHY = "const x: number = 10; const y: number = 20; return x + y;"


def strip_guarded(ts: TypeScript, code: str, limits: StripLimits | None = None) -> Stripped:
    assert len(code.encode("utf-8", "surrogatepass")) <= MAX_CODE + 64
    start = time.monotonic()
    stripped = ts.strip_types(code, limits)
    assert time.monotonic() - start < HANG_GUARD_S  # a hang guard, not a benchmark
    return stripped


def assert_healthy(sb: Sandbox, ts: TypeScript) -> None:
    stripped = ts.strip_types(HEALTHY)
    assert stripped.error is None
    res = sb.run(stripped.code, limits=LIMITS)
    assert res.ok
    assert res.result_json == "30"


DEEP = {
    "parentheses": "return " + "(" * 30000 + "1" + ")" * 30000,
    "arrays": "return " + "[" * 30000 + "]" * 30000,
    "blocks": "{" * 30000 + "}" * 30000,
    "generic arguments": "let x: " + "A<" * 20000 + "B" + ">" * 20000 + " = 1",
    "async arrows": "return " + "async (a) => " * 5000 + "1",
    "unterminated templates": "return `" + "${`" * 20000,
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_ends_in_a_clear_error(sb: Sandbox, ts: TypeScript, name: str) -> None:
    stripped = strip_guarded(ts, DEEP[name])
    assert stripped.error is not None, name
    assert stripped.error.type in {"TranspileLimitError", "SyntaxError"}
    assert stripped.code == ""
    assert_healthy(sb, ts)


def test_huge_identifier_strips_and_runs(sb: Sandbox, ts: TypeScript) -> None:
    name = "a" * 30000  # twice: 60 KB of code
    stripped = strip_guarded(ts, f"const {name}: number = 5; return {name};")
    assert stripped.error is None
    res = sb.run(stripped.code, limits=LIMITS)
    assert res.ok
    assert res.result_json == "5"


@pytest.mark.parametrize(
    "code",
    [
        "let x: " + " | ".join(f"'{i}'" for i in range(7000)) + " = '1'; return x;",
        "let x = " + "a < b > (c) ;" * 4500,
        "type X = " + "A extends B ? " * 2000 + "C" + " : D" * 2000 + ";",
        "return /" + "(a|b)*" * 9000 + "/",
        "\u2028".join(["let a: number = 1"] * 3000),
    ],
    ids=["unions", "ambiguous-generics", "conditional-types", "regex", "line-separators"],
)
def test_pathological_inputs_are_bounded(sb: Sandbox, ts: TypeScript, code: str) -> None:
    stripped = strip_guarded(ts, code)
    assert stripped.fuel > 0
    if stripped.error is not None:
        assert stripped.error.type in {"TranspileLimitError", "SyntaxError"}
    assert_healthy(sb, ts)


def test_fuel_caps_the_stripper(ts: TypeScript) -> None:
    code = "let a: number = 1\n" * 3500
    stripped = strip_guarded(ts, code, StripLimits(fuel=1_000_000))
    assert stripped.out_of_fuel
    assert stripped.error is not None
    assert stripped.error.type == "TranspileLimitError"
    assert stripped.fuel >= 1_000_000


def test_memory_cap_of_the_stripper_is_a_clear_error(sb: Sandbox, ts: TypeScript) -> None:
    code = "let a: number = 1\n" * 3500
    stripped = strip_guarded(ts, code, StripLimits(memory_bytes=3 << 20))
    assert stripped.error is not None
    assert stripped.error.type == "TranspileLimitError"
    assert_healthy(sb, ts)


ESCAPE = "console.log('escaped')"
WRAPPER_ESCAPES = {
    "the stripper's wrapper": f"}}; {ESCAPE}; (async function(){{ return 2;",
    "the sandbox's wrapper": f"return 1 }}); {ESCAPE}; (function(){{",
    "a template in the way": f"return `${{1}}` }}); {ESCAPE}; (function(){{",
    "valid around the stripper's": f"return 1 }}\n{ESCAPE}\nasync function g(){{",
    "regex or division": f"return 1 }}/1); {ESCAPE}; (function(){{ /*/; {{/**/",
}


@pytest.mark.parametrize("code", WRAPPER_ESCAPES.values(), ids=WRAPPER_ESCAPES.keys())
def test_code_cannot_close_the_wrapper_and_run_outside_it(
    sb: Sandbox, ts: TypeScript, code: str
) -> None:
    """TypeScript is a function body: code that closes the function early and goes on with
    statements after it is refused (by the stripper or the sandbox), and nothing after the
    brace runs in that same run."""
    stripped = strip_guarded(ts, code)
    if stripped.error is not None:
        assert stripped.error.type == "SyntaxError"
    else:
        res = sb.run(stripped.code, limits=LIMITS)
        assert "escaped" not in res.output
        assert res.error is not None
        assert res.error.type == "SyntaxError"
    assert_healthy(sb, ts)


FUZZ_EXAMPLES = int(os.environ.get("CODEXEC_FUZZ_EXAMPLES", "60"))
TS_ALPHABET = st.sampled_from(
    [
        *"abcxyz019 \n\t;:,.?!<>()[]{}=+-*/|&'\"`$@#\\",
        *("\ud800", "é", "😀"),
        *("enum ", "namespace ", "interface ", "type ", " as ", " satisfies ", "=>", "${"),
    ]
)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(code=st.lists(TS_ALPHABET, max_size=300).map("".join))
def test_fuzzed_input_never_escapes_the_stripper(ts: TypeScript, code: str) -> None:
    stripped = strip_guarded(ts, code, StripLimits(fuel=200_000_000))
    if stripped.error is not None:
        assert stripped.code == ""
        assert stripped.error.type in {"TranspileLimitError", "SyntaxError"}, stripped.error
