"""The exports of the QuickJS module that the sandbox calls, and the object that holds them.

``SIGNATURES`` and ``GLOBALS`` name the functions and stack-guard globals the sandbox uses;
``check_module`` checks a compiled module against them; :class:`Exports` is what
``_ffi_calls.bind`` returns for one instance, whichever call path it takes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

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
    "JS_IsJobPending": ((I32,), I32),
    "JS_ParseJSON": ((I32, I32, I32, I32), I64),
    "JS_SetPropertyStr": ((I32, I64, I32, I64), I32),
    "JS_ToCStringLen2": ((I32, I32, I64, I32), I32),
    "JS_PromiseState": ((I32, I64), I32),
    "JS_PromiseResult": ((I32, I64), I64),
    "JS_GetPropertyUint32": ((I32, I64, I32), I64),
    "JS_GetArrayBuffer": ((I32, I32, I64), I32),
    "JS_WriteObject": ((I32, I32, I64, I32), I32),
    "JS_ReadObject": ((I32, I32, I32, I32), I64),
    "JS_EvalFunction": ((I32, I64), I64),
    "JS_FreeValue": ((I32, I64), None),
    "free": ((I32,), None),
    "js_free": ((I32, I32), None),
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
    """The exports of one instance that the sandbox uses, callable as plain functions.

    Besides the functions (``funcs``) and globals: ``set_fuel``/``get_fuel``,
    ``set_deadline`` (epoch ticks from now), ``data_size`` and ``data_ptr`` (host address
    of linear memory byte 0) of the instance's store and memory.
    """

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
        self.set_fuel: Callable[[int], None] = store.set_fuel
        self.get_fuel: Callable[[], int] = store.get_fuel
        self.set_deadline: Callable[[int], None] = store.set_epoch_deadline
        self.data_size: Callable[[], int] = lambda: int(memory.data_len(store))
        self.data_ptr: Callable[[], int] = lambda: ctypes.addressof(memory.data_ptr(store).contents)
        self.global_getter: Callable[[str], Callable[[], int]] = lambda name: (
            lambda: get_global(name)
        )
        self.global_setter: Callable[[str], Callable[[int], None]] = lambda name: (
            lambda value: set_global(name, value)
        )


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
