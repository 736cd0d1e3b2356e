"""The per-run fast paths give the same answers as the slow ones and keep each run pristine.

Covered: the job queue read from ``JSRuntime.job_list`` in memory (vs one
``JS_ExecutePendingJob`` call until it returns 0), a promise already settled after the eval
(no ``await``) vs one that needs jobs, ``finish`` reached through ``ToString`` vs called with
the exception, the number shortcut in ``finish``, the partial reset of the source buffer, and
linear memory that never moves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandbox import Limits, Result, Sandbox, snapshot
from sandbox._engine import CONFIG
from sandbox.execution import Instance

LIMITS = Limits(timeout_ms=1000, memory_bytes=32 * 1024 * 1024, fuel=2_000_000_000)

SNIPPETS = [
    "const x = 10; const y = 20; return x + y;",
    "await null; const x = 10; const y = 20; return x + y;",
    "return {a: [1, 'two', null], b: 'x'}",
    "await Promise.resolve(); return {a: [1, 'two', null], b: 'x'}",
    "Promise.resolve().then(() => console.log('late')); console.log('early'); return 1",
    "const o = {n: 1}; Promise.resolve().then(() => { o.n = 2 }); return o",
    "const o = {n: 1}; queueMicrotask(() => { o.n = 3 }); await null; return o",
    "return {then(resolve) { resolve(7) }}",
    "throw new TypeError('sync')",
    "await null; throw new TypeError('async')",
    "return Promise.reject(new RangeError('rejected'))",
    "await new Promise(() => {}); return 1",
    "return {then() {}}",
    "return }{;",
    "console.log('a', {b: 1}); return undefined",
    "return 10n",
    "let s = 0; for (let i = 0; i < 1000; i++) s += i; return s",
]
NUMBERS = ["-0", "NaN", "Infinity", "-Infinity", "1e21", "0.1 + 0.2", "2 ** 53 + 2", "-1.5e-7"]


def _same(a: Result, b: Result) -> None:
    assert (a.ok, a.result_json, a.output, a.error) == (b.ok, b.result_json, b.output, b.error)


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
        yield box


@pytest.fixture(scope="module")
def sb_no_job_list(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sandbox]:
    """A sandbox whose job queue is drained by calls only (the fallback)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(snapshot, "find_job_list", lambda guest, template: None)
    try:
        with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as box:
            yield box
    finally:
        patch.undo()


def test_job_list_is_found(sb: Sandbox, sb_no_job_list: Sandbox) -> None:
    template = sb._template
    assert template.job_list is not None
    assert template.rt <= template.job_list < template.rt + 1024
    assert sb_no_job_list._template.job_list is None


@pytest.mark.parametrize("code", SNIPPETS)
def test_job_queue_in_memory_matches_the_call_loop(
    sb: Sandbox, sb_no_job_list: Sandbox, code: str
) -> None:
    fast = sb.run(code, limits=LIMITS, random_seed=3)
    slow = sb_no_job_list.run(code, limits=LIMITS, random_seed=3)
    _same(fast, slow)
    assert sb.run(code, limits=LIMITS, random_seed=3).fuel == fast.fuel  # still deterministic


@pytest.mark.parametrize(
    ("settled", "awaiting"),
    [
        ("return {a: 1, b: [2]}", "await null; return {a: 1, b: [2]}"),
        ("return 'text'", "return await Promise.resolve('text')"),
        ("console.log('x'); return 5", "await 0; console.log('x'); return 5"),
        ("throw new Error('e')", "await null; throw new Error('e')"),
    ],
)
def test_settled_promise_and_real_await_agree(sb: Sandbox, settled: str, awaiting: str) -> None:
    a = sb.run(settled, limits=LIMITS)
    b = sb.run(awaiting, limits=LIMITS)
    assert (a.ok, a.result_json, a.output) == (b.ok, b.result_json, b.output)
    assert (a.error is None) == (b.error is None)
    if a.error is not None and b.error is not None:
        assert (a.error.type, a.error.message) == (b.error.type, b.error.message)


def test_jobs_queued_after_return_still_run(sb: Sandbox) -> None:
    res = sb.run(
        "Promise.resolve().then(() => console.log('job 1'))"
        ".then(() => console.log('job 2')); return 1",
        limits=LIMITS,
    )
    assert res.ok
    assert res.output == ("job 1", "job 2")


@pytest.mark.parametrize("expr", NUMBERS)
def test_number_results_are_json_stringify(sb: Sandbox, expr: str) -> None:
    direct = sb.run(f"return {expr}", limits=LIMITS)
    reference = sb.run(f"return JSON.stringify({expr})", limits=LIMITS)
    assert direct.ok
    assert reference.ok
    assert direct.result_json == json.loads(reference.result_json)


def test_finish_is_not_reachable_or_confused_by_code(sb: Sandbox) -> None:
    code = """
      Function.prototype[Symbol.toPrimitive] = () => 'hijacked';
      Object.defineProperty(Function.prototype, 'call', {value: () => 'no'});
      return String(function f() {}).length > 0
    """
    res = sb.run(code, limits=LIMITS)
    assert res.ok
    assert res.result_json == "true"
    assert sb.run("return 1", limits=LIMITS).result_json == "1"


