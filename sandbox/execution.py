"""One instance running one piece of code: set limits, run, read the outcome, reset.

After a normal run the memory is put back from the template image in place (only the bytes a
run can have touched: everything except the part of the stack block below the lowest stack
pointer the run reached). After a trap, or when memory grew (wasm memory cannot shrink), the
instance is not trusted again: the caller replaces it with a fresh one built from the image.
"""

from __future__ import annotations

import ctypes
import json
import re
import struct
import time
from dataclasses import dataclass

import wasmtime

from sandbox import _stackguard, limits
from sandbox._engine import Compiled
from sandbox._guest import TAG_EXCEPTION, TAG_OBJECT, UNDEFINED, Guest, tag
from sandbox._prelude import RUN_PREFIX, RUN_SUFFIX
from sandbox.errors import InvalidContext
from sandbox.limits import Limits
from sandbox.result import ExecError, Result, js_error, trap_error
from sandbox.snapshot import Template, arm_stack

POSTMORTEM_FUEL = 200_000_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_OK_META = '[1,"","","",false,false]'
_NEVER_SETTLED = ExecError("Error", "the code's promise never settled", "")


_FIRST_LINE = re.compile(r"<code>:1:(\d+)")


def _clean(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)


def _clean_stack(stack: str, prefix_len: int) -> str:
    """Drop the prelude's and the wrapper's frames; make line-1 columns relative to the code."""
    kept = [
        _FIRST_LINE.sub(lambda m: f"<code>:1:{max(1, int(m.group(1)) - prefix_len)}", line)
        for line in stack.splitlines()
        if "<prelude>" not in line and not line.strip().startswith("at <eval> (<code>")
    ]
    return "\n".join(kept)


@dataclass(slots=True)
class _Outcome:
    packed: str | None = None
    trap: wasmtime.Trap | wasmtime.WasmtimeError | None = None


class Instance:
    """A guest whose memory equals the template image between runs."""

    def __init__(self, compiled: Compiled, template: Template, fast: bool, guest: Guest | None):
        if guest is None:
            guest = Guest(compiled, fast)
            guest.grow_to(template.size)
            guest.write(0, template.image)
            arm_stack(guest, template)
        self.guest = guest
        self.template = template
        self.memory_cap = 0
        self.broken = False  # set when a run left it unusable but raised instead of returning
        self._image = ctypes.cast(ctypes.c_char_p(template.image), ctypes.c_void_p).value or 0

    def close(self) -> None:
        """Drop the store; the instance is unusable afterwards."""
        self.guest.close()

    def _reset(self) -> None:
        g, t = self.guest, self.template
        low = g.get_global(_stackguard.EXPORT_LOW) & 0xFFFFFFFF
        base = g.base()
        ctypes.memmove(base, self._image, t.stack_lo)
        ctypes.memmove(base + low, self._image + low, t.size - low)
        g.set_global(_stackguard.EXPORT_LOW, t.stack_top)

    def _set_context(self, context_json: str) -> None:
        g, t = self.guest, self.template
        if context_json.lstrip()[:1] != "{":
            raise InvalidContext("context must be a JSON object")
        data = context_json.encode("utf-8", errors="surrogatepass") + b"\0"
        addr = g.alloc(data)
        value = g.parse_json(t.ctx, addr, len(data) - 1, t.filename)
        if tag(value) != TAG_OBJECT:
            message = g.string(t.ctx, g.get_exception(t.ctx), t.lenp)
            raise InvalidContext(f"context is not valid JSON: {message}")
        g.set_property_str(t.ctx, t.global_obj, t.context_key, value)

    def _execute(self, source: bytes, context_json: str) -> str:
        g, t = self.guest, self.template
        if context_json != "{}" and context_json.strip() != "{}":
            self._set_context(context_json)
        if len(source) <= t.source_capacity:
            addr = t.source
            g.write(addr, source)
        else:
            addr = g.alloc(source)
        value = g.eval(t.ctx, addr, len(source) - 1, t.filename, 0)
        argc = 0
        if tag(value) == TAG_EXCEPTION:
            g.write(t.argv, struct.pack("<q", g.get_exception(t.ctx)))
            argc = 1
        else:
            drain, rt, pctx = g.execute_pending_job, t.rt, t.pctx
            while (status := drain(rt, pctx)) != 0:
                if status < 0:
                    g.get_exception(t.ctx)
        return self._finish(argc)

    def _finish(self, argc: int) -> str:
        g, t = self.guest, self.template
        packed = g.call(t.ctx, t.finish, UNDEFINED, argc, t.argv)
        if tag(packed) == TAG_EXCEPTION:
            raise MemoryError("finish() failed")
        return g.string(t.ctx, packed, t.lenp)

    def _postmortem(self, timeout_ticks: int) -> str | None:
        """Read the output of a run that trapped (best effort, bounded by fuel and time)."""
        g, t = self.guest, self.template
        try:
            g.set_global(_stackguard.EXPORT_SP, t.stack_top)
            g.set_global(_stackguard.EXPORT_LOW, t.stack_top)
            g.store.set_fuel(POSTMORTEM_FUEL)
            g.store.set_epoch_deadline(timeout_ticks)
            return self._finish(0)
        except (wasmtime.Trap, wasmtime.WasmtimeError, MemoryError, ValueError):
            return None

    def run(
        self, code: bytes, context_json: str, lim: Limits, seed: int, tick_ms: int
    ) -> tuple[Result, bool]:
        """Run ``code``; return the result and whether this instance must be discarded."""
        g, t = self.guest, self.template
        store = g.store
        prefix = (
            RUN_PREFIX % (lim.max_output_lines, lim.max_output_bytes, lim.max_result_bytes)
        ).encode()
        source = prefix + code + RUN_SUFFIX.encode() + b"\0"
        store.set_fuel(lim.fuel)
        store.set_epoch_deadline(lim.deadline_ticks(tick_ms))
        if self.memory_cap != lim.memory_bytes:
            store.set_limits(memory_size=lim.memory_bytes)
            self.memory_cap = lim.memory_bytes
        if t.random_state is not None:
            g.write(t.random_state, struct.pack("<Q", seed))
        outcome = _Outcome()
        wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
        try:
            outcome.packed = self._execute(source, context_json)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            outcome.trap = exc
        except InvalidContext:
            self.broken = g.size() != t.size
            if not self.broken:
                self._reset()
            raise
        except MemoryError:
            outcome.packed = None
        cpu_ms = (time.thread_time_ns() - cpu0) / 1e6
        wall_ms = (time.perf_counter_ns() - wall0) / 1e6
        fuel = lim.fuel - store.get_fuel()
        memory = g.size()
        discard = outcome.trap is not None or memory != t.size
        guard = bool(g.get_global(_stackguard.EXPORT_OVERFLOW))
        if outcome.trap is not None:
            outcome.packed = self._postmortem(2)
        result = _build_result(
            outcome, guard, lim, memory, fuel, cpu_ms, wall_ms, seed, discard, len(prefix)
        )
        if not discard:
            self._reset()
        return result, discard


