"""Hostile code against the modules and Worker globals: no way out, no state kept, limits hold.

The modules and globals are glue evaluated into the snapshot; these tests check that using
(or abusing) them reaches nothing of the host, leaves nothing for the next run, cannot widen
the allowed modules, and stays inside fuel, time and memory limits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandbox import Limits, Sandbox

ALL = Limits(
    timeout_ms=2000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000, modules=frozenset({"*"})
)
PATH_ONLY = Limits(timeout_ms=2000, fuel=2_000_000_000, modules=frozenset({"path"}))


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def ok(sb: Sandbox, code: str, limits: Limits = ALL) -> object:
    res = sb.run(code, limits=limits)
    assert res.ok, res.error
    return json.loads(res.result_json)


def test_module_state_does_not_survive_a_run(sb: Sandbox) -> None:
    taint = (
        "const p = require('path'), u = require('util'), c = require('crypto');"
        " p.join = () => 'owned'; p.sep = '\\\\'; u.inspect.defaultOptions.depth = 0;"
        " u.format = () => 'owned'; c.createHash = () => 'owned'; crypto.randomUUID = () => 'x';"
        " URL.prototype.toString = () => 'owned'; TextEncoder.prototype.encode = () => 'owned';"
        " globalThis.require = () => 'owned'; console.table = () => {}; Date.now = () => 0;"
        " setTimeout(() => {}, 1); return 1"
    )
    assert ok(sb, taint) == 1
    check = (
        "return [require('path').join('a', 'b'), require('path').sep,"
        " require('util').format('%d', 1), typeof require('crypto').createHash('md5'),"
        " crypto.randomUUID().length, String(new URL('http://a/')),"
        " new TextEncoder().encode('a').length,"
        " require('util').inspect({a: {b: {}}}), Date.now() > 1e12]"
    )
    assert ok(sb, check) == [
        "a/b",
        "/",
        "1",
        "object",
        36,
        "http://a/",
        1,
        "{ a: { b: {} } }",
        True,
    ]


def test_modules_cannot_be_widened_from_inside(sb: Sandbox) -> None:
    code = (
        "const found = [];"
        " const seen = new Set(); const walk = (o, d) => {"
        "  if (o === null || (typeof o !== 'object' && typeof o !== 'function')) return;"
        "  if (seen.has(o) || d > 4) return;"
        "  seen.add(o);"
        "  for (const k of Reflect.ownKeys(o)) { let v; try { v = o[k]; } catch { continue; }"
        "   if (v instanceof Int32Array || v instanceof ArrayBuffer) found.push(String(k));"
        "   walk(v, d + 1); } };"
        " walk(globalThis, 0); walk(require('path'), 0);"
        " for (const m of ['<codexec:require>', 'node:path']) walk(await import(m), 0);"
        " let crypto_ = 'blocked'; try { require('crypto'); crypto_ = 'reached'; } catch {}"
        " try { await import('crypto'); crypto_ = 'reached'; } catch {}"
        " const r = (await import('<codexec:require>')).require;"
        " try { r('util'); crypto_ = 'reached'; } catch {}"
        " return [found, crypto_]"
    )
    assert ok(sb, code, PATH_ONLY) == [[], "blocked"]


def test_patched_builtins_cannot_reach_the_caps_buffer(sb: Sandbox) -> None:
    code = (
        "const caught = [];"
        " for (const C of [Int32Array, Uint8Array, Object.getPrototypeOf(Int32Array)]) {"
        "  for (const k of Reflect.ownKeys(C.prototype)) {"
        "   const d = Object.getOwnPropertyDescriptor(C.prototype, k);"
        "   if (typeof d.value !== 'function') continue;"
        "   const orig = d.value;"
        "   C.prototype[k] = function (...a) { if (this instanceof Int32Array && this.length >= 20)"
        "     caught.push(String(k)); return orig.apply(this, a); }; } }"
        " const c = require('crypto'); c.randomBytes(100);"
        " c.createHash('sha256').update('x').digest('hex');"
        " crypto.getRandomValues(new Uint32Array(8)); new URL('http://a/?b=c').searchParams.sort();"
        " setTimeout(() => {}, 1); console.log(require('util').inspect(new Int32Array(3)));"
        " try { require('util') } catch {} return caught"
    )
    assert ok(sb, code) == []


def test_huge_hash_update_loop_is_stopped_by_fuel(sb: Sandbox) -> None:
    limits = Limits(timeout_ms=60_000, fuel=300_000_000, modules=frozenset({"crypto"}))
    code = (
        "const h = require('crypto').createHash('sha512'); const chunk = 'x'.repeat(1 << 16);"
        " for (;;) h.update(chunk);"
    )
    res = sb.run(code, limits=limits)
    assert res.error is not None
    assert res.error.type == "FuelExhaustedError"
    assert ok(sb, "return require('crypto').createHash('md5').update('').digest('hex')") == (
        "d41d8cd98f00b204e9800998ecf8427e"
    )


def test_huge_random_bytes_hit_the_memory_limit(sb: Sandbox) -> None:
    limits = Limits(
        timeout_ms=60_000, memory_bytes=8 * 1024 * 1024, fuel=10**11, modules=frozenset({"crypto"})
    )
    res = sb.run("return require('crypto').randomBytes(64 * 1024 * 1024).length", limits=limits)
    assert res.error is not None
    assert res.error.type == "MemoryLimitError"


def test_timers_cannot_outlive_the_run(sb: Sandbox) -> None:
    limits = Limits(timeout_ms=300, fuel=2_000_000_000)
    code = "globalThis.leak = 1; setInterval(() => { globalThis.leak++ }, 1); return 1"
    res = sb.run(code, limits=limits)
    assert res.error is not None
    assert res.error.type == "TimeoutError"
    assert ok(sb, "return [typeof leak, typeof globalThis.leak]") == ["undefined", "undefined"]
    assert ok(sb, "let n = 0; await new Promise(r => setTimeout(r, 5)); return ++n") == 1


def test_a_timer_flood_is_bounded(sb: Sandbox) -> None:
    limits = Limits(timeout_ms=2000, fuel=500_000_000)
    res = sb.run("for (;;) setTimeout(() => {}, 1e9);", limits=limits)
    assert res.error is not None
    assert res.error.type in ("FuelExhaustedError", "MemoryLimitError", "TimeoutError")


def test_inspect_and_clone_of_hostile_objects_stay_inside(sb: Sandbox) -> None:
    code = (
        "const util = require('util'); const out = [];"
        " const evil = new Proxy({}, { ownKeys() { throw new Error('trap') } });"
        " try { util.inspect(evil) } catch (e) { out.push(e.message) }"
        " const deep = []; let cur = deep;"
        " for (let i = 0; i < 1e5; i++) { cur[0] = []; cur = cur[0] }"
        " out.push(util.inspect(deep).length > 0);"
        " const getter = { get x() { return require('crypto').randomUUID() } };"
        " out.push(util.inspect(getter)); return out"
    )
    result = ok(sb, code)
    assert isinstance(result, list)
    assert result[0] == "trap"
    assert result[1] is True
    assert result[-1] == "{ x: [Getter] }"
    deep_clone = (
        "const deep = []; let cur = deep;"
        " for (let i = 0; i < 1e5; i++) { cur[0] = []; cur = cur[0] }"
        " return structuredClone(deep)"
    )
    res = sb.run(deep_clone, limits=ALL)
    assert res.error is not None
    assert res.error.type == "RangeError"
    assert ok(sb, "return 1 + 1") == 2


def test_url_parser_with_hostile_input(sb: Sandbox) -> None:
    code = (
        "const out = [];"
        " for (const s of ['http://' + 'a.'.repeat(20000) + 'com/',"
        "  'http://[' + ':'.repeat(5000) + ']/', 'http://x/' + '../'.repeat(20000),"
        "  'http://x/?' + '%'.repeat(50000), 'x:' + '\\u0000'.repeat(1000)]) {"
        "  try { out.push(new URL(s).href.length) } catch (e) { out.push(e.code) } }"
        " return out"
    )
    result = ok(sb, code, Limits(timeout_ms=5000, fuel=20_000_000_000))
    assert isinstance(result, list)
    assert len(result) == 5


def test_fetch_reaches_no_network(sb: Sandbox) -> None:
    code = (
        "const r = await Promise.allSettled([fetch('http://127.0.0.1:1/'), fetch('file:///etc/passwd'),"
        " fetch(new URL('https://example.com'))]); return r.map(x => [x.status, x.reason.name])"
    )
    assert ok(sb, code) == [["rejected", "NetworkDisabledError"]] * 3


def test_random_key_is_not_in_the_snapshot(sb: Sandbox) -> None:
    """Two runs never share crypto randomness, also across instances built from one image."""
    code = "return require('crypto').randomBytes(32).join()"
    values = {json.dumps(ok(sb, code)) for _ in range(20)}
    assert len(values) == 20


def test_reaching_a_global_through_a_computed_name_runs_once_more(sb: Sandbox) -> None:
    code = (
        "console.log('x');"
        " return [globalThis['req' + 'uire']('path').join('a', 'b'), Math.random()]"
    )
    first = sb.run(code, limits=ALL, random_seed=5)
    assert first.ok, first.error
    assert first.output == ("x",)  # the plain attempt's output is not kept
    again = sb.run(code, limits=ALL, random_seed=5)
    assert json.loads(first.result_json) == json.loads(again.result_json)
    assert json.loads(first.result_json)[0] == "a/b"


def test_a_second_run_gets_only_what_the_first_left(sb: Sandbox) -> None:
    spin = "try { globalThis['set' + 'Timeout'] } catch {} while (true) {}"
    res = sb.run(spin, limits=Limits(timeout_ms=300, fuel=10**12))
    assert res.error is not None
    assert res.error.type == "TimeoutError"
    assert res.wall_ms < 1500  # not two whole timeouts (generous hang guard)
    burn = "try { globalThis['set' + 'Timeout'] } catch {} for (;;) {}"
    res = sb.run(burn, limits=Limits(timeout_ms=60_000, fuel=200_000_000))
    assert res.error is not None
    assert res.error.type == "FuelExhaustedError"
    assert res.fuel <= 200_000_000 + 1_000_000


def test_glue_of_the_modules_shows_no_source_and_no_frames(sb: Sandbox) -> None:
    code = (
        "const u = require('util'), p = require('path'), c = require('crypto');"
        " const texts = [u.inspect, u.format, p.join, c.createHash, URL, TextDecoder,"
        "  structuredClone, setTimeout, fetch, console.table, crypto.subtle.digest].map(String);"
        " Error.prepareStackTrace = (e, s) => s.map(f => String(f.getFileName()));"
        " let files = [];"
        " await u.promisify(function (cb) { files.push(...new Error().stack); cb(null, 1); })();"
        " u.inspect({ [u.inspect.custom]() { files.push(...new Error().stack); return 'x'; } });"
        " await new Promise(r => setTimeout(() => { files.push(...new Error().stack); r(); }, 1));"
        " structuredClone({ get a() { files.push(...new Error().stack); return 1; } });"
        " Error.prepareStackTrace = undefined;"
        " return [texts, files]"
    )
    texts, files = ok(sb, code)  # type: ignore[misc]
    for text in texts:
        assert "[native code]" in text, text
        for word in ("caps", "enter(", "glueError", "normalizeString", "chacha"):
            assert word not in text, text
    assert files
    assert "<prelude>" not in files
