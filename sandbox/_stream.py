"""Console lines handed to the host while the code runs (streamed runs only).

The module exports no function table, so JavaScript reaches the host only through a WASI
import. Streamed runs use instances linked by :func:`stream_compiled`, whose
``wasi_snapshot_preview1.clock_time_get`` is a host function of ours (plain instances keep
wasmtime's own WASI and never see this module). When a run streams (a flag in the prelude's
``caps`` buffer), ``console.*`` puts each line's JSON string literal (a flat string) in a
slot the host can read (``finish[0]``), calls the engine's own ``Date.now`` (one
``clock_time_get``, nothing allocated, the same fuel for every line) and clears the slot.

In ``clock_time_get`` the host asks the thread's :class:`Sink` (see :func:`streaming`) to
look at the slot: a line is read (the instance does that off the run's fuel, and gives back
the glue's fixed cost, so a streamed run is measured and billed exactly like a plain one)
and passed to the callback, synchronously, in the thread running the code. Any other clock
read (the code's own ``Date.now``, ``performance.now``) just gets the time.
"""

from __future__ import annotations

import ctypes
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import wasmtime

from sandbox._engine import Compiled

__all__ = ["Sink", "stream_compiled", "streaming"]

log = logging.getLogger(__name__)

_EINVAL = 28
_CLOCKS: dict[int, Callable[[], int]] = {
    0: time.time_ns,  # realtime
    1: time.monotonic_ns,  # monotonic
    2: time.process_time_ns,  # process cputime
    3: time.thread_time_ns,  # thread cputime
}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_local = threading.local()


class Sink:
    """Turns one streamed run's host calls into lines for ``on_line``.

    ``read`` returns the line in the guest's slot (its JSON literal) or None when the slot
    is empty (a clock read of the code itself). Lines are cut exactly as the run's
    ``output`` will be (at most ``max_lines`` lines and ``max_bytes`` UTF-8 bytes), so what
    was streamed is always a prefix of the final output. An exception from ``on_line`` stops
    the forwarding (it never reaches the guest). ``skip``: the first lines are not forwarded
    (a second attempt's lines the first one sent); forwarding stops for good once ``hold()``
    is true (a first attempt that will be run again).
    """

    def __init__(
        self,
        base: int,
        read: Callable[[], str | None],
        on_line: Callable[[str], None],
        max_lines: int,
        max_bytes: int,
        *,
        skip: int = 0,
        hold: Callable[[], bool] | None = None,
    ) -> None:
        self.base = base
        self._skip = skip
        self._hold = hold
        self.sent = 0
        self._read = read
        self._on_line = on_line
        self._lines = 0
        self._bytes = 0
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self.closed = False

    def pull(self) -> None:
        """Take the line in the guest's slot, if there is one, and forward it."""
        raw = self._read()
        if raw is None or self.closed:
            return
        try:
            text = json.loads(raw)
        except ValueError:
            return
        if not isinstance(text, str):
            return
        text = _LONE_SURROGATE.sub("\ufffd", text)
        self._bytes += len(text.encode("utf-8"))
        if self._lines + 1 > self._max_lines or self._bytes > self._max_bytes:
            self.closed = True
            return
        self._lines += 1
        if self._lines <= self._skip:
            return
        if self._hold is not None and self._hold():
            self.closed = True
            return
        self.sent += 1
        try:
            self._on_line(text)
        except Exception:
            log.exception("output callback failed; no further lines are streamed")
            self.closed = True


@contextmanager
def streaming(sink: Sink) -> Iterator[None]:
    """Install ``sink`` for the runs on this thread while the block runs."""
    _local.sink = sink
    try:
        yield
    finally:
        _local.sink = None


def _clock_time_get(clock_id: int, _precision: int, out: int) -> int:
    clock = _CLOCKS.get(clock_id)
    sink: Sink | None = getattr(_local, "sink", None)
    if clock is None or sink is None:
        return _EINVAL
    sink.pull()
    ctypes.c_uint64.from_address(sink.base + (out & 0xFFFFFFFF)).value = clock()
    return 0


def stream_compiled(compiled: Compiled) -> Compiled:
    """``compiled`` with an instance-pre whose ``clock_time_get`` is the stream's host call."""
    linker = wasmtime.Linker(compiled.engine)
    linker.define_wasi()
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    linker.allow_shadowing = True
    linker.define_func(
        "wasi_snapshot_preview1",
        "clock_time_get",
        wasmtime.FuncType([i32, i64, i32], [i32]),
        _clock_time_get,
    )
    return replace(compiled, pre=linker.instantiate_pre(compiled.module))