def _output(lines: list[str], lim: Limits) -> tuple[tuple[str, ...], bool]:
    kept: list[str] = []
    total = 0
    for line in lines:
        clean = _clean(line)
        total += len(clean.encode("utf-8"))
        if len(kept) >= lim.max_output_lines or total > lim.max_output_bytes:
            return tuple(kept), True
        kept.append(clean)
    return tuple(kept), False


def _build_result(
    outcome: _Outcome,
    guard: bool,
    lim: Limits,
    memory: int,
    fuel: int,
    cpu_ms: float,
    wall_ms: float,
    seed: int,
    rebuilt: bool,
    prefix_len: int,
) -> Result:
    output: tuple[str, ...] = ()
    error: ExecError | None = None
    result_json = "null"
    meta: list[object] = [0, "", "", "", False, False]
    if outcome.packed is not None:
        meta_text, lines_text, result_json = outcome.packed.split("\n", 2)
        meta = json.loads(meta_text) if meta_text != _OK_META else [1, "", "", "", False, False]
        if lines_text != "[]":
            output, cut = _output(json.loads(lines_text), lim)
            meta[5] = bool(meta[5]) or cut
    state = meta[0]
    if outcome.trap is not None:
        error = trap_error(outcome.trap, guard)
    elif outcome.packed is None:
        error = ExecError(limits.MEMORY, "memory limit exceeded", "")
    elif meta[5]:
        error = ExecError(limits.OUTPUT, "console output exceeded its limit", "")
    elif state == 2:
        error = js_error(
            _clean(str(meta[1])),
            _clean(str(meta[2])),
            _clean_stack(_clean(str(meta[3])), prefix_len),
            bool(meta[4]),
            memory,
            lim.memory_bytes,
        )
    elif state == 0:
        error = _NEVER_SETTLED
    elif state == 3 or len(result_json.encode("utf-8", errors="replace")) > lim.max_result_bytes:
        error = ExecError(limits.RESULT, "the returned value's JSON exceeds its limit", "")
    if error is not None:
        result_json = "null"
    return Result(
        ok=error is None,
        result_json=result_json,
        output=output,
        error=error,
        fuel=fuel,
        cpu_ms=cpu_ms,
        wall_ms=wall_ms,
        peak_memory=memory,
        random_seed=seed,
        rebuilt=rebuilt,
    )
