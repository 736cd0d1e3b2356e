"""TypeScript through the real stripper (SWC in wasm) and the real QuickJS sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import Limits, Sandbox, _ts_bindgen, _ts_package
from sandbox._ts_result import STRIP_ONLY, TRANSFORM
from sandbox.typescript import (
    StripLimits,
    StripperUnavailable,
    TypeScript,
    TypeScriptLoader,
)

LIMITS = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000)


def run_ts(sb: Sandbox, ts: TypeScript, code: str) -> object:
    stripped = ts.strip_types(code)
    assert stripped.error is None, stripped.error
    res = sb.run(stripped.code, limits=LIMITS)
    assert res.ok, res.error
    return json.loads(res.result_json)


def test_strip_only_blanks_types_and_keeps_every_position(ts: TypeScript) -> None:
    code = "const x: number = 10;\nconst y = (20 as number);\nreturn x + y;"
    stripped = ts.strip_types(code)
    assert stripped.error is None
    assert stripped.mode == STRIP_ONLY
    assert len(stripped.code) == len(code)
    assert stripped.code.splitlines()[0] == "const x         = 10;"
    assert [len(line) for line in stripped.code.splitlines()] == [
        len(line) for line in code.splitlines()
    ]
    assert stripped.fuel > 0
    assert stripped.wall_ms > 0


def test_types_interfaces_generics_as_satisfies_optional_chaining(
    sb: Sandbox, ts: TypeScript
) -> None:
    code = """
interface User { id: number; name: string; email?: string }
type Pair<A, B = A> = readonly [A, B];
function first<T extends object, K extends keyof T>(items: T[], key: K): T[K] | undefined {
  return items[0]?.[key];
}
abstract class Shape { abstract area(): number; describe(): string { return `${this.area()}`; } }
class Square extends Shape {
  constructor(readonly side: number) { super(); }
  area() { return this.side ** 2; }
}
const users: User[] = [{ id: 1, name: "Ada" }];
const cfg = { retries: 3 } satisfies { retries: number };
const pair: Pair<number> = [1, 2] as const;
const email = users[0]?.email?.toUpperCase() ?? "none";
const n = (users[0]! as User).id as unknown as number;
declare const nothing: string;
const sq = new Square(3).describe();
return { name: first<User, "name">(users, "name"), cfg, pair, email, n, sq };
"""
    assert run_ts(sb, ts, code) == {
        "name": "Ada",
        "cfg": {"retries": 3},
        "pair": [1, 2],
        "email": "none",
        "n": 1,
        "sq": "9",
    }


def test_enums_namespaces_and_parameter_properties_use_transform_mode(
    sb: Sandbox, ts: TypeScript
) -> None:
    code = """
