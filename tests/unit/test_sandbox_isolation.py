"""Each run starts pristine; runs are deterministic; Math.random is reseeded per run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandbox import Limits, Sandbox

LIMITS = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000)


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def result(sb: Sandbox, code: str) -> object:
    res = sb.run(code, limits=LIMITS)
    assert res.ok, res.error
    return json.loads(res.result_json)


@pytest.mark.parametrize(
    ("polluter", "probe", "pristine"),
    [
        ("globalThis.leak = 1; return 1", "return typeof leak", "undefined"),
        ("var v = 2; return v", "return typeof v", "undefined"),
        ("Object.prototype.polluted = 1; return 1", "return ({}).polluted ?? null", None),
        ("Array.prototype.push = () => 0; return 1", "const a = []; a.push(1); return a", [1]),
        ("JSON.stringify = () => 'hacked'; return {a: 1}", "return {a: 1}", {"a": 1}),
        ("String.prototype.toString = () => 'x'; return 1", "return String('ok')", "ok"),
        ("Object.freeze(Object.prototype); return 1", "const o = {}; o.k = 1; return o", {"k": 1}),
        ("context.mutated = true; return 1", "return context", {}),
        ("console.log = () => {}; return 1", "console.log('seen'); return 1", 1),
        ("Promise.prototype.then = function () { return 1 }; return 1", "await null; return 2", 2),
    ],
)
def test_state_does_not_survive(sb: Sandbox, polluter: str, probe: str, pristine: object) -> None:
    result(sb, polluter)
    res = sb.run(probe, limits=LIMITS)
    assert res.ok, res.error
    assert json.loads(res.result_json) == pristine
    if "seen" in probe:
        assert res.output == ("seen",)


def test_builtin_overrides_do_not_break_reporting_in_the_same_run(sb: Sandbox) -> None:
    code = """
      JSON.stringify = () => 'hacked'; Array.prototype.join = () => 'j';
      String.prototype.slice = () => 's'; Reflect.apply = () => 0;
      console.log('line', {a: 1});
      return {ok: [1, 2]};
    """
    res = sb.run(code, limits=LIMITS)
    assert res.ok
    assert json.loads(res.result_json) == {"ok": [1, 2]}
    assert res.output == ('line {"a":1}',)


def test_pending_promises_do_not_leak_into_next_run(sb: Sandbox) -> None:
    code = (
        "globalThis.hold = new Promise(() => {});"
        " Promise.resolve().then(() => { globalThis.late = 1 }); return 1"
    )
    result(sb, code)
    assert result(sb, "await null; return typeof late + typeof hold") == "undefinedundefined"


def test_never_settling_promise_is_an_error(sb: Sandbox) -> None:
    res = sb.run("await new Promise(() => {}); return 1", limits=LIMITS)
    assert not res.ok
    assert res.error is not None
    assert res.error.type == "Error"
    assert sb.run("return 1", limits=LIMITS).ok


def test_same_code_same_fuel(sb: Sandbox) -> None:
    code = "let s = 0; for (let i = 0; i < 1000; i++) s += i; console.log(s); return s;"
    fuels = {sb.run(code, limits=LIMITS).fuel for _ in range(20)}
    assert len(fuels) == 1


def test_math_random_differs_and_seed_is_reported(sb: Sandbox) -> None:
    runs = [sb.run("return Math.random()", limits=LIMITS) for _ in range(5)]
    assert len({r.result_json for r in runs}) == 5
    assert len({r.random_seed for r in runs}) == 5


def test_explicit_seed_reproduces_math_random(sb: Sandbox) -> None:
    code = "return [Math.random(), Math.random()]"
    a = sb.run(code, limits=LIMITS, random_seed=12345)
    b = sb.run(code, limits=LIMITS, random_seed=12345)
    c = sb.run(code, limits=LIMITS, random_seed=54321)
    assert a.random_seed == 12345
    assert a.result_json == b.result_json != c.result_json


def test_trapped_or_rebuilt_instance_is_pristine(sb: Sandbox) -> None:
    lim = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=5_000_000)
    res = sb.run("globalThis.leak = 1; while (true) {}", limits=lim)
    assert res.error is not None
    assert res.error.type == "FuelExhaustedError"
    assert not res.rebuilt  # restored in place: out of fuel is not an engine fault
    assert result(sb, "return typeof leak") == "undefined"
    grow = sb.run("globalThis.big = new Array(300000).fill(1); return big.length", limits=LIMITS)
    assert grow.ok
    assert grow.rebuilt
    assert result(sb, "return typeof big") == "undefined"
