"""The host side of the stripper's wasm-bindgen imports, in Python instead of JavaScript.

wasm-bindgen modules keep JavaScript values in a host "heap" and pass its indices as i32.
Here the heap is a Python list per call (``Heap``) holding plain Python values: ``dict`` for
objects, ``list`` for arrays, ``str``, ``float``, ``bool``, ``None`` for ``null`` and
``UNDEFINED``. Only what ``transformSync(string, options)`` needs is implemented: the
functions, promises, closures and typed-array imports raise ``Unsupported`` (the wasm call
then fails and the strip reports an error). The import names carry the glue's hashes, so they
are exact for the pinned package version (``_ts_package``).

Calls run entirely in one thread, so the heap of the running call is a thread-local.
"""

from __future__ import annotations

import ctypes
import math
import re
import struct
import threading
from collections.abc import Callable
from typing import Any

import wasmtime

UNDEFINED: Any = type("Undefined", (), {"__repr__": lambda self: "undefined"})()
_FIRST = 128  # heap slots below this are reserved; 128..131 hold the constants
_CONSTANTS = (UNDEFINED, None, True, False)
UNDEFINED_INDEX = _FIRST  # the heap index of ``undefined`` (a constant slot)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_string_at = ctypes.string_at
_memmove = ctypes.memmove


class Thrown(Exception):
    """The wasm code threw (``__wbindgen_throw``: a Rust panic message or a JS error)."""


class Unsupported(Exception):
    """The wasm code called an import this host does not provide."""


