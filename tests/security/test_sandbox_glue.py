"""The host's glue (the prelude) is out of reach of user code.

No global name leads to it, stack inspection (``Error.prepareStackTrace`` call sites,
``Error.captureStackTrace``, the default ``stack`` text) shows neither its frames nor its
source, overriding builtins does not change how output and results are captured, and
nothing of any of this survives into the next run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandbox import Limits, Sandbox
from sandbox._prelude import PRELUDE

LIMITS = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000)
# words of the prelude's source that user code has no business seeing
PRELUDE_WORDS = ("limitHit", "okPlain", "bigintReplacer", "caps[", "userHook", "<prelude>")
SITES = "(e, s) => s.map(f => String(f.getFunction && f.getFunction()) + ' @ ' + f.getFileName())"


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


def ok(sb: Sandbox, code: str) -> object:
    res = sb.run(code, limits=LIMITS)
    assert res.ok, res.error
    return json.loads(res.result_json)


def assert_no_glue(text: str) -> None:
    for word in PRELUDE_WORDS:
        assert word in PRELUDE or word == "<prelude>"
        assert word not in text, text


def pristine(sb: Sandbox) -> list[object]:
    return [
        ok(
            sb,
            "return [typeof Error.prepareStackTrace, Object.getOwnPropertyNames(globalThis).length,"
            " JSON.stringify({a: [1]}), [1, 2].join('-'), typeof ({}).toJSON]",
        ),
        sb.run("console.log('seen', {b: 2}); return 7", limits=LIMITS).output,
    ]


@pytest.fixture(scope="module")
def baseline(sb: Sandbox) -> list[object]:
    return pristine(sb)


def test_no_global_leads_to_the_glue(sb: Sandbox) -> None:
    assert ok(sb, "return typeof __codexec_run") == "undefined"
    names = ok(sb, "return Reflect.ownKeys(globalThis).map(String)")
    assert isinstance(names, list)
    assert not [n for n in names if n.startswith("__codexec")]
    res = sb.run("return __codexec_run(1e9, 1e9, 1e9, async () => 1)", limits=LIMITS)
    assert res.error is not None
    assert res.error.type == "ReferenceError"


def test_glue_functions_do_not_show_their_source(sb: Sandbox) -> None:
    text = ok(
        sb,
        "const d = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');"
        " return [String(console.log), String(d.get), String(d.set)].join('\\n')",
    )
    assert isinstance(text, str)
    assert text.count("[native code]") == 3
    assert_no_glue(text)


def test_call_sites_of_the_code_itself(sb: Sandbox) -> None:
    text = json.dumps(ok(sb, f"Error.prepareStackTrace = {SITES}; return new Error('x').stack"))
    assert_no_glue(text)
    assert "<code>" in text


@pytest.mark.parametrize(
    "code",
    [
        # inside console.log: toJSON, toString, getters and the output limit error
        "let got; console.log({toJSON() { got = new Error('t').stack; return 1 }}); return got",
        "let got; console.log({toJSON() { return undefined },"
        " toString() { got = new Error('t').stack; return '' }}); return got",
        "let got; const e = new Error('x');"
        " Object.defineProperty(e, 'message', {get() { got = new Error('g').stack; return 'm' }});"
        " console.log(e); return got",
        "const o = {}; console.log({toJSON() { Error.captureStackTrace(o); return 1 }});"
        " return o.stack",
    ],
)
@pytest.mark.parametrize("hook", ["", f"Error.prepareStackTrace = {SITES};"])
def test_stacks_taken_inside_console_log(
    sb: Sandbox, baseline: list[object], hook: str, code: str
) -> None:
    got = ok(sb, hook + code)
    assert got is not None
    text = json.dumps(got)
    assert_no_glue(text)
    assert "<code>" in text
    assert pristine(sb) == baseline


@pytest.mark.parametrize("hook", ["", f"Error.prepareStackTrace = {SITES};"])
def test_stacks_taken_while_the_result_is_reported(
    sb: Sandbox, baseline: list[object], hook: str
) -> None:
    """finish() serializes the result after the code ended: its frame is hidden too."""
    res = sb.run(
        hook + "return {toJSON() { const s = new Error('r').stack;"
        " return Array.isArray(s) ? s.join('|') : s }}",
        limits=LIMITS,
    )
    assert res.ok, res.error
    text = json.loads(res.result_json)
    assert isinstance(text, str)
    assert_no_glue(text)
    assert "<code>" in text
    assert pristine(sb) == baseline


def test_output_limit_error_stack(sb: Sandbox) -> None:
    small = Limits(timeout_ms=1000, max_output_lines=1)
    res = sb.run(
        f"Error.prepareStackTrace = {SITES}; console.log(1);"
        " try { console.log(2) } catch (e) { return e.stack }",
        limits=small,
    )
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    got = sb.run(
        "console.log(1); try { console.log(2) } catch (e) { console.log(e.stack) }", limits=small
    )
    assert_no_glue(json.dumps(got.output))


def test_a_hook_set_inside_console_log_is_the_codes_hook_afterwards(sb: Sandbox) -> None:
    code = """
      console.log({toJSON() { Error.prepareStackTrace = () => 'mine'; return 1 }});
      return [new Error().stack, typeof Error.prepareStackTrace]
    """
    assert ok(sb, code) == ["mine", "function"]


@pytest.mark.parametrize(
    ("code", "result", "output"),
    [
        ("console.log('a'); console.log = () => {}; console.log('b'); return 1", 1, ["a"]),
        (
            "JSON.stringify = () => 'hacked'; console.log({a: 1}); return {a: [1]}",
            {"a": [1]},
            ['{"a":1}'],
        ),
        (
            "Array.prototype.join = () => 'j'; console.log([1, 2], 'x'); return [1, 2]",
            [1, 2],
            ["[1,2] x"],
        ),
        (
            "String.prototype.concat = () => 's'; Function.prototype.toString = () => 'f';"
            " console.log('t', 2); return 't'",
            "t",
            ["t 2"],
        ),
        (
            "Reflect.apply = () => 0; Int32Array.prototype[0] = 9; console.log(1); return 2",
            2,
            ["1"],
        ),
        (
            "Object.defineProperty(Error, 'prepareStackTrace', {value: 1}); console.log(1);"
            " return 2",
            2,
            ["1"],
        ),
        # Object.prototype.toJSON is JSON semantics: it changes this run's own output only
        (
            "Object.prototype.toJSON = function () { return 'own' }; console.log({a: 1});"
            " return {a: 1}",
            "own",
            ['"own"'],
        ),
    ],
)
def test_overridden_builtins_do_not_break_capture(
    sb: Sandbox, baseline: list[object], code: str, result: object, output: list[str]
) -> None:
    res = sb.run(code, limits=LIMITS)
    assert res.ok, res.error
    assert json.loads(res.result_json) == result
    assert list(res.output) == output
    assert pristine(sb) == baseline


def test_output_caps_cannot_be_raised(sb: Sandbox) -> None:
    small = Limits(timeout_ms=1000, max_output_lines=2)
    res = sb.run(
        "for (const k of Reflect.ownKeys(globalThis)) { try { globalThis[k](1e9, 1e9, 1e9,"
        " async () => 0) } catch {} } for (let i = 0; i < 5; i++) console.log(i); return 1",
        limits=small,
    )
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    assert res.output == ("0", "1")


def test_wrapper_breakout_reaches_nothing(sb: Sandbox, baseline: list[object]) -> None:
    res = sb.run(
        "return 1 })(); globalThis.t = [typeof this, String(this)]; (async function () {",
        limits=LIMITS,
    )
    assert res.ok, res.error
    assert ok(sb, "return typeof t") == "undefined"
    got = sb.run(
        "})(); console.log(this === globalThis, typeof this.console); (async function () {",
        limits=LIMITS,
    )
    assert got.ok, got.error
    assert got.output == ("true object",)
    assert pristine(sb) == baseline
