"""``Sandbox.run(on_output=..., stop=...)``: lines while the code runs, same measurements."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sandbox import Limits, Sandbox
from sandbox._stream_instance import STOPPED

CODES = [
    "console.log('a'); return 1;",
    "console.log('x', {y: [1, 2]}, 3n, null); console.error(new TypeError('t').name); return 'r';",
    "for (let i = 0; i < 200; i++) console.log('\\u00e9\\u4e2d'.repeat(i % 7), i); return [1];",
    "console.log('lone \\ud800', 'multi\\nline'); throw new RangeError('no');",
    "const o = {toJSON() { console.log('from finish'); return 5; }}; return o;",
    "console.log('before'); await null; console.log('after'); return 2;",
]


@pytest.mark.parametrize("code", CODES)
def test_streamed_run_equals_the_plain_run(sb: Sandbox, code: str) -> None:
    lines: list[str] = []
    streamed = sb.run(code, random_seed=7, on_output=lines.append)
    plain = sb.run(code, random_seed=7)
    assert tuple(lines) == plain.output == streamed.output
    assert streamed.fuel == plain.fuel  # billed the same: print()'s cost is given back
    assert (streamed.ok, streamed.result_json, streamed.error) == (
        plain.ok,
        plain.result_json,
        plain.error,
    )
    assert streamed.peak_memory == plain.peak_memory


def test_clock_reads_of_the_code_still_work(sb: Sandbox) -> None:
    lines: list[str] = []
    code = "const a = Date.now(); console.log('t'); const b = performance.now(); return [a, b];"
    result = sb.run(code, on_output=lines.append)
    a, b = json.loads(result.result_json)
    assert a > 0
    assert b >= 0
    assert lines == ["t"]


def test_lines_are_handed_over_while_the_code_runs(sb: Sandbox) -> None:
    seen: list[tuple[str, bool]] = []
    done = threading.Event()
    code = "console.log('early'); { const t = Date.now(); while (Date.now() - t < 300) {} }"
    sb.run(code, on_output=lambda line: seen.append((line, done.is_set())))
    done.set()
    assert seen == [("early", False)]


def test_timeout_and_output_limit_keep_what_was_streamed(sb: Sandbox) -> None:
    lines: list[str] = []
    timed_out = sb.run(
        "console.log('1'); console.log('2'); while (true) {}",
        limits=Limits(timeout_ms=100),
        on_output=lines.append,
    )
    assert timed_out.error is not None
    assert timed_out.error.type == "TimeoutError"
    assert lines == ["1", "2"] == list(timed_out.output)
    capped: list[str] = []
    over = sb.run(
        "for (let i = 0; i < 50; i++) console.log('line' + i);",
        limits=Limits(max_output_lines=5),
        on_output=capped.append,
    )
    assert over.error is not None
    assert over.error.type == "OutputLimitError"
    assert capped == list(over.output) == [f"line{i}" for i in range(5)]


def test_stop_ends_the_run_at_the_next_tick(sb: Sandbox) -> None:
    stop = threading.Event()
    lines: list[str] = []
    timer = threading.Timer(0.1, stop.set)
    timer.start()
    started = time.monotonic()
    result = sb.run(
        "console.log('spinning'); while (true) {}",
        limits=Limits(timeout_ms=10_000),
        on_output=lines.append,
        stop=stop,
    )
    assert time.monotonic() - started < 5  # hang guard (the timeout is 10 s)
    assert result.error is not None
    assert result.error.type == STOPPED
    assert lines == ["spinning"]
    assert result.fuel > 0
    assert sb.run("return 1 + 1").result_json == "2"


def test_print_is_not_reachable_from_code(sb: Sandbox) -> None:
    code = "return [typeof print, Object.getOwnPropertyNames(globalThis).includes('print')]"
    for result in (sb.run(code), sb.run(code, on_output=lambda _: None)):
        assert result.result_json == '["undefined",false]'


def test_a_failing_callback_does_not_break_the_run(sb: Sandbox) -> None:
    def boom(line: str) -> None:
        raise RuntimeError(line)

    result = sb.run("console.log('a'); console.log('b'); return 3", on_output=boom)
    assert result.ok
    assert result.output == ("a", "b")


def test_a_run_moved_to_the_full_snapshot_sends_each_line_once(sb: Sandbox) -> None:
    # No module word in the text, so it starts in the plain snapshot and is run again.
    code = (
        "console.log('before'); const name = 'req' + 'uire';"
        "const p = globalThis[name]('pa' + 'th'); console.log('after', p.join('a', 'b'));"
        "return 1;"
    )
    lines: list[str] = []
    limits = Limits(modules=frozenset({"path"}))
    streamed = sb.run(code, limits=limits, random_seed=3, on_output=lines.append)
    plain = sb.run(code, limits=limits, random_seed=3)
    assert plain.output == ("before", "after a/b")
    assert lines == list(plain.output) == list(streamed.output)
    assert streamed.fuel == plain.fuel
    assert streamed.peak_memory == plain.peak_memory
