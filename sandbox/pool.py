"""Instances for concurrent runs: one per running thread, reused LIFO, rebuilt when a run
left one unusable (its memory grew, or an engine fault).

A store must not be used by two threads at once, so each run checks an instance out. Idle
instances stay warm on a stack; when none is idle a new one is built from the template image
(~0.2 ms), so the number of instances follows the caller's concurrency (the service bounds
it with its worker-thread pool). An instance given back unusable is closed at once and its
replacement built by the pool's builder thread (~0.75 ms: a fresh store, then the image
written into fresh pages), so the run that broke it is not kept waiting for that, nor is the
event loop when the run was inline; until the replacement is ready, ``acquire`` builds one
itself if no other instance is idle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sandbox.execution import Instance
from sandbox.result import SandboxStats

log = logging.getLogger(__name__)


class Pool:
    """Checkout/return of instances, with counters."""

    def __init__(self, factory: Callable[[], Instance], first: Instance | None = None) -> None:
        self._factory = factory
        self._idle: list[Instance] = [first] if first is not None else []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._instances = len(self._idle)
        self._in_use = 0
        self._runs = 0
        self._rebuilds = 0
        self._owed = 0  # replacements the builder thread has still to build
        self._builder: threading.Thread | None = None
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
        """Give ``instance`` back; ``discard``: close it, and have a fresh one built from the
        image in the background."""
        with self._lock:
            self._runs += 1
            self._in_use -= 1
            if not (discard or self._closed):
                self._idle.append(instance)
                return
            self._instances -= 1
            if discard:
                self._rebuilds += 1
                if not self._closed:
                    self._owed += 1
                    if self._builder is None:
                        self._builder = threading.Thread(
                            target=self._build, name="codexec-rebuild", daemon=True
                        )
                        self._builder.start()
                    self._wake.notify()
        instance.close()

    def _build(self) -> None:
        """The builder thread: replace discarded instances until the pool is closed."""
        while True:
            with self._lock:
                while not (self._owed or self._closed):
                    self._wake.wait()
                if self._closed:
                    return
                self._owed -= 1
                self._instances += 1
            try:
                instance = self._factory()
            except Exception:  # the next acquire that finds none idle builds (and raises)
                log.exception("cannot rebuild a sandbox instance")
                with self._lock:
                    self._instances -= 1
                continue
            if not self._keep(instance):
                instance.close()

    def _keep(self, instance: Instance) -> bool:
        """Put a rebuilt instance on the idle stack unless the pool was closed meanwhile."""
        with self._lock:
            if self._closed:
                self._instances -= 1
                return False
            self._idle.append(instance)
            return True

    def close(self) -> None:
        """Close idle instances now and busy ones when they come back; stop the builder."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._instances -= len(idle)
            builder = self._builder
            self._wake.notify_all()
        for instance in idle:
            instance.close()
        if builder is not None and builder is not threading.current_thread():
            builder.join()

    @property
    def stats(self) -> SandboxStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return SandboxStats(self._runs, self._rebuilds, self._instances, self._in_use)
