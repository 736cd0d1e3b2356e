"""Instances for concurrent runs: one per running thread, reused LIFO, rebuilt when a run
left one unusable (its memory grew, or an engine fault).

A store must not be used by two threads at once, so each run checks an instance out. Idle
instances stay warm on a stack; when none is idle a new one is built from the template image
(~0.2 ms), so the number of instances follows the caller's concurrency (the service bounds
it with its worker-thread pool).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandbox.execution import Instance
from sandbox.result import SandboxStats


class Pool:
    """Checkout/return of instances, with counters."""

    def __init__(self, factory: Callable[[], Instance], first: Instance | None = None) -> None:
        self._factory = factory
        self._idle: list[Instance] = [first] if first is not None else []
        self._lock = threading.Lock()
        self._instances = len(self._idle)
        self._in_use = 0
        self._runs = 0
        self._rebuilds = 0
        self._closed = False

    def acquire(self) -> Instance:
        """Take an idle instance or build one."""
        with self._lock:
            self._in_use += 1
            if self._idle:
                return self._idle.pop()
            self._instances += 1
        try:
            return self._factory()
        except BaseException:
            with self._lock:
                self._in_use -= 1
                self._instances -= 1
            raise

    def release(self, instance: Instance, discard: bool) -> None:
        """Give ``instance`` back; ``discard`` replaces it with a fresh one from the image."""
        with self._lock:
            self._runs += 1
            self._in_use -= 1
            if discard:
                self._rebuilds += 1
            closed = self._closed
        if discard or closed:
            instance.close()
            if closed:
                with self._lock:
                    self._instances -= 1
                return
            try:
                instance = self._factory()
            except BaseException:
                with self._lock:
                    self._instances -= 1
                raise
        with self._lock:
            if not self._closed:
                self._idle.append(instance)
                return
            self._instances -= 1
        instance.close()

    def close(self) -> None:
        """Close idle instances now and busy ones when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._instances -= len(idle)
        for instance in idle:
            instance.close()

    @property
    def stats(self) -> SandboxStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return SandboxStats(self._runs, self._rebuilds, self._instances, self._in_use)
