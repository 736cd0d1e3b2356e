"""What a run can change in an instance besides its linear memory, read from the module itself.

``Instance`` restores a trapped instance in place instead of rebuilding it, on the grounds
that its only state outside linear memory is the stack pointer and the stack guard's globals.
This walks every instruction of the module as it is compiled (dispatch loop unrolled, stack
guard added) and checks exactly that: which globals are written, and that no table or
passive segment is ever changed.
"""

from __future__ import annotations

import pytest

from sandbox import _engine, _stackguard
from sandbox._wasm import (
    SEC_CODE,
    SEC_EXPORT,
    SEC_GLOBAL,
    body_locals,
    sections,
    skip_immediates,
    uleb,
)

GLOBAL_SET = 0x24
TABLE_SET = 0x26
BULK = 0xFC
# 0xFC sub-opcodes that change a table or a segment: memory.init, data.drop, table.init,
# elem.drop, table.copy, table.grow, table.fill
CHANGES_TABLE_OR_SEGMENT = {8, 9, 12, 13, 14, 15, 17}


def _module() -> bytes:
    wasm, _ = _engine._read_wasm()
    return _stackguard.add_stack_guard(_engine._unrolled(wasm))


def _section(wasm: bytes, sid: int) -> bytes:
    return next(body for s, body in sections(wasm) if s == sid)


def _exported_globals(wasm: bytes) -> dict[str, int]:
    body = _section(wasm, SEC_EXPORT)
    count, i = uleb(body, 0)
    out: dict[str, int] = {}
    for _ in range(count):
        n, i = uleb(body, i)
        name = body[i : i + n].decode()
        kind = body[i + n]
        index, i = uleb(body, i + n + 1)
        if kind == 3:
            out[name] = index
    return out


def _mutable_globals(wasm: bytes) -> set[int]:
    body = _section(wasm, SEC_GLOBAL)
    count, i = uleb(body, 0)
    mutable = set()
    for index in range(count):  # no imported globals: the stack guard patch refuses them
        mut = body[i + 1]
        i += 2
        while body[i] != 0x0B:  # the constant initializer expression
            i = skip_immediates(body, body[i], i + 1)
        i += 1
        if mut:
            mutable.add(index)
    return mutable


def _writes(wasm: bytes) -> tuple[set[int], set[str]]:
    """(globals written by ``global.set``, table/segment-changing instructions used)."""
    body = _section(wasm, SEC_CODE)
    count, i = uleb(body, 0)
    written: set[int] = set()
    changes: set[str] = set()
    for _ in range(count):
        size, i = uleb(body, i)
        code, i = body[i : i + size], i + size
        _, j = body_locals(code)
        while j < len(code):
            op, j = code[j], j + 1
            if op == GLOBAL_SET:
                written.add(uleb(code, j)[0])
            elif op == TABLE_SET:
                changes.add("table.set")
            elif op == BULK and uleb(code, j)[0] in CHANGES_TABLE_OR_SEGMENT:
                changes.add(f"0xFC {uleb(code, j)[0]}")
            j = skip_immediates(code, op, j)
    return written, changes


@pytest.fixture(scope="module")
def module() -> bytes:
    return _module()


def test_only_the_stack_pointer_and_the_guard_globals_are_written(module: bytes) -> None:
    exported = _exported_globals(module)
    state = {
        exported[_stackguard.EXPORT_SP],
        exported[_stackguard.EXPORT_LOW],
        exported[_stackguard.EXPORT_OVERFLOW],
    }
    written, _ = _writes(module)
    assert written == state
    # the limit is set by the host only; every other global is constant
    assert _mutable_globals(module) == state | {exported[_stackguard.EXPORT_LIMIT]}


def test_no_table_or_segment_is_ever_changed(module: bytes) -> None:
    _, changes = _writes(module)
    assert changes == set()


def test_the_walk_sees_writes_where_there_are_some() -> None:
    """The scan itself: a body with a ``global.set`` and a ``table.grow`` is reported."""
    # one function: no locals; i32.const 0; global.set 5; ref.null func; i32.const 1;
    # table.grow 0; drop; end
    func = bytes([0x00, 0x41, 0x00, 0x24, 0x05, 0xD0, 0x70, 0x41, 0x01, 0xFC, 15, 0x00, 0x1A, 0x0B])
    code_section = bytes([1, len(func)]) + func
    wasm = b"\0asm\x01\0\0\0" + bytes([SEC_CODE, len(code_section)]) + code_section
    assert _writes(wasm) == ({5}, {"0xFC 15"})
