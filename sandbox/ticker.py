"""The epoch ticker: one thread per Sandbox advancing the engine's epoch every ``tick_ms``.

A run's deadline is ``ceil(timeout_ms / tick_ms) + 1`` ticks after it starts, so it is
interrupted between ``timeout_ms`` and ``timeout_ms + tick_ms`` later. ctypes releases the
GIL during wasm calls, so a Python thread is enough.
"""

from __future__ import annotations

import threading

import wasmtime


class Ticker:
    """Calls ``engine.increment_epoch()`` every ``tick_ms`` until stopped."""

    def __init__(self, engine: wasmtime.Engine, tick_ms: int) -> None:
        if tick_ms < 1:
            raise ValueError("tick_ms must be >= 1")
        self._engine = engine
        self._interval = tick_ms / 1000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="codexec-epoch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._engine.increment_epoch()

    def stop(self) -> None:
        """Stop and join the thread (idempotent)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
