"""One instance running one piece of code: set limits, run, read the outcome, reset.

After a normal run the memory is put back from the template image in place (only the bytes a
run can have touched: everything except the part of the stack block below the lowest stack
pointer the run reached). After a trap, or when memory grew (wasm memory cannot shrink), the
instance is not trusted again: the caller replaces it with a fresh one built from the image.

A run costs ``JS_Eval`` of the wrapped code (an async function called at once), one
``JS_ExecutePendingJob`` per queued job (the job queue is read from ``JSRuntime`` in linear
memory, see ``snapshot.find_job_list``, so no call is spent to find it empty; code that never
awaits queues none), then ``JS_PromiseState`` and ``JS_PromiseResult`` of the function's
promise. A run that logged nothing and returned an int, a boolean, null or undefined ends
there: the host writes that JSON itself. Otherwise ``JS_Call(finish)`` and
``JS_ToCStringLen2`` read its packed answer. The output caps and the promise state go into the
prelude's ``caps`` buffer by plain memory writes.
Linear memory never moves (``memory_may_move`` is off in the engine config), so the host
address of every scratch slot is computed once per instance.
"""

from __future__ import annotations

import ctypes
import struct
import time
from ctypes import c_int32, c_uint32, c_uint64

import wasmtime

from sandbox import _entropy, _stackguard
from sandbox._engine import Compiled
from sandbox._guest import (
    TAG_BOOL,
    TAG_EXCEPTION,
    TAG_INT,
    TAG_NULL,
    TAG_OBJECT,
    TAG_UNDEFINED,
    UNDEFINED,
    Guest,
    tag,
)
from sandbox._outcome import OK_PLAIN, Measured, Outcome, build_result
from sandbox._prelude import (
    CAP_CLOCK,
    CAP_KEY,
    CAP_LOGGED,
    CAP_NEED_LIB,
    CAP_RANDOM,
    CAP_SLOTS,
    CAP_STATE,
    CAP_TIMERS,
    RUN_PREFIX,
    RUN_SUFFIX,
)
from sandbox.errors import InvalidContext
from sandbox.limits import Limits
from sandbox.result import Result, restorable_after
from sandbox.snapshot import Template, arm_stack

POSTMORTEM_FUEL = 200_000_000
_PREFIX = RUN_PREFIX.encode()
_SUFFIX = RUN_SUFFIX.encode() + b"\0"
_CAP_MAX = 0x7FFF_FFFF
_CAPS = struct.Struct(f"<{CAP_KEY}i")  # the slots before the run's random key
_CAPS_BYTES = 4 * CAP_SLOTS  # written per run: the packed slots, then a fresh key
_FULFILLED = 1
_SIMPLE = {  # finish()'s answer for these JSValue tags, by the low bit of the value
    TAG_BOOL: (OK_PLAIN + "false", OK_PLAIN + "true"),
    TAG_NULL: (OK_PLAIN + "null",) * 2,
    TAG_UNDEFINED: (OK_PLAIN + "null",) * 2,
}
# LLVM's wasm leaf functions use up to 128 bytes below __stack_pointer without moving it, so
# the stack guard never sees them: copy back that much below the lowest pointer it recorded
# (it stays above the stack block: below stack_limit = stack_lo + 256 a run traps).
_RED_ZONE = 128
_OK_PLAIN_LEN = len(OK_PLAIN)
_LOW = _stackguard.EXPORT_LOW
# libc memmove bound through PyDLL: copies with the GIL held (ctypes.memmove releases and
# re-takes it, which under load costs far more than the copy itself).
_memmove = ctypes.PyDLL(None).memmove
_memmove.restype = ctypes.c_void_p
_memmove.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_string_at = ctypes.string_at
_perf_ns = time.perf_counter_ns
_cpu_ns = time.thread_time_ns
_TRAPS = (wasmtime.Trap, wasmtime.WasmtimeError)


