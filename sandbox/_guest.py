"""One QuickJS instance seen from the host: its store, its exports and its linear memory.

JSValues cross the boundary as i64 (NaN-boxing build: tag in the high 32 bits). Calls that
return new values are never paired with ``JS_FreeValue``: the memory of every run is thrown
away (snapshot reset), so freeing would only cost time.
"""

from __future__ import annotations

import ctypes

import wasmtime

from sandbox._engine import Compiled
from sandbox._ffi_calls import bind

TAG_OBJECT = -1
TAG_INT = 0
TAG_BOOL = 1
TAG_NULL = 2
TAG_UNDEFINED = 3
TAG_EXCEPTION = 6
UNDEFINED = TAG_UNDEFINED << 32
BUILD_FUEL = 10**12
BUILD_MEMORY = 1 << 30


def tag(value: int) -> int:
    """The JSValue tag of an i64 JSValue."""
    return value >> 32


class Guest:
    """A fresh wasm instance of the compiled module, in a store of its own."""

    def __init__(self, compiled: Compiled, fast: bool) -> None:
        store = wasmtime.Store(compiled.engine)
        store.set_wasi(wasmtime.WasiConfig())  # no args, env, preopens or stdio
        store.set_fuel(BUILD_FUEL)
        store.set_epoch_deadline(1 << 40)
        store.set_limits(memory_size=BUILD_MEMORY)
        self.store = store
        self.exports = bind(store, compiled.pre.instantiate(store), fast)
        f = self.exports.funcs
        self.initialize = f["_initialize"]
        self.malloc = f["malloc"]
        self.new_runtime = f["JS_NewRuntime"]
        self.new_context = f["JS_NewContext"]
        self.eval = f["JS_Eval"]
        self.call = f["JS_Call"]
        self.get_exception = f["JS_GetException"]
        self.global_object = f["JS_GetGlobalObject"]
        self.execute_pending_job = f["JS_ExecutePendingJob"]
        self.parse_json = f["JS_ParseJSON"]
        self.set_property_str = f["JS_SetPropertyStr"]
        self.to_cstring = f["JS_ToCStringLen2"]
        self.is_job_pending = f["JS_IsJobPending"]
        self.promise_state = f["JS_PromiseState"]
        self.promise_result = f["JS_PromiseResult"]
        self.get_index = f["JS_GetPropertyUint32"]
        self.array_buffer = f["JS_GetArrayBuffer"]
        self.write_object = f["JS_WriteObject"]
        self.read_object = f["JS_ReadObject"]
        self.eval_function = f["JS_EvalFunction"]
        self.free_value = f["JS_FreeValue"]
        self.free = f["free"]
        self.js_free = f["js_free"]
        self.get_global = self.exports.get_global
        self.set_global = self.exports.set_global
        self.memory = self.exports.memory
        self.base = self.exports.data_ptr
        self.size = self.exports.data_size

    def write(self, addr: int, data: bytes) -> None:
        """Copy ``data`` into linear memory at ``addr``."""
        ctypes.memmove(self.base() + addr, data, len(data))

    def read(self, addr: int, n: int) -> bytes:
        """Copy ``n`` bytes out of linear memory."""
        return ctypes.string_at(self.base() + addr, n)

    def alloc(self, data: bytes) -> int:
        """``malloc`` a block in the guest, fill it with ``data`` and return its address."""
        addr = int(self.malloc(len(data))) & 0xFFFFFFFF
        if not addr:
            raise MemoryError("guest malloc failed")
        self.write(addr, data)
        return addr

    def string(self, ctx: int, value: int, lenp: int) -> str:
        """``ToString(value)`` as text; lone surrogates become U+FFFD, never an error."""
        ptr = self.to_cstring(ctx, lenp, value, 0) & 0xFFFFFFFF
        if not ptr:
            return ""
        base = self.base()
        n = int.from_bytes(ctypes.string_at(base + lenp, 4), "little")
        return ctypes.string_at(base + ptr, n).decode("utf-8", errors="replace")

    def grow_to(self, size: int) -> None:
        """Grow linear memory to at least ``size`` bytes."""
        have = self.size()
        if size > have:
            self.memory.grow(self.store, -(-(size - have) // 65536))

    def close(self) -> None:
        """Release the store (and with it the instance and its memory)."""
        self.store.close()
