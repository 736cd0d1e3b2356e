"""The Worker globals: URL, text codecs, structuredClone, Web Crypto, timers, fetch, console.

Answers are compared with Node's for the same expressions (``tests/data/node_answers.json``,
made by ``tests/data/make_node_answers.js``); timers and the clock flag through runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import Limits, Sandbox
from tests.unit.node_answers import CASES, NODE, eval_cases

LIMITS = Limits(timeout_ms=3000, fuel=5_000_000_000, modules=frozenset({"*"}))
EVAL_CASES = eval_cases()

# Where codexec follows the WHATWG Encoding Standard (as Workers do) and Node 20 does not:
# Node decodes the label latin1 as ISO-8859-1, the standard (and Workers) as windows-1252.
KNOWN_DIFFERENCES = {
    "new TextDecoder('latin1').decode(new Uint8Array([0x41, 0x80, 0xe9, 0x9f, 0x81]))": (
        "A\u20ac\u00e9\u0178\u0081"
    ),
}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def ok(sb: Sandbox, code: str, context: object = None, limits: Limits = LIMITS) -> Any:
    res = sb.run(code, json.dumps(context or {}), limits=limits)
    assert res.ok, res.error
    return json.loads(res.result_json)


def test_globals_exist(sb: Sandbox) -> None:
    names = [
        "URL",
        "URLSearchParams",
        "TextEncoder",
        "TextDecoder",
        "atob",
        "btoa",
        "structuredClone",
        "crypto",
        "performance",
        "queueMicrotask",
        "setTimeout",
        "clearTimeout",
        "setInterval",
        "clearInterval",
        "fetch",
        "require",
    ]
    code = f"return {json.dumps(names)}.filter(n => typeof globalThis[n] === 'undefined')"
    assert ok(sb, code) == []
    code = (
        "return [typeof crypto.randomUUID, typeof crypto.getRandomValues,"
        " typeof crypto.subtle.digest, typeof performance.now, typeof console.table,"
        " typeof console.dir, Object.keys(globalThis).length]"
    )
    assert ok(sb, code) == ["function"] * 6 + [0]


def test_answers_match_node(sb: Sandbox) -> None:
    ours = ok(sb, EVAL_CASES, {"cases": CASES["globals"]})
    expected = {expr: NODE["cases"][expr] for expr in CASES["globals"]} | KNOWN_DIFFERENCES
    wrong = {
        expr: (ours.get(expr), want) for expr, want in expected.items() if ours.get(expr) != want
    }
    assert not wrong, json.dumps(wrong, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("method", ["table", "dir"])
def test_console_table_and_dir_print_like_node(sb: Sandbox, method: str) -> None:
    code = f"for (const args of context.calls) console.{method}(...args); return 1"
    res = sb.run(code, json.dumps({"calls": CASES[method]}), limits=LIMITS)
    assert res.ok, res.error
    assert list(res.output) == NODE[method]


SUBTLE = [
    ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        "SHA-384",
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7",
    ),
    (
        "SHA-512",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
]


@pytest.mark.parametrize(("name", "digest"), SUBTLE)
def test_subtle_digest(sb: Sandbox, name: str, digest: str) -> None:  # FIPS 180 "abc"
    code = (
        f"const p = crypto.subtle.digest({{name: '{name}'}}, new TextEncoder().encode('abc'));"
        " const buf = await p; return [p instanceof Promise, buf instanceof ArrayBuffer,"
        " Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, '0')).join('')]"
    )
    assert ok(sb, code) == [True, True, digest]


def test_subtle_digest_rejects_unknown_algorithms(sb: Sandbox) -> None:
    code = (
        "try { await crypto.subtle.digest('MD5', new Uint8Array(1)) } catch (e) { return e.name }"
    )
    assert ok(sb, code) == "NotSupportedError"


def test_fetch_rejects_clearly(sb: Sandbox) -> None:
    code = (
        "const p = fetch('https://example.com'); let e;"
        " try { await p } catch (x) { e = x } return [p instanceof Promise, e.name, e.message]"
    )
    is_promise, name, message = ok(sb, code)
    assert is_promise
    assert name == "NetworkDisabledError"
    assert "network" in message
    res = sb.run("return await fetch('http://x')", limits=LIMITS)
    assert res.error is not None
    assert res.error.type == "NetworkDisabledError"


# -- timers -------------------------------------------------------------------------------------


def test_timers_fire_in_order_of_due_time(sb: Sandbox) -> None:
    code = (
        "const out = [];"
        " setTimeout(() => out.push('b'), 30); setTimeout(() => out.push('a'), 10);"
        " const c = setTimeout(() => out.push('never'), 20); clearTimeout(c);"
        " setTimeout((x, y) => out.push(x + y), 0, 'c', 'd');"
        " queueMicrotask(() => out.push('micro'));"
        " await new Promise(r => setTimeout(r, 50)); return out"
    )
    assert ok(sb, code) == ["micro", "cd", "a", "b"]


def test_microtasks_run_between_timers(sb: Sandbox) -> None:
    code = (
        "const out = [];"
        " setTimeout(() => { out.push(1); Promise.resolve().then(() => out.push('m1')); }, 5);"
        " setTimeout(() => out.push(2), 5);"
        " await new Promise(r => setTimeout(r, 20)); return out"
    )
    assert ok(sb, code) == [1, "m1", 2]


def test_the_run_waits_for_timers_after_returning(sb: Sandbox) -> None:
    res = sb.run("setTimeout(() => console.log('later'), 20); return 1", limits=LIMITS)
    assert res.ok
    assert res.result_json == "1"
    assert res.output == ("later",)
    assert res.wall_ms >= 15


def test_set_interval_until_cleared(sb: Sandbox) -> None:
    code = (
        "let n = 0; await new Promise(r => { const id = setInterval(() => {"
        " if (++n === 3) { clearInterval(id); r(); } }, 5); }); return n"
    )
    assert ok(sb, code) == 3


def test_a_timer_past_the_deadline_is_a_timeout(sb: Sandbox) -> None:
    limits = Limits(timeout_ms=200, fuel=1_000_000_000)
    res = sb.run("console.log('before'); setTimeout(() => {}, 60000); return 1", limits=limits)
    assert res.error is not None
    assert res.error.type == "TimeoutError"
    assert res.output == ("before",)
    assert 150 <= res.wall_ms < 5000  # generous hang guard
    assert sb.run("return 2", limits=limits).result_json == "2"


def test_an_endless_interval_is_a_timeout(sb: Sandbox) -> None:
    limits = Limits(timeout_ms=200, fuel=1_000_000_000)
    res = sb.run("let n = 0; setInterval(() => n++, 1); return 1", limits=limits)
    assert res.error is not None
    assert res.error.type == "TimeoutError"


def test_an_exception_in_a_timer_fails_the_run(sb: Sandbox) -> None:
    res = sb.run("setTimeout(() => { throw new RangeError('late') }, 1); return 1", limits=LIMITS)
    assert res.error is not None
    assert (res.error.type, res.error.message) == ("RangeError", "late")
    assert "<prelude>" not in res.error.stack


def test_timer_arguments_are_checked(sb: Sandbox) -> None:
    code = "try { setTimeout('code string', 1) } catch (e) { return [e.name, e.code] }"
    assert ok(sb, code) == ["TypeError", "ERR_INVALID_ARG_TYPE"]


# -- the clock flag -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reads"),
    [
        ("return 1", False),
        ("return new Date(0).getTime()", False),
        ("return Date.UTC(2020, 1)", False),
        ("return JSON.stringify({a: 1})", False),
        ("return Date.now() > 0", True),
        ("return new Date().getFullYear() > 2000", True),
        ("return typeof Date()", True),
        ("return performance.now() >= 0", True),
        ("setTimeout(() => {}, 0); return 1", True),
        ("console.log(Date.now()); return 1", True),
        ("return Reflect.construct(Date, []) instanceof Date", True),
    ],
)
def test_read_clock(sb: Sandbox, code: str, reads: bool) -> None:
    res = sb.run(code, limits=LIMITS)
    assert res.ok, res.error
    assert res.read_clock is reads


def test_date_still_behaves_like_date(sb: Sandbox) -> None:
    code = (
        "class D extends Date {} const d = new D(5);"
        " return [d instanceof Date, d.getTime(), new Date(0).constructor === Date,"
        " Date.name, Date.length, typeof Date.parse('2020-01-01'), Object.keys(Date).length]"
    )
    assert ok(sb, code) == [True, 5, True, "Date", 7, "number", 0]


def test_timers_share_the_runs_timeout(sb: Sandbox) -> None:
    limits = Limits(timeout_ms=300, fuel=10**11)
    code = (
        "const t = Date.now(); while (Date.now() - t < 200) {}"
        " await new Promise(r => setTimeout(r, 250)); return 1"
    )
    res = sb.run(code, limits=limits)
    assert res.error is not None
    assert res.error.type == "TimeoutError"
    assert res.wall_ms < 2000  # generous hang guard
