"""Semantics of ``code`` through the public API: results, awaits, console, context, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandbox import CodeTooLarge, InvalidContext, Limits, Sandbox

LIMITS = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000)


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def value(sb: Sandbox, code: str, context: str = "{}") -> object:
    res = sb.run(code, context, LIMITS)
    assert res.ok, res.error
    return json.loads(res.result_json)


def test_contract_example_returns_30(sb: Sandbox) -> None:
    res = sb.run("const x = 10; const y = 20; return x + y;", limits=LIMITS)
    assert res.ok
    assert res.error is None
    assert res.result_json == "30"
    assert res.fuel > 0
    assert res.wall_ms > 0
    assert res.cpu_ms >= 0
    assert res.peak_memory >= 512 * 1024


def test_await_and_promises_run_to_completion(sb: Sandbox) -> None:
    code = """
      const order = [];
      const p = new Promise((resolve) => Promise.resolve().then(() => resolve(5)));
      Promise.resolve().then(() => order.push('micro'));
      order.push('sync');
      const v = await p;
      await null;
      return {v, order};
    """
    assert value(sb, code) == {"v": 5, "order": ["sync", "micro"]}


def test_async_function_helpers(sb: Sandbox) -> None:
    code = "async function f(n){ await null; return n * 2 } return await Promise.all([f(1), f(2)]);"
    assert value(sb, code) == [2, 4]


def test_console_capture_all_levels_and_formatting(sb: Sandbox) -> None:
    code = """
      console.log('a', 1, true, null, undefined, {b: [1, 'x']}, [1, 2], 10n);
      console.info('info'); console.warn('warn'); console.error('error'); console.debug('debug');
      console.log(function named() {}, Symbol('s'));
      console.log(new TypeError('boom').message);
    """
    res = sb.run(code, limits=LIMITS)
    assert res.ok
    assert res.output == (
        'a 1 true null undefined {"b":[1,"x"]} [1,2] 10n',
        "info",
        "warn",
        "error",
        "debug",
        "[Function: named] Symbol(s)",
        "boom",
    )


def test_context_is_global(sb: Sandbox) -> None:
    assert value(sb, "return context.a + context.b.length", '{"a": 2, "b": [1, 2, 3]}') == 5
    assert value(sb, "return globalThis.context", " {} ") == {}
    assert value(sb, "return context.__proto__ === Object.prototype", '{"x": 1}') is True


def test_context_keeps_json_proto_key_as_data(sb: Sandbox) -> None:
    assert value(sb, "return Object.keys(context)", '{"__proto__": {"p": 1}}') == ["__proto__"]


def test_invalid_context_raises_before_running(sb: Sandbox) -> None:
    with pytest.raises(InvalidContext):
        sb.run("return 1", "[1, 2]", LIMITS)
    with pytest.raises(InvalidContext):
        sb.run("return 1", "{not json", LIMITS)
    assert value(sb, "return typeof context") == "object"


def test_undefined_and_functions_give_null(sb: Sandbox) -> None:
    assert sb.run("return;", limits=LIMITS).result_json == "null"
    assert sb.run("return () => 1", limits=LIMITS).result_json == "null"
    assert sb.run("return Symbol('x')", limits=LIMITS).result_json == "null"
    assert value(sb, "return {f() {}, s: Symbol('x'), u: undefined, n: 1}") == {"n": 1}


def test_bigint_becomes_decimal_string(sb: Sandbox) -> None:
    assert value(sb, "return 2n ** 70n") == str(2**70)
    assert value(sb, "return {big: 12345678901234567890n, n: 1}") == {
        "big": "12345678901234567890",
        "n": 1,
    }


def test_cycle_is_a_type_error(sb: Sandbox) -> None:
    res = sb.run("const a = {}; a.self = a; return a;", limits=LIMITS)
    assert not res.ok
    assert res.error is not None
    assert res.error.type == "TypeError"
    assert res.result_json == "null"


@pytest.mark.parametrize(
    ("code", "etype", "message"),
    [
        ("return foo;", "ReferenceError", "foo is not defined"),
        ("return }{;", "SyntaxError", None),
        ("null.x", "TypeError", None),
        ("throw new RangeError('r')", "RangeError", "r"),
        ("throw 'plain string'", "Error", "plain string"),
        ("throw 42", "Error", "42"),
        ("await Promise.reject(new URIError('u'))", "URIError", "u"),
        (
            "class MyErr extends Error { constructor(m) { super(m); this.name = 'MyErr'; } }"
            " throw new MyErr('mine')",
            "MyErr",
            "mine",
        ),
    ],
)
def test_error_shapes(sb: Sandbox, code: str, etype: str, message: str | None) -> None:
    res = sb.run(code, limits=LIMITS)
    assert not res.ok
    assert res.error is not None
    assert res.error.type == etype
    if message is not None:
        assert res.error.message == message
    assert res.result_json == "null"


def test_error_stack_points_into_user_code(sb: Sandbox) -> None:
    res = sb.run("\n\nfunction f() { throw new Error('deep'); }\nf();", limits=LIMITS)
    assert res.error is not None
    assert "<code>:3" in res.error.stack
    assert "prelude" not in res.error.stack


def test_output_kept_when_code_throws(sb: Sandbox) -> None:
    res = sb.run("console.log('before'); throw new Error('x')", limits=LIMITS)
    assert res.output == ("before",)
    assert res.error is not None
    assert res.error.type == "Error"


def test_lone_surrogates_never_raise(sb: Sandbox) -> None:
    res = sb.run("console.log('a\\ud800b'); return 'x\\udc00';", limits=LIMITS)
    assert res.ok
    assert res.output == ("a\ufffdb",)
    assert json.loads(res.result_json) == "x\udc00"


def test_output_line_cap(sb: Sandbox) -> None:
    lim = Limits(timeout_ms=1000, fuel=2_000_000_000, max_output_lines=3)
    res = sb.run("for (let i = 0; i < 10; i++) console.log(i); return 1", limits=lim)
    assert not res.ok
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    assert res.output == ("0", "1", "2")


def test_output_byte_cap_counts_utf8(sb: Sandbox) -> None:
    lim = Limits(timeout_ms=1000, fuel=2_000_000_000, max_output_bytes=10)
    res = sb.run("console.log('éééé'); console.log('ééé'); return 1", limits=lim)
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    assert res.output == ("éééé",)


def test_output_cap_holds_even_if_code_catches(sb: Sandbox) -> None:
    lim = Limits(timeout_ms=1000, fuel=2_000_000_000, max_output_lines=2)
    code = "for (let i = 0; i < 5; i++) { try { console.log(i) } catch {} } return 'done'"
    res = sb.run(code, limits=lim)
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    assert res.output == ("0", "1")


def test_result_cap(sb: Sandbox) -> None:
    lim = Limits(timeout_ms=1000, fuel=2_000_000_000, max_result_bytes=100)
    assert sb.run("return 'x'.repeat(90)", limits=lim).ok
    res = sb.run("return 'x'.repeat(200)", limits=lim)
    assert res.error is not None
    assert res.error.type == "ResultLimitError"
    assert res.result_json == "null"
    res = sb.run("return 'é'.repeat(60)", limits=lim)  # 60 UTF-16 units, 122 bytes of JSON
    assert res.error is not None
    assert res.error.type == "ResultLimitError"


def test_code_too_large_is_an_exception(sb: Sandbox) -> None:
    lim = Limits(max_code_bytes=100)
    sb.run("return 1;" + " " * 80, limits=lim)
    with pytest.raises(CodeTooLarge):
        sb.run("return 1;" + " " * 100, limits=lim)


def test_no_timers_modules_or_host(sb: Sandbox) -> None:
    # setTimeout, require, fetch, ... exist since issue 10 (see test_sandbox_globals.py)
    names = ["process", "std", "os", "scriptArgs", "print", "Worker"]
    code = f"return {json.dumps(names)}.filter(n => typeof globalThis[n] !== 'undefined')"
    assert value(sb, code) == []


def test_limits_validation() -> None:
    with pytest.raises(ValueError, match="timeout_ms"):
        Limits(timeout_ms=0)
    assert Limits(timeout_ms=200).deadline_ticks(10) == 21
