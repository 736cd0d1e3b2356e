"""The dispatch-loop unrolling (sandbox/_unroll.py): same results, same fuel, half the checks.

A small interpreter written in WAT stands in for ``JS_CallInternal``: a dispatch loop whose
``br_table`` has 100+ entries back to the loop, cases that continue, one with a loop of its
own, one that leaves through an outer block (also straight from the table), and one that
falls off the end of the loop body (which then runs code a branch out of the loop skips).
Both modules run in wasmtime with fuel on; every input must give the same answer and, unless
the loop is left by falling off its body, the same fuel to the unit.
"""

from __future__ import annotations

import pytest
import wasmtime

from sandbox import _engine, _unroll
from sandbox._wasm import PatchError, sections

_CONTINUES = " ".join(["$dispatch"] * 110)

_WAT = f"""
(module
  (func $JS_CallInternal (export "run") (param $n i32) (param $seed i32) (result i32)
    (local $acc i32) (local $pc i32) (local $op i32) (local $j i32)
    (local.set $acc (local.get $seed))
    (block $exit
      (loop $dispatch
        (local.set $pc (i32.add (local.get $pc) (i32.const 1)))
        (br_if $exit (i32.gt_u (local.get $pc) (local.get $n)))
        (local.set $op (i32.rem_u (i32.add (local.get $pc) (local.get $acc)) (i32.const 120)))
        (block $fall
        (block $c3 (block $c2 (block $c1 (block $c0
          (br_table $c0 $c1 $c2 $c3 $fall {_CONTINUES} $exit $exit $exit $exit $exit $c0
            (local.get $op)))
          (local.set $acc (i32.add (local.get $acc) (i32.const 7)))
          (br $dispatch))
          (local.set $acc (i32.xor (i32.mul (local.get $acc) (i32.const 31)) (local.get $pc)))
          (br $dispatch))
          (local.set $j (i32.const 0))
          (block $done
            (loop $inner
              (br_if $done (i32.ge_u (local.get $j) (i32.and (local.get $acc) (i32.const 7))))
              (local.set $acc (i32.add (local.get $acc) (local.get $j)))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $inner)))
          (br $dispatch))
          (br_if $exit (i32.gt_u (local.get $acc) (i32.const 1000000)))
          (br $dispatch))
        (local.set $acc (i32.sub (local.get $acc) (i32.const 1)))
        (br_if $dispatch (i32.and (local.get $acc) (i32.const 1)))
        ;; an odd accumulator continues; an even one falls off the loop body and leaves it
      )
      ;; reached only by falling off the loop (a branch to $exit skips it)
      (local.set $acc (i32.add (local.get $acc) (i32.const 500000)))
    )
    (i32.add (local.get $acc) (i32.mul (local.get $pc) (i32.const 1000))))
)
"""


def _wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(_WAT))


def _runner(wasm: bytes) -> tuple[wasmtime.Store, wasmtime.Func]:
    config = wasmtime.Config()
    config.consume_fuel = True
    store = wasmtime.Store(wasmtime.Engine(config))
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    run = instance.exports(store)["run"]
    assert isinstance(run, wasmtime.Func)
    return store, run


def _call(store: wasmtime.Store, run: wasmtime.Func, n: int, seed: int) -> tuple[int, int]:
    store.set_fuel(10**9)
    answer = run(store, n, seed)
    assert isinstance(answer, int)
    return answer, 10**9 - store.get_fuel()


def test_unrolled_interpreter_gives_the_same_answers_and_fuel() -> None:
    original, unrolled = _wasm(), _unroll.unroll_dispatch(_wasm())
    assert len(unrolled) > len(original)
    a_store, a_run = _runner(original)
    b_store, b_run = _runner(unrolled)
    same_fuel = one_more = 0
    for n in range(0, 400, 7):
        for seed in (0, 1, 2, 3, 5, 8, 13, 99, 123_456, 999_999):
            want, want_fuel = _call(a_store, a_run, n, seed)
            got, got_fuel = _call(b_store, b_run, n, seed)
            assert got == want, (n, seed)
            # the only added instruction that costs fuel is the first copy's `br $exit`, run
            # once when the loop body falls off its end there
            assert got_fuel - want_fuel in (0, 1), (n, seed)
            same_fuel += got_fuel == want_fuel
            one_more += got_fuel == want_fuel + 1
    assert same_fuel > 100
    assert one_more > 0  # the fall-through exit was exercised


def test_the_pinned_reactor_unrolls_and_still_compiles() -> None:
    wasm, _ = _engine._read_wasm()
    unrolled = _unroll.unroll_dispatch(wasm)
    assert len(unrolled) - len(wasm) > 40_000  # a second copy of a ~50 KB loop body
    ids = [sid for sid, _ in sections(unrolled)]
    assert ids == [sid for sid, _ in sections(wasm)]
    wasmtime.Module.validate(wasmtime.Engine(), unrolled)


@pytest.mark.parametrize(
    "wat",
    [
        '(module (func (export "run")))',  # no function of that name
        "(module (func $JS_CallInternal (loop $l (br_if $l (i32.const 0)))))",  # too few
    ],
)
def test_modules_without_a_dispatch_loop_are_refused(wat: str) -> None:
    with pytest.raises(PatchError):
        _unroll.unroll_dispatch(bytes(wasmtime.wat2wasm(wat)))
