"""Rewrite the QuickJS reactor so that C-stack overflow traps before it corrupts memory.

The reactor's C stack lives in linear memory directly above static data, and this build of
QuickJS-NG has its own stack check compiled out (``JS_SetMaxStackSize`` is a no-op on WASI),
so deep recursion silently overwrites static data before anything traps. This module patches
the module binary once, before it is compiled:

* every ``global.set $__stack_pointer`` gets an inline check: when the new value is below the
  exported ``codexec_stack_low`` (the lowest stack pointer seen so far, which lets a reset copy
  back only the part of the stack a run touched), a new function ``$codexec_sp_low`` records it
  and traps with ``unreachable``, after raising the exported ``codexec_stack_overflow`` flag,
  if it is also below the exported ``codexec_stack_limit``. The common case costs one
  comparison; a call per stack-frame push measured 25 % slower on a loop;
* ``__stack_pointer`` itself is exported as ``codexec_sp`` so the host can move the stack to
  a larger region and reset it after a trap.

Indices of existing types, functions and globals do not change (everything new is appended),
so the rest of the module is copied byte for byte. Only the ``name`` custom section is kept.
"""

from __future__ import annotations

PATCH_VERSION = 1

EXPORT_SP = "codexec_sp"
EXPORT_LIMIT = "codexec_stack_limit"
EXPORT_LOW = "codexec_stack_low"
EXPORT_OVERFLOW = "codexec_stack_overflow"

_SEC_CUSTOM, _SEC_TYPE, _SEC_IMPORT, _SEC_FUNC = 0, 1, 2, 3
_SEC_GLOBAL, _SEC_EXPORT, _SEC_CODE = 6, 7, 10
_I32 = 0x7F
_BLOCK_TYPES = frozenset({0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F})
_ONE_INDEX = frozenset({0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x25, 0x26, 0xD2})
_NO_IMMEDIATE = frozenset({0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1})
_FC_IMMEDIATES = {8: 2, 9: 1, 10: 2, 11: 1, 12: 2, 13: 1, 14: 2, 15: 1, 16: 1, 17: 1}


class PatchError(ValueError):
    """The module does not have the shape this patch expects."""