enum Color { Red, Green = "green", Blue = 4 }
const enum Flag { A = 1, B = 2 }
namespace Geo { export const origin = { x: 0, y: 0 }; }
class Point {
  constructor(private x: number, public y: number) {}
  sum() { return this.x + this.y; }
}
const p = new Point(1, 2).sum();
return [Color.Red, Color[Color.Red], Color.Green, Color.Blue, Flag.A | Flag.B, Geo.origin, p];
"""
    assert ts.strip_types(code).mode == TRANSFORM
    assert run_ts(sb, ts, code) == [0, "Red", "green", 4, 3, {"x": 0, "y": 0}, 3]
    # parameter properties alone: strip-only refuses them, the fallback transforms
    properties = "class P { constructor(private x: number) {} get() { return this.x } }\n"
    stripped = ts.strip_types(properties + "return new P(7).get()")
    assert stripped.mode == TRANSFORM
    assert run_ts(sb, ts, properties + "return new P(7).get()") == 7


def test_transform_mode_errors_are_mapped_back_to_typescript_positions(
    sb: Sandbox, ts: TypeScript
) -> None:
    code = 'enum E { A = 1 }\nfunction f(x: number) {\n  throw new Error("three");\n}\n\nf(E.A);'
    stripped = ts.strip_types(code)
    assert stripped.mode == TRANSFORM
    res = sb.run(stripped.code, limits=LIMITS)
    assert res.error is not None
    assert stripped.map_positions(res.error.stack).splitlines() == [
        "    at f (<code>:3:13)",
        "    at <anonymous> (<code>:6:1)",
    ]
    plain = ts.strip_types("const t: any = null;\n  t.boom;")
    assert plain.source_map is None
    assert plain.map_positions("at <code>:2:3") == "at <code>:2:3"


def test_top_level_await_and_return_work_like_javascript(sb: Sandbox, ts: TypeScript) -> None:
    code = "const v: number = await Promise.resolve<number>(41);\nreturn v + 1;"
    assert run_ts(sb, ts, code) == 42


def test_syntax_errors_carry_the_typescript_line_and_column(ts: TypeScript) -> None:
    stripped = ts.strip_types("const a: number = 1;\nconst x: number = ;\nreturn a;")
    assert stripped.error is not None
    assert stripped.code == ""
    assert stripped.error.type == "SyntaxError"
    assert stripped.error.stack == "    at <code>:2:19"
    first_line = ts.strip_types("let x: = 1")
    assert first_line.error is not None
    assert first_line.error.type == "SyntaxError"
    assert first_line.error.stack == "    at <code>:1:8"


def test_runtime_errors_point_at_typescript_lines(sb: Sandbox, ts: TypeScript) -> None:
    code = "const a: number = 1;\nconst b: string = 'x';\nconst o: any = null;\n  o.boom;"
    stripped = ts.strip_types(code)
    res = sb.run(stripped.code, limits=LIMITS)
    assert res.error is not None
    assert res.error.type == "TypeError"
    assert "<code>:4:3" in res.error.stack


def test_decorators_give_a_clear_syntax_error(ts: TypeScript) -> None:
    for code, where in (
        ("class A { @log m() {} }\nreturn 1", "1:11"),
        ("const x = 1;\nclass A { m(@inject x: number) {} }", "2:13"),
    ):
        error = ts.strip_types(code).error
        assert error is not None
        assert error.type == "SyntaxError"
        assert error.message.startswith("decorators are not supported")
        assert error.stack == f"    at <code>:{where}"
    error = ts.strip_types("@sealed class A {}\nreturn 1").error
    assert error is not None
    assert error.type == "SyntaxError"


def test_unicode_and_lone_surrogates_do_not_break_stripping(sb: Sandbox, ts: TypeScript) -> None:
    assert run_ts(sb, ts, "const s: string = 'é😀'; return s.length as number;") == 3
    stripped = ts.strip_types("return '\ud800' as string;")
    assert stripped.error is None
    assert sb.run(stripped.code, limits=LIMITS).ok


def test_stripping_is_deterministic_and_keeps_no_state(ts: TypeScript) -> None:
    code = "let total: number = 0; for (const n of [1, 2] as number[]) total += n; return total;"
    first = ts.strip_types(code)
    ts.strip_types("enum E { A }\nreturn E.A")
    ts.strip_types("let x: = ;")
    again = ts.strip_types(code)
    assert (again.code, again.fuel, again.mode) == (first.code, first.fuel, first.mode)


def test_out_of_fuel_is_a_limit_error_that_can_be_retried(ts: TypeScript) -> None:
    code = "const xs: number[] = [];\n" * 200 + "return xs;"
    small = ts.strip_types(code, StripLimits(fuel=50_000))
    assert small.out_of_fuel
    assert small.error is not None
    assert small.error.type == "TranspileLimitError"
    assert ts.strip_types(code).error is None


def test_a_tarball_that_does_not_match_its_pin_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / _ts_package.TARBALL
    fake.write_bytes(b"not the package")
    with pytest.raises(StripperUnavailable, match="does not match"):
        _ts_package.read_wasm(fake)


def test_missing_package_without_fetch_is_unavailable(sb: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(StripperUnavailable, match="not in"):
        TypeScript(sb.compiled.engine, tmp_path, fetch=False)


def test_loader_remembers_a_failure_then_retries() -> None:
    calls: list[int] = []

    def broken() -> TypeScript:
        calls.append(1)
        raise StripperUnavailable("no package here")

    loader = TypeScriptLoader(broken, retry_s=0.0)
    for _ in range(2):
        with pytest.raises(StripperUnavailable, match="no package here"):
            loader.get()
    assert len(calls) == 2
    assert not loader.ready
    held = TypeScriptLoader(broken, retry_s=3600)
    for _ in range(3):
        with pytest.raises(StripperUnavailable):
            held.get()
    assert len(calls) == 3


def test_the_glue_checks_every_memory_access_against_the_memory_size() -> None:
    heap = _ts_bindgen.Heap(0, lambda: 4096, lambda *args: 0)
    for ptr, n in ((4090, 8), (-1, 4), (0, 4097)):
        with pytest.raises(_ts_bindgen.Unsupported, match="out of bounds"):
            heap.read(ptr, n)
    with pytest.raises(_ts_bindgen.Unsupported, match="out of bounds"):
        heap.write(4095, b"ab")
