"""Calls into one wasm instance: the fast private-``_ffi`` path and the public-API fallback.

This is the only module that touches ``wasmtime._ffi`` (streamed runs also register an epoch
callback through ``wasmtime._bindings``, in ``_stream_instance``). The fast path looks up just the
exports it needs (``wasmtime_instance_export_get``; the public ``Instance.exports`` wraps all
300 of them, ~3 ms per instance) and calls them with ``wasmtime_func_call_unchecked`` and a
preallocated ``ValRaw`` buffer. The C functions are bound through ctypes prototypes of its own
that take plain integer addresses (no per-call ``byref``/pointer wrapping), so a wasm call
costs ~1 us of Python instead of 9-30 us; fuel, epoch deadline, memory size and the stack
guard's globals go the same way. The signatures (``_exports.SIGNATURES``) are trusted, so
they are checked against the module's own export types (``_exports.check_module``) before
binding. The caller self-tests the fast path at start-up and uses ``bind(..., fast=False)``
if that fails.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import c_int32, c_int64, c_size_t, c_uint64, c_void_p
from typing import Any, cast

import wasmtime

from sandbox._exports import GLOBALS, I32, SIGNATURES, Exports, WasmFunc


def bind(store: wasmtime.Store, instance: wasmtime.Instance, fast: bool) -> Exports:
    """Bind the needed exports of ``instance``; ``fast`` selects the private call path."""
    if fast:
        return _bind_fast(store, instance)
    exports = instance.exports(store)
    memory = exports["memory"]
    if not isinstance(memory, wasmtime.Memory):
        raise TypeError("export memory is not a memory")
    funcs: dict[str, WasmFunc] = {}
    for name in SIGNATURES:
        func = exports[name]
        funcs[name] = lambda *args, _f=func: _f(store, *args)
    globals_: dict[str, wasmtime.Global] = {}
    for name in GLOBALS:
        global_ = exports[name]
        if not isinstance(global_, wasmtime.Global):
            raise TypeError(f"export {name} is not a global")
        globals_[name] = global_

    def get_global(name: str) -> int:
        return int(globals_[name].value(store))

    def set_global(name: str, value: int) -> None:
        globals_[name].set_value(store, wasmtime.Val.i32(value))

    return Exports(store, memory, funcs, get_global, set_global, fast=False)


class _Raw:
    """The C API functions of the fast path, as prototypes taking integer addresses."""

    def __init__(self, dll: Any) -> None:
        # Only the wasm call (which may run user code for seconds) releases the GIL. The
        # store and memory accessors take microseconds and keep it: under load every GIL
        # release lets the event-loop thread take the GIL, and getting it back can wait
        # for a whole switch interval.
        def proto(name: str, restype: Any, *argtypes: Any, release_gil: bool = False) -> Any:
            kind = ctypes.CFUNCTYPE if release_gil else ctypes.PYFUNCTYPE
            return kind(restype, *argtypes)((name, dll))

        p = c_void_p
        self.call = proto("wasmtime_func_call_unchecked", p, p, p, p, c_size_t, p, release_gil=True)
        self.set_fuel = proto("wasmtime_context_set_fuel", p, p, c_uint64)
        self.get_fuel = proto("wasmtime_context_get_fuel", p, p, p)
        self.set_deadline = proto("wasmtime_context_set_epoch_deadline", None, p, c_uint64)
        self.data_size = proto("wasmtime_memory_data_size", c_size_t, p, p)
        self.data_ptr = proto("wasmtime_memory_data", p, p, p)
        self.global_get = proto("wasmtime_global_get", None, p, p, p)
        self.global_set = proto("wasmtime_global_set", p, p, p, p)
        # bool wasmtime_instance_export_get(context, instance, name, name_len, item*)
        self.export_get = proto(
            "wasmtime_instance_export_get", ctypes.c_bool, p, p, ctypes.c_char_p, c_size_t, p
        )


_RAW: list[_Raw] = []


def _invoker(call: Any, ctx: int, ref: int, n_params: int, result: str | None) -> WasmFunc:
    """A Python function calling one export with ``n_params`` arguments (i32/i64 as ints)."""
    from wasmtime import _ffi as ffi
    from wasmtime._trap import Trap

    slots = max(n_params, 1)
    if ctypes.sizeof(ffi.wasmtime_val_raw_t) != 16:
        raise TypeError("unexpected ValRaw size")
    raw = (c_int64 * (2 * slots))()  # one 16-byte ValRaw per slot; values in the low bytes
    out: Any = (c_int32 * (4 * slots)).from_buffer(raw) if result == I32 else raw
    trap = c_void_p()
    buf, trap_addr = ctypes.addressof(raw), ctypes.addressof(trap)

    def fail(error: int | None) -> None:
        if error:
            raise wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
            )
        caught, trap.value = cast(int, trap.value), None
        raise Trap._from_ptr(ctypes.cast(caught, ctypes.POINTER(ffi.wasm_trap_t)))

    def f0() -> Any:
        if (error := call(ctx, ref, buf, slots, trap_addr)) or trap.value:
            fail(error)
        return out[0]

    def f1(a: int) -> Any:
        raw[0] = a
        if (error := call(ctx, ref, buf, slots, trap_addr)) or trap.value:
            fail(error)
        return out[0]

    def f2(a: int, b: int) -> Any:
        raw[0], raw[2] = a, b
        if (error := call(ctx, ref, buf, slots, trap_addr)) or trap.value:
            fail(error)
        return out[0]

    def f3(a: int, b: int, c: int) -> Any:
        raw[0], raw[2], raw[4] = a, b, c
        if (error := call(ctx, ref, buf, slots, trap_addr)) or trap.value:
            fail(error)
        return out[0]

    def f4(a: int, b: int, c: int, d: int) -> Any:
        raw[0], raw[2], raw[4], raw[6] = a, b, c, d
        if (error := call(ctx, ref, buf, slots, trap_addr)) or trap.value:
            fail(error)
        return out[0]

    def f5(a: int, b: int, c: int, d: int, e: int) -> Any:
        raw[0], raw[2], raw[4], raw[6], raw[8] = a, b, c, d, e
        if (error := call(ctx, ref, buf, slots, trap_addr)) or trap.value:
            fail(error)
        return out[0]

    by_arity: dict[int, WasmFunc] = {0: f0, 1: f1, 2: f2, 3: f3, 4: f4, 5: f5}
    if n_params not in by_arity:
        raise TypeError(f"no fast caller for {n_params} parameters")
    invoke = by_arity[n_params]
    invoke.__dict__["keepalive"] = (raw, out, trap)
    return invoke


def _bind_fast(store: wasmtime.Store, instance: wasmtime.Instance) -> Exports:
    from wasmtime import _ffi as ffi

    if not _RAW:
        _RAW.append(_Raw(ffi.dll))
    api = _RAW[0]
    context = store._context()
    ctx = cast(int, ctypes.cast(context, c_void_p).value)
    instance_addr = ctypes.addressof(instance._instance)
    keep: list[Any] = []

    def lookup(name: str, kind: int) -> Any:
        item = ffi.wasmtime_extern_t()
        raw = name.encode()
        found = api.export_get(ctx, instance_addr, raw, len(raw), ctypes.addressof(item))
        if not found or cast(int, item.kind) != kind:
            raise KeyError(name)
        keep.append(item)
        return item

    def address(struct: Any) -> int:
        return ctypes.addressof(struct)

    funcs: dict[str, WasmFunc] = {}
    for name, (params, result) in SIGNATURES.items():
        ref = address(lookup(name, ffi.WASMTIME_EXTERN_FUNC.value).of.func)
        funcs[name] = _invoker(api.call, ctx, ref, len(params), result)
    mem_item = lookup("memory", ffi.WASMTIME_EXTERN_MEMORY.value)
    memory = wasmtime.Memory._from_raw(mem_item.of.memory)
    mem_ref = address(mem_item.of.memory)
    refs = {
        name: address(lookup(name, ffi.WASMTIME_EXTERN_GLOBAL.value).of.global_) for name in GLOBALS
    }
    cell = ffi.wasmtime_val_t()
    cell.kind = cast(Any, ffi.WASMTIME_I32.value)
    cell_addr = address(cell)
    value = c_int32.from_address(cell_addr + ffi.wasmtime_val_t.of.offset)
    fuel = c_uint64()
    fuel_addr = address(fuel)
    keep += [cell, value, fuel]

    def check(error: int | None) -> None:
        if error:
            raise wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
            )

    def global_getter(name: str) -> Callable[[], int]:
        ref, raw_get = refs[name], api.global_get

        def get() -> int:
            raw_get(ctx, ref, cell_addr)
            return value.value

        return get

    def global_setter(name: str) -> Callable[[int], None]:
        ref, raw_set, i32 = refs[name], api.global_set, cast(Any, ffi.WASMTIME_I32.value)

        def set_(new: int) -> None:
            cell.kind = i32
            value.value = new
            if error := raw_set(ctx, ref, cell_addr):
                check(error)

        return set_

    def set_fuel(amount: int) -> None:
        check(api.set_fuel(ctx, amount))

    def get_fuel() -> int:
        check(api.get_fuel(ctx, fuel_addr))
        return fuel.value

    get, set_ = (lambda name: global_getter(name)()), (lambda n, v: global_setter(n)(v))
    exports = Exports(store, memory, funcs, get, set_, fast=True)
    exports.global_getter = global_getter
    exports.global_setter = global_setter
    exports.set_fuel = set_fuel
    exports.get_fuel = get_fuel
    exports.set_deadline = lambda ticks: api.set_deadline(ctx, ticks)
    exports.data_size = lambda: cast(int, api.data_size(ctx, mem_ref))
    exports.data_ptr = lambda: cast(int, api.data_ptr(ctx, mem_ref))
    exports.keepalive = keep
    return exports
