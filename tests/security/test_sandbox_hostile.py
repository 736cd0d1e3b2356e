"""Hostile code: every limit ends the run with its own error, and the next run still works."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Limits, Sandbox

MIB = 1024 * 1024
BASE = Limits(timeout_ms=300, memory_bytes=16 * MIB, fuel=10**12)
FUEL = Limits(timeout_ms=5000, memory_bytes=16 * MIB, fuel=50_000_000)
CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def assert_healthy(sb: Sandbox) -> None:
    res = sb.run("const x = 10; const y = 20; console.log('ok'); return x + y;", limits=BASE)
    assert res.ok, res.error
    assert res.result_json == "30"
    assert res.output == ("ok",)
    assert sb.run("return typeof leak", limits=BASE).result_json == '"undefined"'


def expect(sb: Sandbox, code: str, etype: str, limits: Limits = BASE) -> None:
    res = sb.run(code, limits=limits)
    assert not res.ok, res
    assert res.error is not None
    assert res.error.type == etype, res.error
    assert res.result_json == "null"
    assert_healthy(sb)


LOOPS = [
    "globalThis.leak = 1; while (true) {}",
    "for (;;) { try { while (true) {} } catch (e) {} finally { continue; } }",
    "while (true) { try { throw 1 } catch { } finally { } }",
    "async function f() { while (true) await null; } await f();",
    "const loop = () => Promise.resolve().then(loop); loop(); await new Promise(() => {});",
    "let p = Promise.resolve(); for (;;) p = p.then(() => 1);",
    "/(a+)+$/.test('a'.repeat(40) + 'b')",
    "eval('while(true){}')",
    "new Function('for(;;){}')()",
]


@pytest.mark.parametrize("code", LOOPS)
def test_endless_code_times_out_on_time(sb: Sandbox, code: str) -> None:
    limits = Limits(timeout_ms=200, memory_bytes=64 * MIB, fuel=10**12)
    res = sb.run(code, limits=limits)
    assert res.error is not None
    assert res.error.type in ("TimeoutError", "MemoryLimitError"), res
    if res.error.type == "TimeoutError":
        assert 190 <= res.wall_ms <= 600, res.wall_ms
    assert_healthy(sb)


def test_plain_spin_is_a_timeout(sb: Sandbox) -> None:
    start = time.perf_counter()
    expect(sb, "while(true){}", "TimeoutError", Limits(timeout_ms=200, fuel=10**12))
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("code", ["while(true){}", "for(;;){ try {} finally {} }"])
def test_fuel_cap(sb: Sandbox, code: str) -> None:
    expect(sb, code, "FuelExhaustedError", FUEL)


def test_output_before_a_timeout_is_kept(sb: Sandbox) -> None:
    res = sb.run("console.log('started'); while (true) {}", limits=BASE)
    assert res.error is not None
    assert res.error.type == "TimeoutError"
    assert res.output == ("started",)
    assert_healthy(sb)


@pytest.mark.parametrize(
    "code",
    [
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        "const a = []; for (let i = 0; ; i++) a.push({i});",
        "let s = 'x'; const keep = []; while (true) { s = s + s; keep.push(s.slice(1)); }",
        "const keep = []; while (true) keep.push(new ArrayBuffer(1 << 20));",
        "return new Uint8Array(1 << 30).length",
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, 'v' + i);",
    ],
)
def test_memory_bombs(sb: Sandbox, code: str) -> None:
    res = sb.run(code, limits=Limits(timeout_ms=3000, memory_bytes=16 * MIB, fuel=10**12))
    assert res.error is not None
    assert res.error.type in ("MemoryLimitError", "RangeError", "InternalError"), res.error
    if res.error.type != "MemoryLimitError":  # e.g. 'invalid array buffer length'
        assert "memory" in res.error.message or "length" in res.error.message, res.error
    assert res.peak_memory <= 16 * MIB
    assert_healthy(sb)


def test_array_bomb_is_a_memory_limit_error(sb: Sandbox) -> None:
    expect(
        sb,
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        "MemoryLimitError",
        Limits(timeout_ms=3000, memory_bytes=16 * MIB, fuel=10**12),
    )


def test_string_doubling_is_stopped(sb: Sandbox) -> None:
    res = sb.run("let s = 'x'; while (true) s += s;", limits=BASE)
    assert res.error is not None
    assert res.error.type in ("InternalError", "MemoryLimitError")
    assert_healthy(sb)


@pytest.mark.parametrize(
    "code",
    [
        "function f(n) { return f(n + 1) + 1; } return f(0);",
        "const f = (n) => [f(n + 1)]; f(0);",
        "function f() { try { return f(); } catch (e) { return f(); } } f();",
        "let o = {}; for (let i = 0; i < 1e6; i++) o = {o}; return o;",
        "let a = []; for (let i = 0; i < 1e6; i++) a = [a]; return String(a).length;",
        "const p = new Proxy({}, { get: (t, k, r) => r[k] }); return p.x;",
        "JSON.parse('['.repeat(1e6) + ']'.repeat(1e6))",
    ],
)
def test_deep_recursion_is_a_range_error(sb: Sandbox, code: str) -> None:
    res = sb.run(code, limits=Limits(timeout_ms=3000, memory_bytes=64 * MIB, fuel=10**12))
    assert res.error is not None
    assert res.error.type in ("RangeError", "MemoryLimitError", "InternalError"), res.error
    if res.error.type == "RangeError":
        assert "stack" in res.error.message
    assert_healthy(sb)


def test_recursion_depth_is_usable(sb: Sandbox) -> None:
    res = sb.run("function d(n) { return n ? d(n - 1) + 1 : 0 } return d(1000)", limits=BASE)
    assert res.ok
    assert res.result_json == "1000"


def test_huge_output_is_capped(sb: Sandbox) -> None:
    res = sb.run("while (true) console.log('x'.repeat(1000));", limits=BASE)
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    assert len(res.output) <= BASE.max_output_lines
    assert sum(len(line) for line in res.output) <= BASE.max_output_bytes
    assert_healthy(sb)


def test_huge_single_line_is_capped(sb: Sandbox) -> None:
    res = sb.run("console.log('y'.repeat(3 * 1024 * 1024)); return 1", limits=BASE)
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    assert res.output == ()
    assert_healthy(sb)


def test_huge_result_is_capped(sb: Sandbox) -> None:
    res = sb.run("return 'z'.repeat(2 * 1024 * 1024)", limits=BASE)
    assert res.error is not None
    assert res.error.type == "ResultLimitError"
    assert_healthy(sb)


@pytest.mark.parametrize(
    "code",
    [
        "return await import('os')",
        "return await import('std')",
        "return await import('qjs:std')",
        "return await import('qjs:os')",
        "return await import('qjs:bjson')",
        "return await import('./secret.js')",
        "return await import('/etc/passwd')",
        "return await import('data:text/javascript,export default 1')",
        "return require('fs')",
        "return process.env",
        "return std.getenv('HOME')",
        "return os.exec(['ls'])",
        "return fetch('http://example.com')",
        "return new Worker('x.js')",
        "return scriptArgs",
    ],
)
def test_no_way_to_the_host(sb: Sandbox, code: str) -> None:
    res = sb.run(code, limits=BASE)
    assert not res.ok, res
    assert res.error is not None
    allowed = ("ReferenceError", "TypeError", "SyntaxError", "Error", "NetworkDisabledError")
    assert res.error.type in allowed, res.error
    assert_healthy(sb)


def test_eval_and_function_stay_inside(sb: Sandbox) -> None:
    code = (
        "return [eval('1 + 1'), new Function('return typeof globalThis.std')(),"
        " (0, eval)('typeof os')]"
    )
    res = sb.run(code, limits=BASE)
    assert res.ok
    assert json.loads(res.result_json) == [2, "undefined", "undefined"]


def test_shared_memory_and_atomics_cannot_block(sb: Sandbox) -> None:
    code = """
      if (typeof SharedArrayBuffer === 'undefined') return 'no SAB';
      const ia = new Int32Array(new SharedArrayBuffer(16));
      return Atomics.wait(ia, 0, 0, 1000);
    """
    res = sb.run(code, limits=BASE)
    assert res.wall_ms < 600
    if not res.ok:
        assert res.error is not None
        assert res.error.type in ("TypeError", "ReferenceError", "TimeoutError", "Error")
    assert_healthy(sb)


def test_very_large_context(sb: Sandbox) -> None:
    context = json.dumps({"items": ["v" * 100] * 9000})
    assert len(context) > 900_000
    res = sb.run("return context.items.length", context, BASE)
    assert res.ok
    assert res.result_json == "9000"
    assert_healthy(sb)


def test_deeply_nested_context(sb: Sandbox) -> None:
    res = sb.run("return 1", "{" + '"a":{' * 100_000 + "}" * 100_001, BASE)
    assert res.error is not None
    assert res.error.type in ("RangeError", "MemoryLimitError")
    assert_healthy(sb)


def corpus_cases() -> list[tuple[str, str]]:
    cases = []
    for path in sorted(CORPUS.glob("*.js")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("// expect: ")
        cases.append((path.name, first.removeprefix("// expect: ").strip()))
    return cases


@pytest.mark.parametrize(("name", "expected"), corpus_cases())
def test_corpus(sb: Sandbox, name: str, expected: str) -> None:
    res = sb.run((CORPUS / name).read_text(), limits=BASE)
    got = "ok" if res.ok else res.error.type if res.error else "?"
    assert got == expected, res
    assert_healthy(sb)
