"""Calls into one wasm instance: the fast private-``_ffi`` path and the public-API fallback.

This is the only module that touches ``wasmtime._ffi``. The fast path looks up just the
exports it needs (``wasmtime_instance_export_get``; the public ``Instance.exports`` wraps all
300 of them, ~3 ms per instance) and calls them with ``wasmtime_func_call_unchecked`` and a
preallocated ``ValRaw`` buffer (~2 us per call instead of 9-30 us). The signatures below are
trusted, so they are checked against the module's own export types when binding. The caller
self-tests the fast path at start-up and uses ``bind(..., fast=False)`` if that fails.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, cast

import wasmtime

from sandbox import _stackguard

I32, I64 = "i32", "i64"

SIGNATURES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "_initialize": ((), None),
    "malloc": ((I32,), I32),
    "JS_NewRuntime": ((), I32),
    "JS_NewContext": ((I32,), I32),
    "JS_Eval": ((I32, I32, I32, I32, I32), I64),
    "JS_Call": ((I32, I64, I64, I32, I32), I64),
    "JS_GetException": ((I32,), I64),
    "JS_GetGlobalObject": ((I32,), I64),
    "JS_ExecutePendingJob": ((I32, I32), I32),
    "JS_ParseJSON": ((I32, I32, I32, I32), I64),
    "JS_SetPropertyStr": ((I32, I64, I32, I64), I32),
    "JS_ToCStringLen2": ((I32, I32, I64, I32), I32),
}
GLOBALS = (
    _stackguard.EXPORT_SP,
    _stackguard.EXPORT_LIMIT,
    _stackguard.EXPORT_LOW,
    _stackguard.EXPORT_OVERFLOW,
)
_VALTYPES = {I32: wasmtime.ValType.i32(), I64: wasmtime.ValType.i64()}

WasmFunc = Callable[..., Any]


class Exports:
    """The exports of one instance that the sandbox uses, callable as plain functions."""

    def __init__(
        self,
        store: wasmtime.Store,
        memory: wasmtime.Memory,
        funcs: dict[str, WasmFunc],
        get_global: Callable[[str], int],
        set_global: Callable[[str, int], None],
        fast: bool,
    ) -> None:
        self.store = store
        self.memory = memory
        self.funcs = funcs
        self.get_global = get_global
        self.set_global = set_global
        self.fast = fast
        self.keepalive: list[Any] = []

    def base(self) -> int:
        """Host address of linear memory byte 0 (changes only when memory grows)."""
        return ctypes.addressof(self.memory.data_ptr(self.store).contents)


def check_module(module: wasmtime.Module) -> None:
    """Raise ``TypeError`` if an export's signature differs from ``SIGNATURES``."""
    types = {e.name: e.type for e in module.exports}
    for name, (params, result) in SIGNATURES.items():
        ty = types.get(name)
        if not isinstance(ty, wasmtime.FuncType):
            raise TypeError(f"export {name} is not a function")
        want_results = [] if result is None else [_VALTYPES[result]]
        if list(ty.params) != [_VALTYPES[p] for p in params] or list(ty.results) != want_results:
            raise TypeError(f"export {name} has an unexpected signature")


def _setter(slot: Any, field: str) -> Callable[[int], None]:
    def set_(value: int) -> None:
        setattr(slot, field, value)

    return set_


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


def _bind_fast(store: wasmtime.Store, instance: wasmtime.Instance) -> Exports:
    from wasmtime import _ffi as ffi
    from wasmtime._trap import Trap

    context = store._context()
    handle = ctypes.byref(instance._instance)
    keep: list[Any] = []

    def lookup(name: str, kind: int) -> Any:
        item = ffi.wasmtime_extern_t()
        raw = name.encode()
        found = ffi.wasmtime_instance_export_get(
            context, handle, ctypes.create_string_buffer(raw), len(raw), ctypes.byref(item)
        )
        if not found or cast(int, item.kind) != kind:
            raise KeyError(name)
        keep.append(item)
        return item

    def make(name: str) -> WasmFunc:
        params, result = SIGNATURES[name]
        ref = ctypes.byref(lookup(name, ffi.WASMTIME_EXTERN_FUNC.value).of.func)
        size = max(len(params), 1)
        buf = (ffi.wasmtime_val_raw_t * size)()
        keep.append(buf)
        setters = [_setter(buf[i], kind) for i, kind in enumerate(params)]
        call: Callable[..., Any] = ffi.wasmtime_func_call_unchecked
        trap_ptr: Callable[[], Any] = ctypes.POINTER(ffi.wasm_trap_t)
        first = buf[0]

        def invoke(*args: int) -> Any:
            for setter, value in zip(setters, args, strict=True):
                setter(value)
            trap = trap_ptr()
            error = call(context, ref, buf, size, ctypes.byref(trap))
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
            if trap:
                raise Trap._from_ptr(trap)
            if result == I32:
                return first.i32
            if result == I64:
                return first.i64
            return None

        return invoke

    memory = wasmtime.Memory._from_raw(lookup("memory", ffi.WASMTIME_EXTERN_MEMORY.value).of.memory)
    funcs = {name: make(name) for name in SIGNATURES}
    refs = {
        name: ctypes.byref(lookup(name, ffi.WASMTIME_EXTERN_GLOBAL.value).of.global_)
        for name in GLOBALS
    }
    cell = ffi.wasmtime_val_t()
    keep.append(cell)

    def get_global(name: str) -> int:
        ffi.wasmtime_global_get(context, refs[name], ctypes.byref(cell))
        return int(cell.of.i32)

    def set_global(name: str, value: int) -> None:
        cell.kind = cast(Any, ffi.WASMTIME_I32.value)
        cell.of.i32 = value
        error = ffi.wasmtime_global_set(context, refs[name], ctypes.byref(cell))
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)

    exports = Exports(store, memory, funcs, get_global, set_global, fast=True)
    exports.keepalive = keep
    return exports
