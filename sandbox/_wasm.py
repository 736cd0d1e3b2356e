"""Reading and writing the parts of the wasm binary format that the module patches need.

Only what ``_stackguard`` and ``_unroll`` use: LEB128 numbers, sections, imported functions,
the function-name subsection and the immediates of every instruction the QuickJS reactor
contains (MVP, sign extension, saturating conversions, bulk memory).
"""

from __future__ import annotations

__all__ = [
    "BLOCK_TYPES",
    "FC_IMMEDIATES",
    "NO_IMMEDIATE",
    "ONE_INDEX",
    "SEC_CODE",
    "SEC_CUSTOM",
    "SEC_EXPORT",
    "SEC_FUNC",
    "SEC_GLOBAL",
    "SEC_IMPORT",
    "SEC_TYPE",
    "PatchError",
    "body_locals",
    "enc",
    "function_names",
    "imported_funcs",
    "name",
    "sections",
    "skip_immediates",
    "skip_leb",
    "uleb",
]

SEC_CUSTOM, SEC_TYPE, SEC_IMPORT, SEC_FUNC = 0, 1, 2, 3
SEC_GLOBAL, SEC_EXPORT, SEC_CODE = 6, 7, 10
BLOCK_TYPES = frozenset({0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F})
ONE_INDEX = frozenset({0x0C, 0x0D, 0x10, 0x20, 0x21, 0x22, 0x23, 0x25, 0x26, 0xD2})
NO_IMMEDIATE = frozenset({0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1})
FC_IMMEDIATES = {8: 2, 9: 1, 10: 2, 11: 1, 12: 2, 13: 1, 14: 2, 15: 1, 16: 1, 17: 1}


class PatchError(ValueError):
    """The module does not have the shape a patch expects."""


def uleb(data: bytes, i: int) -> tuple[int, int]:
    """The unsigned LEB128 number at ``i`` and the offset after it."""
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def skip_leb(data: bytes, i: int) -> int:
    """The offset after the LEB128 number at ``i``."""
    while data[i] & 0x80:
        i += 1
    return i + 1


def enc(value: int) -> bytes:
    """``value`` as unsigned LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def name(text: str) -> bytes:
    """A length-prefixed UTF-8 name."""
    raw = text.encode()
    return enc(len(raw)) + raw


def sections(data: bytes) -> list[tuple[int, bytes]]:
    """The module's sections, in order, as (id, payload)."""
    if data[:8] != b"\0asm\x01\0\0\0":
        raise PatchError("not a wasm 1.0 module")
    out, i = [], 8
    while i < len(data):
        sid = data[i]
        size, i = uleb(data, i + 1)
        out.append((sid, data[i : i + size]))
        i += size
    return out


def imported_funcs(body: bytes) -> int:
    """How many functions the import section ``body`` imports."""
    count, i = uleb(body, 0)
    funcs = 0
    for _ in range(count):
        for _ in range(2):
            n, i = uleb(body, i)
            i += n
        kind = body[i]
        i += 1
        if kind == 0:
            funcs += 1
            i = skip_leb(body, i)
        elif kind == 1:
            i += 1
            flags = body[i]
            i = skip_leb(body, i + 1)
            i = skip_leb(body, i) if flags & 1 else i
        elif kind == 2:
            flags = body[i]
            i = skip_leb(body, i + 1)
            i = skip_leb(body, i) if flags & 1 else i
        elif kind == 3:
            raise PatchError("imported globals are not supported")
        else:
            raise PatchError(f"unknown import kind {kind}")
    return funcs


def function_names(custom: bytes) -> dict[str, int]:
    """Function index by name, from the payload of a ``name`` custom section."""
    i = len(name("name"))
    out: dict[str, int] = {}
    while i < len(custom):
        sub = custom[i]
        size, i = uleb(custom, i + 1)
        end = i + size
        if sub == 1:
            count, j = uleb(custom, i)
            for _ in range(count):
                index, j = uleb(custom, j)
                n, j = uleb(custom, j)
                out[custom[j : j + n].decode()] = index
                j += n
        i = end
    return out


def body_locals(body: bytes) -> tuple[int, int]:
    """(how many locals a function body declares, offset of its first instruction)."""
    groups, i = uleb(body, 0)
    declared = 0
    for _ in range(groups):
        count, i = uleb(body, i)
        declared += count
        i += 1  # the group's value type
    return declared, i


def skip_immediates(body: bytes, op: int, i: int) -> int:
    """The offset after the immediates of instruction ``op`` whose immediates start at ``i``."""
    if op in NO_IMMEDIATE or 0x45 <= op <= 0xC4:
        return i
    if op in (0x02, 0x03, 0x04):
        return i + 1 if body[i] in BLOCK_TYPES else skip_leb(body, i)
    if op in ONE_INDEX or op == 0x24:
        return skip_leb(body, i)
    if op == 0x0E:
        n, i = uleb(body, i)
        for _ in range(n + 1):
            i = skip_leb(body, i)
        return i
    if op == 0x11 or 0x28 <= op <= 0x3E:
        return skip_leb(body, skip_leb(body, i))
    if op == 0x1C:
        n, i = uleb(body, i)
        return i + n
    if op in (0x3F, 0x40, 0x41, 0x42):
        return skip_leb(body, i)
    if op == 0x43:
        return i + 4
    if op == 0x44:
        return i + 8
    if op == 0xD0:
        return i + 1
    if op == 0xFC:
        sub, i = uleb(body, i)
        if sub > 17:
            raise PatchError(f"unknown 0xFC opcode {sub}")
        for _ in range(FC_IMMEDIATES.get(sub, 0)):
            i = skip_leb(body, i)
        return i
    raise PatchError(f"unknown opcode {op:#x}")
