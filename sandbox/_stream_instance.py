"""Instances for streamed runs: console lines go out as they are written; the host can stop.

A :class:`StreamingInstance` differs from a plain :class:`~sandbox.execution.Instance` in two
ways, both confined to its own store so plain runs keep their exact cost and behaviour:

* the prelude's stream flag is set, so ``console.*`` lines reach :mod:`sandbox._stream`;
* its store has an epoch-deadline callback (wasmtime's ``epoch_deadline_callback``, run by
  the engine in the thread executing the code, so it may touch the store): the deadline is
  one tick away and the callback extends it tick by tick. At each tick it checks the run's
  ``stop`` event and the run's deadline (the one a plain run has, kept by the clock); either
  ends the run with an error, which the run then reports as ``StoppedError`` or
  ``TimeoutError``.

The only private wasmtime call is the callback registration (``wasmtime._bindings``: the
public API has no binding for it).
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import replace
from typing import Any

from sandbox import _stream, limits
from sandbox._engine import Compiled
from sandbox.execution import Instance
from sandbox.limits import Limits
from sandbox.result import ExecError, Result
from sandbox.snapshot import Template

__all__ = ["STOPPED", "StreamingInstance", "calibrate"]

STOPPED = "StoppedError"
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
_READ_FUEL = 1_000_000  # for the host's own wasm call that reads a line
_TAG_STRING = -7
_STRING_HEADER = 20  # sizeof(JSString) in this build (checked by ``calibrate``)
_TIMEOUT = ExecError(limits.TIMEOUT, "execution timed out", "")
_STOPPED = ExecError(STOPPED, "the run was stopped by the host", "")


class StreamingInstance(Instance):
    """An instance whose runs stream console lines and can be stopped at the next tick."""

    streams = 1

    def __init__(
        self,
        compiled: Compiled,
        template: Template,
        fast: bool,
        line_fuel: int = 0,
    ) -> None:
        super().__init__(compiled, template, fast, None)
        self.stop: threading.Event | None = None
        self.line_fuel = line_fuel  # the glue's fuel for handing over a line, given back
        self._until_ns = 0  # the run's deadline (perf_counter ns)
        self._ended: str | None = None
        self._callback = self._register()

    def _register(self) -> Any:
        from wasmtime import _bindings as ffi

        proto = ffi._wasmtime_store_epoch_deadline_callback.argtypes

        def on_deadline(_ctx: Any, _data: Any, delta: Any, kind: Any) -> int:
            try:
                reason = self._tick()
            except BaseException:  # never let an exception leave a C callback
                reason = "stopped"
            if reason is None:
                delta[0] = 1
                kind[0] = _CONTINUE
                return 0
            self._ended = self._ended or reason
            error = ffi.wasmtime_error_new(reason.encode())
            return ctypes.cast(error, ctypes.c_void_p).value or 0

        callback = proto[1](on_deadline)
        ffi.wasmtime_store_epoch_deadline_callback(
            self.guest.store.ptr(), callback, None, proto[3]()
        )
        return callback

    def read_line(self) -> str | None:
        """The line in the glue's slot (its JSON literal), or None if the slot is empty.

        Called while the guest is in the host's clock. The string is read straight from
        linear memory (QuickJS ``JSString``: a 20-byte header whose second word holds the
        length and the wide-char bit, then Latin-1 bytes or UTF-16 units), so nothing is
        allocated in the guest. The one wasm call (get the value, drop the reference again)
        runs on fuel of its own; then the run's fuel is put back, plus the glue's fixed cost
        of handing over a line when there was one.
        """
        t = self.template
        saved = self._get_fuel()
        self._set_fuel(_READ_FUEL)
        refund = 0
        try:
            value = self.guest.get_index(t.ctx, t.finish, 0)
            self.guest.free_value(t.ctx, value)  # finish[0] still holds it
            if value >> 32 != _TAG_STRING:
                return None
            refund = self.line_fuel
            addr = self._base + (value & 0xFFFFFFFF)
            word = ctypes.c_uint32.from_address(addr + 4).value
            n, wide = word & 0x7FFF_FFFF, word >> 31
            data = ctypes.string_at(addr + _STRING_HEADER, n * 2 if wide else n)
            return data.decode("utf-16-le", "surrogatepass") if wide else data.decode("latin-1")
        finally:
            self._set_fuel(saved + refund)

    def touched_lib(self) -> bool:
        """Whether the run so far touched a module stand-in of the plain snapshot."""
        return self._need_lib.value != 0

    def _tick(self) -> str | None:
        """Called at every epoch tick of a run: the reason to end it now, or ``None``."""
        stop = self.stop
        if stop is not None and stop.is_set():
            return "stopped"
        return "timeout" if time.perf_counter_ns() >= self._until_ns else None

    def _arm_deadline(self, ticks: int) -> None:
        # by the clock, not by counting callbacks: the host may sleep (timers) between ticks
        self._until_ns = time.perf_counter_ns() + (ticks - 1) * self._tick_ms * 1_000_000
        self._ended = None
        self._set_deadline(1)

    def run(
        self, code: bytes, context_json: str, lim: Limits, seed: int, tick_ms: int
    ) -> tuple[Result, bool]:
        """Run as :meth:`Instance.run`; a run ended by the callback reports why."""
        result, discard = super().run(code, context_json, lim, seed, tick_ms)
        ended, self._ended = self._ended, None
        error = result.error
        if ended is not None and error is not None and error.type == "InternalError":
            result = replace(result, error=_STOPPED if ended == "stopped" else _TIMEOUT)
        return result, discard


# (code, lines): lines of different lengths and kinds (ASCII, wide, escapes), from finish
# (no clock reads: the time read changes a run's fuel by itself)
_PROBES = (
    ("console.log('a'); return 1;", 1),
    ("return {toJSON() { console.log('late', [1]); return 4; }};", 1),
    ("console.log('a'); console.log('bc', 1, {d: [2]}); return 2;", 2),
    ("console.log('\\u4e2d\\ud800', '\\u00e9'); console.log('x'); return 2;", 2),
    (
        "console.log('\u00e9\\n\"' + 'x'.repeat(3000)); console.log(''); console.log(3); return 3;",
        3,
    ),
)
_PROBE_LIMITS = Limits(timeout_ms=5000, fuel=1_000_000_000)


def calibrate(streaming: StreamingInstance, plain: Instance, tick_ms: int = 10) -> int:
    """The fuel the glue spends to hand one line to the host, from probe runs of both
    instances; ``RuntimeError`` unless every probe agrees to the unit. Closes both."""
    costs: set[float] = set()
    try:
        for code, lines in _PROBES:
            data = code.encode()
            base, _ = plain.run(data, "{}", _PROBE_LIMITS, 1, tick_ms)
            seen: list[str] = []
            sink = _stream.Sink(
                streaming.guest.base(), streaming.read_line, seen.append, 99, 1 << 20
            )
            with _stream.streaming(sink):
                streamed, _ = streaming.run(data, "{}", _PROBE_LIMITS, 1, tick_ms)
            if not (base.ok and streamed.ok and tuple(seen) == base.output and len(seen) == lines):
                raise RuntimeError(f"streamed output self-test failed: {streamed} {seen}")
            costs.add((streamed.fuel - base.fuel) / lines)
    finally:
        streaming.close()
        plain.close()
    cost = costs.pop()
    if costs or not cost.is_integer() or cost < 0:
        raise RuntimeError("streamed output: handing over a line does not cost the same fuel")
    return int(cost)