def _instance_memory_is_image(sb: Sandbox) -> None:
    """The last-used instance of each pool (plain and full snapshot) is its image again, with
    the stack pointer and the stack guard's globals re-armed."""
    for pool in (sb._plain_pool, sb._pool):
        instance: Instance = pool.acquire()
        try:
            guest, template = instance.guest, instance.template
            assert guest.read(0, template.size) == template.image
            assert guest.get_global("codexec_sp") & 0xFFFFFFFF == template.stack_top
            assert guest.get_global("codexec_stack_low") & 0xFFFFFFFF == template.stack_top
            assert guest.get_global("codexec_stack_overflow") == 0
        finally:
            pool.release(instance, False)


@pytest.mark.parametrize(
    ("code", "context"),
    [
        ("// " + "x" * 20_000 + "\nreturn 1", "{}"),
        ("return 2", "{}"),
        ("return context.n + 1", '{"n": 41}'),
        ("console.log('out'); await null; return [1, 2, 3]", "{}"),
        ("function f(n) { return n ? f(n - 1) + 1 : 0 } return f(500)", "{}"),
        ("return }{;", "{}"),
        ("throw null", "{}"),
    ],
)
def test_memory_equals_the_image_after_each_run(sb: Sandbox, code: str, context: str) -> None:
    """The reset copies back only some spans; together they must restore every byte."""
    res = sb.run(code, context, LIMITS)
    assert not res.rebuilt
    _instance_memory_is_image(sb)


DEEP = "function f(n) { return n ? f(n - 1) + 1 : 0 }"


@pytest.mark.parametrize(
    ("code", "limits", "error"),
    [
        ("let s = 0; for (;;) s++", Limits(timeout_ms=1000, fuel=3_000_000), "FuelExhaustedError"),
        (  # the trap comes deep in the stack: its frames must be copied back too
            DEEP + " for (;;) f(400)",
            Limits(timeout_ms=1000, fuel=20_000_000),
            "FuelExhaustedError",
        ),
        ("console.log('x'); for (;;) {}", Limits(timeout_ms=50, fuel=10**12), "TimeoutError"),
        ("function g() { return g() + 1 } return g()", LIMITS, "RangeError"),
        (  # the full snapshot (it mentions a Worker global)
            "const e = new TextEncoder(); for (;;) e.encode('x')",
            Limits(timeout_ms=1000, fuel=5_000_000),
            "FuelExhaustedError",
        ),
    ],
)
def test_trapped_instance_is_restored_in_place(
    sb: Sandbox, code: str, limits: Limits, error: str | None
) -> None:
    """A run stopped by its fuel, its deadline or the stack guard leaves its instance in the
    pool, byte for byte its image again (no rebuild), and the next run sees nothing of it."""
    res = sb.run("globalThis.leak = 1; " + code, "{}", limits)
    assert res.error is not None
    assert error is None or res.error.type == error, res.error
    assert not res.rebuilt
    _instance_memory_is_image(sb)
    assert sb.run("return [typeof leak, 6 * 7]", "{}", LIMITS).result_json == '["undefined",42]'
    assert sb.run(DEEP + " return f(400)", "{}", LIMITS).result_json == "400"


def test_code_larger_than_the_source_buffer(sb: Sandbox) -> None:
    big = "// " + "y" * (snapshot.SOURCE_CAPACITY + 10) + "\nreturn 3"
    lim = Limits(timeout_ms=1000, max_code_bytes=2 * snapshot.SOURCE_CAPACITY)
    assert sb.run(big, limits=lim).result_json == "3"
    assert sb.run("return 4", limits=LIMITS).result_json == "4"


def test_linear_memory_never_moves(sb: Sandbox) -> None:
    assert ("memory_may_move", False) in CONFIG
    instance: Instance = sb._pool.acquire()
    try:
        guest = instance.guest
        before = guest.base()
        guest.grow_to(guest.size() + 64 * 65536)
        assert guest.base() == before
    finally:
        sb._pool.release(instance, True)
    assert sb.run("return 5", limits=LIMITS).result_json == "5"


def test_limits_change_between_runs(sb: Sandbox) -> None:
    small = Limits(timeout_ms=1000, max_output_lines=1)
    res = sb.run("console.log(1); console.log(2); return 1", limits=small)
    assert res.error is not None
    assert res.error.type == "OutputLimitError"
    ok = sb.run("console.log(1); console.log(2); return 1", limits=LIMITS)
    assert ok.ok
    assert ok.output == ("1", "2")


def test_stack_pointer_is_rearmed_even_if_the_postmortem_trapped(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The postmortem (reading the output of a trapped run) can itself run out of its fuel,
    leaving the stack pointer wherever it stopped (and the guard's flag, had the guard
    tripped): the restored instance must keep neither."""

    def trapped_postmortem(self: Instance, timeout_ticks: int) -> None:
        self.guest.set_global("codexec_sp", self.template.stack_top - 4096)
        self.guest.set_global("codexec_stack_overflow", 1)

    monkeypatch.setattr(Instance, "_postmortem", trapped_postmortem)
    res = sb.run("for (;;) {}", "{}", Limits(timeout_ms=1000, fuel=3_000_000))
    assert res.error is not None
    assert res.error.type == "FuelExhaustedError"
    assert not res.rebuilt
    monkeypatch.undo()
    _instance_memory_is_image(sb)