def _uleb(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def _skip_leb(data: bytes, i: int) -> int:
    while data[i] & 0x80:
        i += 1
    return i + 1


def _enc(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _enc(len(raw)) + raw


def _sections(data: bytes) -> list[tuple[int, bytes]]:
    if data[:8] != b"\0asm\x01\0\0\0":
        raise PatchError("not a wasm 1.0 module")
    out, i = [], 8
    while i < len(data):
        sid = data[i]
        size, i = _uleb(data, i + 1)
        out.append((sid, data[i : i + size]))
        i += size
    return out


def _split_vec(body: bytes) -> tuple[int, bytes]:
    count, i = _uleb(body, 0)
    return count, body[i:]


def _imported_funcs(body: bytes) -> int:
    count, i = _uleb(body, 0)
    funcs = 0
    for _ in range(count):
        for _ in range(2):
            n, i = _uleb(body, i)
            i += n
        kind = body[i]
        i += 1
        if kind == 0:
            funcs += 1
            i = _skip_leb(body, i)
        elif kind == 1:
            i += 1
            flags = body[i]
            i = _skip_leb(body, i + 1)
            i = _skip_leb(body, i) if flags & 1 else i
        elif kind == 2:
            flags = body[i]
            i = _skip_leb(body, i + 1)
            i = _skip_leb(body, i) if flags & 1 else i
        elif kind == 3:
            raise PatchError("imported globals are not supported")
        else:
            raise PatchError(f"unknown import kind {kind}")
    return funcs


def _param_counts(types: bytes, funcs: bytes, n_funcs: int) -> list[int]:
    """Parameter count of each defined function, in function-section order."""
    n_types, i = _uleb(types, 0)
    params = []
    for _ in range(n_types):
        if types[i] != 0x60:
            raise PatchError("unexpected type form")
        n, i = _uleb(types, i + 1)
        params.append(n)
        i += n
        n, i = _uleb(types, i)
        i += n
    out, j = [], 0
    for _ in range(n_funcs):
        index, j = _uleb(funcs, j)
        out.append(params[index])
    return out


def _patch_body(body: bytes, n_params: int, low: bytes, slow_call: bytes) -> bytes:
    """Return ``body`` with an inline stack check before each ``global.set 0``."""
    n_groups, i = _uleb(body, 0)
    n_locals = n_params
    for _ in range(n_groups):
        count, i = _uleb(body, i)
        n_locals += count
        i += 1
    locals_end = i
    t = _enc(n_locals)  # the scratch local this patch appends
    check = (
        b"\x22"
        + t
        + b"\x23"
        + low
        + b"\x49\x04\x40"  # if ((t = sp) < low)
        + b"\x20"
        + t
        + slow_call
        + b"\x0b"  # codexec_sp_low(t)
        + b"\x20"
        + t
        + b"\x24\x00"  # __stack_pointer = t
    )
    out = bytearray()
    start = locals_end
    end = len(body)
    while i < end:
        op = body[i]
        at = i
        i += 1
        if op in _NO_IMMEDIATE or 0x45 <= op <= 0xC4:
            continue
        if op in (0x02, 0x03, 0x04):
            i = i + 1 if body[i] in _BLOCK_TYPES else _skip_leb(body, i)
        elif op == 0x24:
            index, j = _uleb(body, i)
            if index == 0:
                out += body[start:at]
                out += check
                start = j
            i = j
        elif op in _ONE_INDEX:
            i = _skip_leb(body, i)
        elif op == 0x0E:
            n, i = _uleb(body, i)
            for _ in range(n + 1):
                i = _skip_leb(body, i)
        elif op == 0x11 or 0x28 <= op <= 0x3E:
            i = _skip_leb(body, _skip_leb(body, i))
        elif op == 0x1C:
            n, i = _uleb(body, i)
            i += n
        elif op in (0x3F, 0x40, 0x41, 0x42):
            i = _skip_leb(body, i)
        elif op == 0x43:
            i += 4
        elif op == 0x44:
            i += 8
        elif op == 0xD0:
            i += 1
        elif op == 0xFC:
            sub, i = _uleb(body, i)
            if sub > 17:
                raise PatchError(f"unknown 0xFC opcode {sub}")
            for _ in range(_FC_IMMEDIATES.get(sub, 0)):
                i = _skip_leb(body, i)
        else:
            raise PatchError(f"unknown opcode {op:#x}")
    if i != end:
        raise PatchError("function body did not end where its size says")
    if not out:
        return body
    out += body[start:]
    return _enc(n_groups + 1) + body[_skip_leb(body, 0) : locals_end] + b"\x01\x7f" + bytes(out)


def _slow_body(limit: int, low: int, flag: int) -> bytes:
    g_limit, g_low, g_flag = _enc(limit), _enc(low), _enc(flag)
    code = (
        b"\x00"  # no locals
        + b"\x20\x00\x23"
        + g_limit
        + b"\x49\x04\x40"  # if (sp < limit)
        + b"\x41\x01\x24"
        + g_flag
        + b"\x00\x0b"  # flag = 1; unreachable
        + b"\x20\x00\x24"
        + g_low
        + b"\x0b"  # low = sp
    )
    return _enc(len(code)) + code


def add_stack_guard(wasm: bytes) -> bytes:
    """Return a copy of ``wasm`` with the stack guard described in the module docstring."""
    sections = _sections(wasm)
    by_id = {sid: body for sid, body in sections if sid != _SEC_CUSTOM}
    for needed in (_SEC_TYPE, _SEC_FUNC, _SEC_GLOBAL, _SEC_EXPORT, _SEC_CODE):
        if needed not in by_id:
            raise PatchError(f"section {needed} missing")
    n_types, types = _split_vec(by_id[_SEC_TYPE])
    n_funcs, funcs = _split_vec(by_id[_SEC_FUNC])
    n_globals, globals_ = _split_vec(by_id[_SEC_GLOBAL])
    n_exports, exports = _split_vec(by_id[_SEC_EXPORT])
    if globals_[:2] != bytes([_I32, 1]):
        raise PatchError("global 0 is not a mutable i32 stack pointer")
    imported = _imported_funcs(by_id[_SEC_IMPORT]) if _SEC_IMPORT in by_id else 0
    guard_type, guard_func = n_types, imported + n_funcs
    g_limit, g_low, g_flag = n_globals, n_globals + 1, n_globals + 2
    slow_call = b"\x10" + _enc(guard_func)
    params = _param_counts(by_id[_SEC_TYPE], funcs, n_funcs)

    code = by_id[_SEC_CODE]
    n_bodies, i = _uleb(code, 0)
    bodies = []
    if n_bodies != n_funcs:
        raise PatchError("function and code sections disagree")
    for k in range(n_bodies):
        size, i = _uleb(code, i)
        patched = _patch_body(code[i : i + size], params[k], _enc(g_low), slow_call)
        bodies.append(_enc(len(patched)) + patched)
        i += size
    bodies.append(_slow_body(g_limit, g_low, g_flag))

    zero_i32 = bytes([_I32, 1, 0x41, 0x00, 0x0B])
    new = {
        _SEC_TYPE: _enc(n_types + 1) + types + b"\x60\x01\x7f\x00",
        _SEC_FUNC: _enc(n_funcs + 1) + funcs + _enc(guard_type),
        _SEC_GLOBAL: _enc(n_globals + 3) + globals_ + zero_i32 * 3,
        _SEC_EXPORT: _enc(n_exports + 4)
        + exports
        + b"".join(
            _name(name) + b"\x03" + _enc(index)
            for name, index in (
                (EXPORT_SP, 0),
                (EXPORT_LIMIT, g_limit),
                (EXPORT_LOW, g_low),
                (EXPORT_OVERFLOW, g_flag),
            )
        ),
        _SEC_CODE: _enc(len(bodies)) + b"".join(bodies),
    }
    out = bytearray(wasm[:8])
    for sid, body in sections:
        if sid == _SEC_CUSTOM and not body.startswith(_name("name")):
            continue
        payload = new.get(sid, body)
        out += bytes([sid]) + _enc(len(payload)) + payload
    return bytes(out)
