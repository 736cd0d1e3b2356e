"""``Sandbox``: compile once, snapshot once, then run code in pristine instances from any thread."""

from __future__ import annotations

import os
import struct
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from sandbox import _ffi_calls, snapshot
from sandbox._engine import Compiled, compile_module
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
            _ffi_calls.check_module(self._compiled.module)
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
        self._closed = False
        self._close_lock = threading.Lock()
        self._ticker = Ticker(self._compiled.engine, tick_ms)

    @property
    def compiled(self) -> Compiled:
        """The engine and module this sandbox runs (shared by its instances)."""
        return self._compiled

    def _prepare(self, fast: bool) -> Instance:
        template, guest = snapshot.build(self._compiled, fast)
        template = template.with_random_state(snapshot.find_random_state(guest, template))
        template = template.replace(job_list=snapshot.find_job_list(guest, template))
        self._template = template
        instance = Instance(self._compiled, template, fast, guest)
        self._self_test(instance)
        return instance

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

    def run(
        self,
        code: str,
        context_json: str = "{}",
        limits: Limits = Limits(),  # noqa: B008 - frozen, shared default is safe
        *,
        random_seed: int | None = None,
    ) -> Result:
        """Run ``code`` (the body of an async function) with ``context`` set from JSON.

        Raises ``CodeTooLarge`` or ``InvalidContext`` before running anything; every other
        outcome, including limits hit and errors thrown by the code, is in the ``Result``.
        ``random_seed`` (default: 8 random bytes) seeds ``Math.random`` for this run.
        """
        if self._closed:
            raise SandboxClosed("the sandbox is closed")
        data = code.encode("utf-8", errors="surrogatepass")
        if len(data) > limits.max_code_bytes:
            raise CodeTooLarge(len(data), limits.max_code_bytes)
        seed = random_seed if random_seed is not None else self._random_seed()
        seed = (seed & 0xFFFF_FFFF_FFFF_FFFF) or 1  # xorshift64* must not start at 0
        instance = self._pool.acquire()
        discard = True
        try:
            result, discard = instance.run(data, context_json, limits, seed, self._tick_ms)
        finally:
            self._pool.release(instance, discard or instance.broken)
        return result

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
        return self._pool.stats

    def close(self) -> None:
        """Stop the ticker and drop idle instances (busy ones are dropped when they finish)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._ticker.stop()
        self._pool.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