class Instance:
    """A guest whose memory equals the template image between runs."""

    streams = 0  # the caps buffer's stream flag (1 in ``_stream_instance.StreamingInstance``)

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
        x = guest.exports
        self._set_fuel, self._get_fuel, self._set_deadline = x.set_fuel, x.get_fuel, x.set_deadline
        self._data_size = x.data_size
        self._get_low, self._set_low = x.global_getter(_LOW), x.global_setter(_LOW)
        self._eval, self._drain, self._to_cstring = (
            guest.eval,
            guest.execute_pending_job,
            guest.to_cstring,
        )
        self._call, self._promise_state, self._promise_result = (
            guest.call,
            guest.promise_state,
            guest.promise_result,
        )
        self._image = ctypes.cast(ctypes.c_char_p(template.image), ctypes.c_void_p).value or 0
        self._base = base = guest.base()
        self._len = c_uint32.from_address(base + template.lenp)
        self._caps_addr = base + template.caps
        self._state = c_int32.from_address(base + template.caps + 4 * CAP_STATE)
        self._logged = c_int32.from_address(base + template.caps + 4 * CAP_LOGGED)
        self._clock = c_int32.from_address(base + template.caps + 4 * CAP_CLOCK)
        self._random = c_int32.from_address(base + template.caps + 4 * CAP_RANDOM)
        self._timers = c_int32.from_address(base + template.caps + 4 * CAP_TIMERS)
        self._need_lib = c_int32.from_address(base + template.caps + 4 * CAP_NEED_LIB)
        self.needs_lib = False  # the last run touched a stand-in of the plain snapshot
        self._run_start = 0  # perf_counter_ns at the start of the current run
        rs = template.random_state
        self._seed = c_uint64.from_address(base + rs) if rs is not None else None
        jobs = template.job_list
        self._jobs_next = c_uint32.from_address(base + jobs + 4) if jobs is not None else None
        self._lim: Limits | None = None
        self._tick_ms = 0
        self._caps = bytes(_CAPS.size)
        self._ticks = 0
        self._source_used = 0  # bytes of the source buffer written since the last reset
        t = template
        self._layout = (t.source, t.source_end, t.stack_lo - t.source_end, t.size, t.stack_top)

    def close(self) -> None:
        """Drop the store; the instance is unusable afterwards."""
        self.guest.close()

    def _reset(self) -> None:
        """Copy back what a run can have written (see ``Template``: the parts it skips)."""
        source, source_end, gap, size, stack_top = self._layout
        low = (self._get_low() & 0xFFFFFFFF) - _RED_ZONE
        base, image = self._base, self._image
        _memmove(base, image, source + self._source_used)
        _memmove(base + source_end, image + source_end, gap)
        _memmove(base + low, image + low, size - low)
        self._source_used = 0
        self._set_low(stack_top)

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

    def _string(self, value: int) -> str:
        """``ToString(value)`` (for ``finish``: its packed answer); MemoryError if that failed."""
        t = self.template
        ptr = self._to_cstring(t.ctx, t.lenp, value, 0) & 0xFFFFFFFF
        if not ptr:
            raise MemoryError("finish() failed")
        return _string_at(self._base + ptr, self._len.value).decode("utf-8", errors="replace")

    def _finish(self, state: int, value: int) -> str:
        """``finish`` called with ``value`` as ``this``: the packed answer of the run."""
        t = self.template
        self._state.value = state
        packed = self._call(t.ctx, t.finish, value, 0, t.argv)
        if packed >> 32 == TAG_EXCEPTION:
            raise MemoryError("finish() failed")
        return self._string(packed)

    def _execute(self, source: bytes, context_json: str) -> str:
        t = self.template
        if context_json != "{}" and context_json.strip() != "{}":
            self._set_context(context_json)
        n = len(source)
        if n <= t.source_capacity:
            addr = t.source
            self._source_used = n
            _memmove(self._base + addr, source, n)
        else:
            addr = self.guest.alloc(source)
        value = self._eval(t.ctx, addr, n - 1, t.filename, 0)
        if value >> 32 == TAG_EXCEPTION:  # it did not compile (or the wrapper threw)
            return self._finish(2, self.guest.get_exception(t.ctx))
        self._drain_jobs()
        if self._timers.value:
            self._run_timers()
        state = self._promise_state(t.ctx, value)
        if state < 0:  # not a promise: only code that closed the wrapper early gets here
            return self._finish(_FULFILLED, value)
        if state == 0:
            return self._finish(0, UNDEFINED)
        result = self._promise_result(t.ctx, value)
        if state == _FULFILLED and not self._logged.value:
            kind = result >> 32
            if kind == TAG_INT:  # what finish() would answer, without two more calls
                return f"{OK_PLAIN}{((result & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000}"
            if kind in _SIMPLE:
                return _SIMPLE[kind][result & 1]
        return self._finish(state, result)

    def _drain_jobs(self) -> None:
        t = self.template
        drain, rt, pctx, jobs = self._drain, t.rt, t.pctx, self._jobs_next
        if jobs is None:
            while (status := drain(rt, pctx)) != 0:
                if status < 0:
                    self.guest.get_exception(t.ctx)
        else:
            empty = t.job_list
            while jobs.value != empty:
                if (status := drain(rt, pctx)) <= 0:
                    if status == 0:
                        break
                    self.guest.get_exception(t.ctx)

    def _run_timers(self) -> None:
        """Fire timers until none is left: ``tick()`` fires the first due one (then the jobs
        it queued run) or answers the ms until one is due (the host sleeps, never past the
        run's timeout). At the timeout it tells ``tick()`` (``caps[CAP_TIMERS] = -1``), which
        drops the timers and makes the run end in a ``TimeoutError``."""
        t, lim = self.template, self._lim
        deadline = self._run_start + (lim.timeout_ms if lim is not None else 0) * 1_000_000
        while self._timers.value > 0:
            answer = self._call(t.ctx, t.tick, UNDEFINED, 0, t.argv)
            if answer >> 32 != TAG_INT:  # tick() itself failed (out of memory)
                self.guest.get_exception(t.ctx)
                return
            wait_ms = ((answer & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
            if wait_ms == 0:
                self._drain_jobs()
            elif wait_ms > 0:
                left = deadline - _perf_ns()
                if left <= 0:
                    self._timers.value = -1
                    self._call(t.ctx, t.tick, UNDEFINED, 0, t.argv)
                    return
                time.sleep(min(wait_ms * 1_000_000, left) / 1e9)

    def _postmortem(self, timeout_ticks: int) -> str | None:
        """Read the output of a run that trapped (best effort, bounded by fuel and time)."""
        g, t = self.guest, self.template
        try:
            g.set_global(_stackguard.EXPORT_SP, t.stack_top)
            g.set_global(_LOW, t.stack_top)
            self._set_fuel(POSTMORTEM_FUEL)
            self._set_deadline(timeout_ticks)
            return self._finish(0, UNDEFINED)
        except (wasmtime.Trap, wasmtime.WasmtimeError, MemoryError, ValueError):
            return None

    def _arm_deadline(self, ticks: int) -> None:
        """Set the epoch deadline of a run starting now."""
        self._set_deadline(ticks)

    def _configure(self, lim: Limits, tick_ms: int) -> None:
        """Per-``Limits`` work, done again only when the limits change."""
        caps = (lim.max_output_lines, lim.max_output_bytes, lim.max_result_bytes)
        slots = (0, 0, self.streams, lim.module_mask) + (0,) * (CAP_KEY - 7)
        self._caps = _CAPS.pack(*(min(cap, _CAP_MAX) for cap in caps), *slots)
        self._ticks = lim.deadline_ticks(tick_ms)
        if self.memory_cap != lim.memory_bytes:
            self.guest.store.set_limits(memory_size=lim.memory_bytes)
            self.memory_cap = lim.memory_bytes
        self._lim, self._tick_ms = lim, tick_ms

    def run(
        self, code: bytes, context_json: str, lim: Limits, seed: int, tick_ms: int
    ) -> tuple[Result, bool]:
        """Run ``code``; return the result and whether this instance must be discarded."""
        if lim is not self._lim or tick_ms != self._tick_ms:
            self._configure(lim, tick_ms)
        source = _PREFIX + code + _SUFFIX
        _memmove(self._caps_addr, self._caps + _entropy.key(), _CAPS_BYTES)
        self._set_fuel(lim.fuel)
        self._arm_deadline(self._ticks)
        if self._seed is not None:
            self._seed.value = seed
        packed: str | None = None
        trap: wasmtime.Trap | wasmtime.WasmtimeError | None = None
        wall0, cpu0 = _perf_ns(), _cpu_ns()
        self._run_start = wall0
        try:
            packed = self._execute(source, context_json)
        except _TRAPS as exc:
            trap = exc
        except InvalidContext:
            self.broken = self._data_size() != self.template.size
            if not self.broken:
                self._reset()
            raise
        except MemoryError:
            packed = None
        cpu1, wall1 = _cpu_ns(), _perf_ns()
        self.needs_lib = self._need_lib.value != 0
        fuel = lim.fuel - self._get_fuel()
        memory = self._data_size()
        discard = trap is not None or memory != self.template.size
        if not discard and packed is not None and packed.startswith(OK_PLAIN):
            result_json = packed[_OK_PLAIN_LEN:]
            # UTF-8 needs at most 4 bytes per code point: below that the size cannot matter
            if len(result_json) * 4 <= lim.max_result_bytes:
                clock, rand = self._clock.value != 0, self._random.value != 0
                self._reset()
                cpu_ms, wall_ms = (cpu1 - cpu0) / 1e6, (wall1 - wall0) / 1e6
                ok = Result(
                    True, result_json, (), None, fuel, cpu_ms, wall_ms, memory, seed, False, clock,
                    rand,
                )  # fmt: skip
                return ok, False
        moved = discard and self.guest.base() != self._base  # never: memory_may_move is off
        if moved:
            packed, trap = None, wasmtime.WasmtimeError("linear memory moved")
        guard = trap is not None and bool(self.guest.get_global(_stackguard.EXPORT_OVERFLOW))
        if trap is not None and not moved:
            low = self._get_low() & 0xFFFFFFFF  # the postmortem re-arms the watermark
            packed = self._postmortem(2)
            self._set_low(min(low, self._get_low() & 0xFFFFFFFF))
            discard = not restorable_after(trap, guard) or self._data_size() != self.template.size
        cpu_ms, wall_ms, clock = (cpu1 - cpu0) / 1e6, (wall1 - wall0) / 1e6, self._clock.value != 0
        rand = self._random.value != 0
        measured = Measured(fuel, cpu_ms, wall_ms, memory, seed, discard, clock, rand)
        result = build_result(Outcome(packed, trap), guard, lim, measured, len(_PREFIX))
        if not discard:
            if trap is not None:
                self.guest.set_global(_stackguard.EXPORT_SP, self.template.stack_top)
                self.guest.set_global(_stackguard.EXPORT_OVERFLOW, 0)
            self._reset()
        return result, discard
