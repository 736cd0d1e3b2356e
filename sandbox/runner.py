"""``Sandbox``: compile once, snapshot once, then run code in pristine instances from any thread."""

from __future__ import annotations

import os
import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from sandbox import _exports, _stream, _stream_instance, modules, snapshot
from sandbox._engine import Compiled, compile_module
from sandbox._stream_instance import StreamingInstance
from sandbox.errors import CodeTooLarge, EngineUnavailable, SandboxClosed
from sandbox.execution import Instance
from sandbox.limits import Limits
from sandbox.pool import Pool
from sandbox.result import EngineInfo, Result, SandboxStats
from sandbox.ticker import Ticker

DEFAULT_CACHE_DIR = Path("var/cache")
_SELF_TEST_LIMITS = Limits(timeout_ms=2000, fuel=1_000_000_000)
_PROBE = "const x = 10; const y = 20; console.log('probe', {a: 1}); return x + y;"
_RANDOM_PROBE = "return [Math.random(), Math.random()];"
_SEED_BATCH = 4096
_LIVE: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def _forget_seeds() -> None:
    """After ``fork``: a child must not reuse the seeds its parent already read."""
    for box in list(_LIVE):
        box._seeds = iter(())


os.register_at_fork(after_in_child=_forget_seeds)


class Sandbox:
    """Runs JavaScript (the body of an async function) in a fresh QuickJS state per call.

    Building one compiles or loads the module (``cache_dir``, default ``./var/cache``),
    builds the snapshot, self-tests the fast call path (falling back to the public wasmtime
    API if it fails) and starts one epoch-ticker thread. ``run`` is blocking and thread-safe.
    """

    def __init__(self, cache_dir: Path | None = None, *, tick_ms: int = 10) -> None:
        self._tick_ms = tick_ms
        self._seeds: Iterator[tuple[int]] = iter(())
        _LIVE.add(self)
        self._compiled = compile_module(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR)
        try:
            _exports.check_module(self._compiled.module)
        except TypeError as exc:
            raise EngineUnavailable(str(exc)) from exc
        try:
            first = self._prepare(fast=True)
            fast = True
        except Exception:
            first = self._prepare(fast=False)
            fast = False
        self._fast = fast
        self.info = EngineInfo(self._compiled.wasm_sha256, self._compiled.wasmtime_version, fast)
        self._pool = Pool(self._new_instance, first)
        self._plain_pool = Pool(self._new_plain_instance, self._first_plain)
        self._stream_pool = Pool(lambda: self._new_streaming_instance(full=True))
        self._plain_stream_pool = Pool(lambda: self._new_streaming_instance(full=False))
        self._line_fuel: dict[bool, int] = {}
        self._stream_compiled: Compiled | None = None
        self._stream_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()
        self._ticker = Ticker(self._compiled.engine, tick_ms)

    @property
    def compiled(self) -> Compiled:
        """The engine and module this sandbox runs (shared by its instances)."""
        return self._compiled

    def _prepare(self, fast: bool) -> Instance:
        plain = self._build(fast, full=False)  # code that needs no module or Worker global
        self._self_test(plain)
        instance = self._build(fast, full=True)
        self._self_test(instance)
        self._plain_template, self._template = plain.template, instance.template
        self._first_plain = plain
        return instance

    def _build(self, fast: bool, full: bool) -> Instance:
        template, guest = snapshot.build(self._compiled, fast, full)
        template = template.with_random_state(snapshot.find_random_state(guest, template))
        template = template.replace(job_list=snapshot.find_job_list(guest, template))
        return Instance(self._compiled, template, fast, guest)

    def _self_test(self, instance: Instance) -> None:
        """Check the call path end to end on known answers (epoch never advances here)."""
        ticks = 1 << 30
        lim = _SELF_TEST_LIMITS
        res, discard = instance.run(_PROBE.encode(), "{}", lim, 1, ticks)
        again, _ = instance.run(_PROBE.encode(), "{}", lim, 1, ticks)
        if not (res.ok and res.result_json == "30" and res.output == ('probe {"a":1}',)):
            raise RuntimeError(f"self-test failed: {res}")
        if discard or again.fuel != res.fuel:
            raise RuntimeError("self-test: run is not repeatable")
        seeded = [instance.run(_RANDOM_PROBE.encode(), "{}", lim, s, ticks)[0] for s in (7, 9, 7)]
        if not (seeded[0].result_json == seeded[2].result_json != seeded[1].result_json):
            raise RuntimeError("self-test: Math.random is not reseeded")

    def _new_instance(self) -> Instance:
        return Instance(self._compiled, self._template, self._fast, None)

    def _new_plain_instance(self) -> Instance:
        return Instance(self._compiled, self._plain_template, self._fast, None)

    def _new_streaming_instance(self, full: bool) -> Instance:
        template = self._template if full else self._plain_template
        with self._stream_lock:  # linked and calibrated once, when the first one is needed
            if self._stream_compiled is None:
                self._stream_compiled = _stream.stream_compiled(self._compiled)
            compiled = self._stream_compiled
            if full not in self._line_fuel:  # measured once per snapshot
                plain = self._new_instance() if full else self._new_plain_instance()
                self._line_fuel[full] = _stream_instance.calibrate(
                    StreamingInstance(compiled, template, self._fast), plain
                )
        return StreamingInstance(compiled, template, self._fast, self._line_fuel[full])

    def run(
        self,
        code: str,
        context_json: str = "{}",
        limits: Limits = Limits(),  # noqa: B008 - frozen, shared default is safe
        *,
        random_seed: int | None = None,
        on_output: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Result:
        """Run ``code`` (the body of an async function) with ``context`` set from JSON.

        Raises ``CodeTooLarge`` or ``InvalidContext`` before running anything; every other
        outcome, including limits hit and errors thrown by the code, is in the ``Result``.
        ``random_seed`` (default: 8 random bytes) seeds ``Math.random`` for this run.

        With ``on_output`` or ``stop`` the run streams (``sandbox._stream_instance``):
        ``on_output`` gets each console line, in this thread, as the code writes it (the
        lines the result's ``output`` will hold, in order); setting ``stop`` ends the run at
        the next epoch tick with a ``StoppedError`` result (what ran is measured as usual).
        """
        if self._closed:
            raise SandboxClosed("the sandbox is closed")
        data = code.encode("utf-8", errors="surrogatepass")
        if len(data) > limits.max_code_bytes:
            raise CodeTooLarge(len(data), limits.max_code_bytes)
        seed = random_seed if random_seed is not None else self._random_seed()
        seed = (seed & 0xFFFF_FFFF_FFFF_FFFF) or 1  # xorshift64* must not start at 0
        if on_output is not None or stop is not None:
            return self._run_streaming(code, data, context_json, limits, seed, on_output, stop)
        first: Result | None = None
        if not modules.may_need_lib(code):  # the plain snapshot (see sandbox.modules)
            instance = self._plain_pool.acquire()
            discard = True
            try:
                first, discard = instance.run(data, context_json, limits, seed, self._tick_ms)
                needs_lib = instance.needs_lib
            finally:
                self._plain_pool.release(instance, discard or instance.broken)
            if not needs_lib:
                return first
            limits = modules.remaining(limits, first)
        instance = self._pool.acquire()
        discard = True
        try:
            result, discard = instance.run(data, context_json, limits, seed, self._tick_ms)
        finally:
            self._pool.release(instance, discard or instance.broken)
        return result if first is None else modules.rerun(first, result)

    def _run_streaming(
        self,
        code: str,
        data: bytes,
        context_json: str,
        limits: Limits,
        seed: int,
        on_output: Callable[[str], None] | None,
        stop: threading.Event | None,
    ) -> Result:
        """A streamed run picks its snapshot as a plain one does (and runs again in the full
        one when the plain one was not enough); lines are sent once: the first attempt stops
        sending when the code touches a module stand-in, the second skips what was sent."""
        on_line = on_output or (lambda _line: None)
        args = (data, context_json, limits, seed, on_line, stop)
        if not modules.may_need_lib(code):
            first, needs_lib, sent = self._stream_once(self._plain_stream_pool, *args, skip=-1)
            if not needs_lib:
                return first
            rest = modules.remaining(limits, first)
            args = (data, context_json, rest, seed, on_line, stop)
            result, _, _ = self._stream_once(self._stream_pool, *args, skip=sent)
            return modules.rerun(first, result)
        return self._stream_once(self._stream_pool, *args, skip=0)[0]

    def _stream_once(
        self,
        pool: Pool,
        data: bytes,
        context_json: str,
        limits: Limits,
        seed: int,
        on_line: Callable[[str], None],
        stop: threading.Event | None,
        *,
        skip: int,
    ) -> tuple[Result, bool, int]:
        """One streamed attempt: its result, whether it needs the full snapshot, and how many
        lines it sent. ``skip``: lines not to send again (-1: stop sending at a stand-in)."""
        instance = pool.acquire()
        assert isinstance(instance, StreamingInstance)
        sink = _stream.Sink(
            instance.guest.base(),
            instance.read_line,
            on_line,
            limits.max_output_lines,
            limits.max_output_bytes,
            skip=max(skip, 0),
            hold=instance.touched_lib if skip < 0 else None,
        )
        instance.stop = stop
        discard = True
        try:
            with _stream.streaming(sink):
                result, discard = instance.run(data, context_json, limits, seed, self._tick_ms)
            needs_lib = instance.needs_lib  # read before another thread can take the instance
        finally:
            instance.stop = None
            pool.release(instance, discard or instance.broken)
        return result, needs_lib, sink.sent

    def _random_seed(self) -> int:
        """8 bytes from ``os.urandom``, read 4 KiB at a time (one syscall per 512 runs)."""
        try:
            return next(self._seeds)[0]
        except StopIteration:
            self._seeds = struct.iter_unpack("<Q", os.urandom(_SEED_BATCH))
            return next(self._seeds)[0]

    @property
    def stats(self) -> SandboxStats:
        """Runs, rebuilds, live instances and instances currently running code."""
        full, plain = self._pool.stats, self._plain_pool.stats
        return SandboxStats(
            full.runs + plain.runs,
            full.rebuilds + plain.rebuilds,
            full.instances + plain.instances,
            full.in_use + plain.in_use,
        )

    def close(self) -> None:
        """Stop the ticker and drop idle instances (busy ones are dropped when they finish)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._ticker.stop()
        self._pool.close()
        self._plain_pool.close()
        self._stream_pool.close()
        self._plain_stream_pool.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
