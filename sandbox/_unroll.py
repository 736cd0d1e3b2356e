"""Unroll the QuickJS interpreter's dispatch loop once, so the engine checks fuel and the epoch
deadline every second bytecode instead of every one.

wasmtime checks a store's fuel and epoch deadline at every wasm loop header. QuickJS runs
bytecode in one loop of ``JS_CallInternal`` (a ``switch`` whose cases branch back to the loop
header), so both checks run once per bytecode: about a quarter of the time of an
interpreter-bound script on the reference machine (``docs/performance.md``). This patch puts a
second copy of that loop's body in the loop::

    block $exit
      loop $dispatch
        block $second
          <body: "continue" reaches the end of $second, i.e. the second copy>
          br $exit          ;; falling off the body left the loop: leave it
        end
        <body: "continue" goes to $dispatch, where the checks are>
      end
    end

Every instruction the guest executes is the same as before, in the same order: only block
structure is added, and ``block``/``loop``/``end`` cost no fuel, so a run consumes exactly the
fuel it did before (the ``br $exit`` is only reached if the loop body falls off its end, which
this build's does not). Limits still hold: an out-of-fuel or past-deadline run stops at most one
bytecode later. Unrolling more than once measured slower (the body is ~50 KB of code).

Branch depths inside each copy are rewritten: a branch to the loop keeps its depth (now the
``$second`` block in the first copy), a branch to anything outside the loop gets one more per
added enclosing block.
"""

from __future__ import annotations

from sandbox._wasm import (
    SEC_CODE,
    SEC_CUSTOM,
    SEC_IMPORT,
    PatchError,
    body_locals,
    enc,
    function_names,
    imported_funcs,
    name,
    sections,
    skip_immediates,
    uleb,
)

__all__ = ["FUNCTION", "UNROLL_VERSION", "unroll_dispatch"]

UNROLL_VERSION = 1
FUNCTION = "JS_CallInternal"
_MIN_BRANCHES = 100  # what makes a loop the dispatch loop: most branches back to it, at least this
_EMPTY = 0x40  # block type of a loop without parameters or results


def _dispatch_loop(body: bytes) -> tuple[int, int, int]:
    """(offset of the ``loop`` opcode, offset of its first body instruction, offset of its
    ``end``) of the loop without parameters or results that most branches go back to."""
    stack: list[int] = []  # offsets of the open block, loop and if instructions
    loops: dict[int, list[int]] = {}  # such a loop's offset -> [branches to it, body start, end]
    i, end = body_locals(body)[1], len(body)
    while i < end:
        op, at = body[i], i
        i += 1
        if op in (0x02, 0x03, 0x04):
            i = skip_immediates(body, op, i)
            stack.append(at)
            if op == 0x03 and body[at + 1] == _EMPTY:
                loops[at] = [0, i, -1]
        elif op == 0x0B:
            if stack and (start := stack.pop()) in loops:
                loops[start][2] = at
        elif op in (0x0C, 0x0D, 0x0E):
            targets = []
            if op == 0x0E:
                count, i = uleb(body, i)
                for _ in range(count + 1):
                    depth, i = uleb(body, i)
                    targets.append(depth)
            else:
                depth, i = uleb(body, i)
                targets.append(depth)
            for depth in targets:
                target = stack[len(stack) - 1 - depth]
                if target in loops:
                    loops[target][0] += 1
        else:
            i = skip_immediates(body, op, i)
    if i != end or stack:
        raise PatchError("function body is not well nested")
    if not loops:
        raise PatchError(f"{FUNCTION} has no loop without parameters or results")
    at, (branches, start, stop) = max(loops.items(), key=lambda item: item[1][0])
    if branches < _MIN_BRANCHES:
        raise PatchError(f"{FUNCTION}'s busiest empty-typed loop has {branches} branches")
    return at, start, stop


def _copy(body: bytes, start: int, stop: int, outer_shift: int) -> bytes:
    """``body[start:stop]`` (a loop's body) with every branch that leaves the loop moved out
    by ``outer_shift`` more levels; branches to the loop itself and inside it are kept."""
    out = bytearray()
    i, last, nested = start, start, 0
    while i < stop:
        op = body[i]
        i += 1
        if op in (0x02, 0x03, 0x04):
            nested += 1
            i = skip_immediates(body, op, i)
        elif op == 0x0B:
            nested -= 1
        elif op in (0x0C, 0x0D):
            depth, after = uleb(body, i)
            if depth > nested:
                out += body[last:i] + enc(depth + outer_shift)
                last = after
            i = after
        elif op == 0x0E:
            count, after = uleb(body, i)
            depths = []
            for _ in range(count + 1):
                depth, after = uleb(body, after)
                depths.append(depth + outer_shift if depth > nested else depth)
            out += body[last:i] + enc(count) + b"".join(enc(d) for d in depths)
            i = last = after
        else:
            i = skip_immediates(body, op, i)
    if nested:
        raise PatchError("loop body is not well nested")
    return bytes(out + body[last:stop])


def _unroll_body(body: bytes) -> bytes:
    at, start, stop = _dispatch_loop(body)
    first = _copy(body, start, stop, 2)  # inside $second, $dispatch and $exit
    second = _copy(body, start, stop, 1)  # inside $dispatch and $exit
    block, loop, br, end = b"\x02\x40", b"\x03\x40", b"\x0c", b"\x0b"
    unrolled = block + loop + block + first + br + enc(2) + end + second + end + end
    return body[:at] + unrolled + body[stop + 1 :]


def unroll_dispatch(wasm: bytes) -> bytes:
    """``wasm`` with :data:`FUNCTION`'s dispatch loop unrolled once (PatchError if the module
    has no function names, no such function, or no loop that looks like the dispatch)."""
    parts = sections(wasm)
    names: dict[str, int] = {}
    imported = 0
    for sid, payload in parts:
        if sid == SEC_CUSTOM and payload.startswith(name("name")):
            names = function_names(payload)
        elif sid == SEC_IMPORT:
            imported = imported_funcs(payload)
    if FUNCTION not in names:
        raise PatchError(f"no function named {FUNCTION}")
    target = names[FUNCTION] - imported
    out = bytearray(wasm[:8])
    for sid, payload in parts:
        if sid == SEC_CODE:
            count, i = uleb(payload, 0)
            if not 0 <= target < count:
                raise PatchError(f"{FUNCTION} is not a defined function")
            bodies = [enc(count)]
            for k in range(count):
                size, i = uleb(payload, i)
                body = payload[i : i + size]
                if k == target:
                    body = _unroll_body(body)
                bodies.append(enc(len(body)) + body)
                i += size
            payload = b"".join(bodies)
        out += bytes([sid]) + enc(len(payload)) + payload
    return bytes(out)
