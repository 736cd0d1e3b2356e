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

from sandbox._wasm import (
    SEC_CODE,
    SEC_CUSTOM,
    SEC_EXPORT,
    SEC_FUNC,
    SEC_GLOBAL,
    SEC_IMPORT,
    SEC_TYPE,
    PatchError,
    body_locals,
    enc,
    imported_funcs,
    name,
    sections,
    skip_immediates,
    skip_leb,
    uleb,
)

__all__ = [
    "EXPORT_LIMIT",
    "EXPORT_LOW",
    "EXPORT_OVERFLOW",
    "EXPORT_SP",
    "PATCH_VERSION",
    "PatchError",
    "add_stack_guard",
]

PATCH_VERSION = 1

EXPORT_SP = "codexec_sp"
EXPORT_LIMIT = "codexec_stack_limit"
EXPORT_LOW = "codexec_stack_low"
EXPORT_OVERFLOW = "codexec_stack_overflow"

_I32 = 0x7F


def _split_vec(body: bytes) -> tuple[int, bytes]:
    count, i = uleb(body, 0)
    return count, body[i:]


def _param_counts(types: bytes, funcs: bytes, n_funcs: int) -> list[int]:
    """Parameter count of each defined function, in function-section order."""
    n_types, i = uleb(types, 0)
    params = []
    for _ in range(n_types):
        if types[i] != 0x60:
            raise PatchError("unexpected type form")
        n, i = uleb(types, i + 1)
        params.append(n)
        i += n
        n, i = uleb(types, i)
        i += n
    out, j = [], 0
    for _ in range(n_funcs):
        index, j = uleb(funcs, j)
        out.append(params[index])
    return out


def _patch_body(body: bytes, n_params: int, low: bytes, slow_call: bytes) -> bytes:
    """Return ``body`` with an inline stack check before each ``global.set 0``."""
    n_groups = uleb(body, 0)[0]
    declared, locals_end = body_locals(body)
    i = locals_end
    t = enc(n_params + declared)  # the scratch local this patch appends
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
        if op == 0x24:
            index, j = uleb(body, i)
            if index == 0:
                out += body[start:at]
                out += check
                start = j
            i = j
        else:
            i = skip_immediates(body, op, i)
    if i != end:
        raise PatchError("function body did not end where its size says")
    if not out:
        return body
    out += body[start:]
    return enc(n_groups + 1) + body[skip_leb(body, 0) : locals_end] + b"\x01\x7f" + bytes(out)


def _slow_body(limit: int, low: int, flag: int) -> bytes:
    g_limit, g_low, g_flag = enc(limit), enc(low), enc(flag)
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
    return enc(len(code)) + code


def add_stack_guard(wasm: bytes) -> bytes:
    """Return a copy of ``wasm`` with the stack guard described in the module docstring."""
    parts = sections(wasm)
    by_id = {sid: body for sid, body in parts if sid != SEC_CUSTOM}
    for needed in (SEC_TYPE, SEC_FUNC, SEC_GLOBAL, SEC_EXPORT, SEC_CODE):
        if needed not in by_id:
            raise PatchError(f"section {needed} missing")
    n_types, types = _split_vec(by_id[SEC_TYPE])
    n_funcs, funcs = _split_vec(by_id[SEC_FUNC])
    n_globals, globals_ = _split_vec(by_id[SEC_GLOBAL])
    n_exports, exports = _split_vec(by_id[SEC_EXPORT])
    if globals_[:2] != bytes([_I32, 1]):
        raise PatchError("global 0 is not a mutable i32 stack pointer")
    imported = imported_funcs(by_id[SEC_IMPORT]) if SEC_IMPORT in by_id else 0
    guard_type, guard_func = n_types, imported + n_funcs
    g_limit, g_low, g_flag = n_globals, n_globals + 1, n_globals + 2
    slow_call = b"\x10" + enc(guard_func)
    params = _param_counts(by_id[SEC_TYPE], funcs, n_funcs)

    code = by_id[SEC_CODE]
    n_bodies, i = uleb(code, 0)
    bodies = []
    if n_bodies != n_funcs:
        raise PatchError("function and code sections disagree")
    for k in range(n_bodies):
        size, i = uleb(code, i)
        patched = _patch_body(code[i : i + size], params[k], enc(g_low), slow_call)
        bodies.append(enc(len(patched)) + patched)
        i += size
    bodies.append(_slow_body(g_limit, g_low, g_flag))

    zero_i32 = bytes([_I32, 1, 0x41, 0x00, 0x0B])
    new = {
        SEC_TYPE: enc(n_types + 1) + types + b"\x60\x01\x7f\x00",
        SEC_FUNC: enc(n_funcs + 1) + funcs + enc(guard_type),
        SEC_GLOBAL: enc(n_globals + 3) + globals_ + zero_i32 * 3,
        SEC_EXPORT: enc(n_exports + 4)
        + exports
        + b"".join(
            name(export) + b"\x03" + enc(index)
            for export, index in (
                (EXPORT_SP, 0),
                (EXPORT_LIMIT, g_limit),
                (EXPORT_LOW, g_low),
                (EXPORT_OVERFLOW, g_flag),
            )
        ),
        SEC_CODE: enc(len(bodies)) + b"".join(bodies),
    }
    out = bytearray(wasm[:8])
    for sid, body in parts:
        if sid == SEC_CUSTOM and not body.startswith(name("name")):
            continue
        payload = new.get(sid, body)
        out += bytes([sid]) + enc(len(payload)) + payload
    return bytes(out)