class JsError:
    """A JavaScript ``Error`` created by the wasm code."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Error({self.message!r})"


class Heap:
    """The JavaScript values one call can see, and the memory they are copied through."""

    def __init__(self, base: int, size: Callable[[], int], malloc: Callable[..., Any]) -> None:
        self.slots: list[Any] = [None] * _FIRST + list(_CONSTANTS)
        self.free: list[int] = []
        self.base = base
        self.size = size  # current linear-memory size in bytes
        self.malloc = malloc

    def _checked(self, ptr: int, n: int) -> int:
        """The host address of ``[ptr, ptr + n)``; the range must lie in linear memory."""
        ptr &= 0xFFFFFFFF
        if n < 0 or ptr + n > self.size():
            raise Unsupported(f"memory access out of bounds: {ptr}+{n}")
        return self.base + ptr

    def add(self, value: Any) -> int:
        """Store ``value``; return its index."""
        if self.free:
            index = self.free.pop()
            self.slots[index] = value
            return index
        self.slots.append(value)
        return len(self.slots) - 1

    def take(self, index: int) -> Any:
        """The value at ``index``, which is dropped."""
        value = self.slots[index]
        self.drop(index)
        return value

    def drop(self, index: int) -> None:
        """Forget the value at ``index`` (the constants stay)."""
        if index >= _FIRST + len(_CONSTANTS):
            self.slots[index] = None
            self.free.append(index)

    def text(self, ptr: int, n: int) -> str:
        """UTF-8 at ``ptr`` (invalid bytes become U+FFFD, as ``TextDecoder`` does)."""
        n &= 0xFFFFFFFF
        return _string_at(self._checked(ptr, n), n).decode("utf-8", "replace")

    def read(self, ptr: int, n: int) -> bytes:
        """``n`` bytes of linear memory at ``ptr``."""
        return _string_at(self._checked(ptr, n), n)

    def write(self, ptr: int, data: bytes) -> None:
        """Copy ``data`` into linear memory."""
        _memmove(self._checked(ptr, len(data)), data, len(data))

    def pass_string(self, caller: wasmtime.Caller, value: str) -> tuple[int, int]:
        """Copy ``value`` into a block the wasm allocator gives; return (pointer, length)."""
        data = _LONE_SURROGATE.sub("\ufffd", value).encode("utf-8")  # Rust needs valid UTF-8
        ptr = self.malloc(caller, len(data), 1) & 0xFFFFFFFF
        self.write(ptr, data)
        return ptr, len(data)


_current = threading.local()


def current() -> Heap:
    """The heap of the call running in this thread."""
    heap: Heap = _current.heap
    return heap


def enter(heap: Heap | None) -> None:
    """Make ``heap`` the current one for this thread (``None`` after the call)."""
    _current.heap = heap


def _v(index: int) -> Any:
    return current().slots[index]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truthy(value: Any) -> bool:
    if value is UNDEFINED or value is None or value is False:
        return False
    if _is_number(value):
        return bool(value != 0 and not math.isnan(value))
    return bool(value != "")


def _loose_eq(a: Any, b: Any) -> bool:
    nullish = (None, UNDEFINED)
    if a in nullish or b in nullish:
        return a in nullish and b in nullish
    return bool(a == b) if type(a) is type(b) or (_is_number(a) and _is_number(b)) else False


def _strict_eq(a: Any, b: Any) -> bool:
    if isinstance(a, dict | list | JsError) or isinstance(b, dict | list | JsError):
        return a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _string_get(caller: wasmtime.Caller, ret: int, index: int) -> None:
    heap = current()
    value = heap.slots[index]
    ptr, n = heap.pass_string(caller, value) if isinstance(value, str) else (0, 0)
    heap.write(ret, struct.pack("<ii", ptr, n))


def _debug_string(caller: wasmtime.Caller, ret: int, index: int) -> None:
    heap = current()
    ptr, n = heap.pass_string(caller, repr(heap.slots[index])[:200])
    heap.write(ret, struct.pack("<ii", ptr, n))


def _number_get(ret: int, index: int) -> None:
    value = _v(index)
    ok = _is_number(value)
    current().write(ret, struct.pack("<i4xd", int(ok), float(value) if ok else 0.0))


def _bigint_get_as_i64(ret: int, index: int) -> None:
    current().write(ret, struct.pack("<i4xq", 0, 0))  # no BigInt values ever reach the heap


def _throw(ptr: int, n: int) -> None:
    raise Thrown(current().text(ptr, n))


def _set_key(obj: int, key: int, value: int) -> None:
    heap = current()
    target = heap.slots[obj]
    k, v = heap.take(key), heap.take(value)
    if isinstance(target, dict):
        target[k] = v


def _set_index(obj: int, i: int, value: int) -> None:
    heap = current()
    target, v, i = heap.slots[obj], heap.take(value), i & 0xFFFFFFFF
    if isinstance(target, list) and i <= len(target) + 1024:
        target.extend([UNDEFINED] * (i + 1 - len(target)))
        target[i] = v


def _get_key(obj: int, key: int) -> int:
    target, k = _v(obj), _v(key)
    return current().add(target.get(k, UNDEFINED) if isinstance(target, dict) else UNDEFINED)


def _get_index(obj: int, i: int) -> int:
    target, i = _v(obj), i & 0xFFFFFFFF
    found = target[i] if isinstance(target, list) and i < len(target) else UNDEFINED
    return current().add(found)


def _entries(obj: int) -> int:
    target = _v(obj)
    pairs = [[k, v] for k, v in target.items()] if isinstance(target, dict) else []
    return current().add(pairs)


def _length(obj: int) -> int:
    target = _v(obj)
    return len(target) if isinstance(target, list | str) else 0


def _is_safe_integer(index: int) -> int:
    value = _v(index)
    return int(_is_number(value) and float(value).is_integer() and abs(value) <= 2**53 - 1)


IMPLEMENTED: dict[str, tuple[Callable[..., Any], bool]] = {  # name -> (function, needs caller)
    "__wbindgen_string_new": (lambda p, n: current().add(current().text(p, n)), False),
    "__wbindgen_string_get": (_string_get, True),
    "__wbindgen_debug_string": (_debug_string, True),
    "__wbindgen_number_new": (lambda x: current().add(x), False),
    "__wbindgen_number_get": (_number_get, False),
    "__wbindgen_bigint_get_as_i64": (_bigint_get_as_i64, False),
    "__wbindgen_boolean_get": (lambda i: int(_v(i)) if isinstance(_v(i), bool) else 2, False),
    "__wbindgen_error_new": (lambda p, n: current().add(JsError(current().text(p, n))), False),
    "__wbindgen_throw": (_throw, False),
    "__wbindgen_object_drop_ref": (lambda i: current().drop(i), False),
    "__wbindgen_object_clone_ref": (lambda i: current().add(_v(i)), False),
    "__wbindgen_is_undefined": (lambda i: int(_v(i) is UNDEFINED), False),
    "__wbindgen_is_object": (lambda i: int(isinstance(_v(i), dict | list | JsError)), False),
    "__wbindgen_is_string": (lambda i: int(isinstance(_v(i), str)), False),
    "__wbindgen_is_function": (lambda i: 0, False),
    "__wbindgen_is_bigint": (lambda i: 0, False),
    "__wbindgen_is_falsy": (lambda i: int(not _truthy(_v(i))), False),
    "__wbindgen_in": (lambda k, o: int(isinstance(_v(o), dict) and _v(k) in _v(o)), False),
    "__wbindgen_jsval_eq": (lambda a, b: int(_strict_eq(_v(a), _v(b))), False),
    "__wbindgen_jsval_loose_eq": (lambda a, b: int(_loose_eq(_v(a), _v(b))), False),
    "__wbg_new_405e22f390576ce2": (lambda: current().add({}), False),  # new Object()
    "__wbg_new_78feb108b6472713": (lambda: current().add([]), False),  # new Array()
    "__wbg_set_3f1d0b984ed272ed": (_set_key, False),  # obj[key] = value
    "__wbg_set_37837023f3d740e8": (_set_index, False),  # array[i] = value
    "__wbg_getwithrefkey_1dc361bd10053bfe": (_get_key, False),
    "__wbg_get_b9b93047fe3cf45b": (_get_index, False),
    "__wbg_entries_3265d4158b33e5dc": (_entries, False),
    "__wbg_length_a446193dc22c12f8": (_length, False),
    "__wbg_length_e2d2a49132c1b256": (_length, False),
    "__wbg_isArray_a1eab7e0d067391b": (lambda i: int(isinstance(_v(i), list)), False),
    "__wbg_isSafeInteger_343e2beeeece1bb0": (_is_safe_integer, False),
    "__wbg_instanceof_Map_f3469ce2244d2430": (lambda i: 0, False),
    "__wbg_instanceof_Uint8Array_17156bcf118086a9": (lambda i: 0, False),
    "__wbg_instanceof_ArrayBuffer_e14585432e3737fc": (lambda i: 0, False),
}


def _unsupported(name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        raise Unsupported(f"the stripper called {name}, which this host does not provide")

    return call


def define_imports(linker: wasmtime.Linker, module: wasmtime.Module) -> None:
    """Define every import of ``module`` in ``linker`` (unsupported ones raise when called)."""
    for item in module.imports:
        if not isinstance(item.type, wasmtime.FuncType) or item.name is None:
            raise Unsupported(f"unexpected import {item.module}.{item.name}")
        func, caller = IMPLEMENTED.get(item.name, (_unsupported(item.name), False))
        linker.define_func(item.module, item.name, item.type, func, access_caller=caller)
