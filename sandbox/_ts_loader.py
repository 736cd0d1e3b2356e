"""The TypeScript stripper built on first use (JavaScript never pays for it), in one thread
at a time; a failure to build it is remembered for ``retry_s``, so requests meanwhile are
refused at once with :class:`StripperUnavailable` instead of each retrying the build.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sandbox._ts_package import StripperUnavailable

__all__ = ["TypeScriptLoader"]

log = logging.getLogger("sandbox.typescript")

T = TypeVar("T")


class TypeScriptLoader(Generic[T]):
    """A ``TypeScript`` built on first use; a failure is remembered for ``retry_s``."""

    def __init__(self, factory: Callable[[], T], retry_s: float = 30.0) -> None:
        self._factory = factory
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._ready: T | None = None
        self._failed: tuple[float, str] | None = None

    @property
    def ready(self) -> bool:
        """Whether ``get`` returns at once (the stripper is built)."""
        return self._ready is not None

    def get(self) -> T:
        """The stripper (built now if needed); ``StripperUnavailable`` if it cannot be."""
        ready = self._ready
        if ready is not None:
            return ready
        with self._lock:
            if self._ready is not None:
                return self._ready
            if self._failed is not None and time.monotonic() < self._failed[0]:
                raise StripperUnavailable(self._failed[1])
            try:
                self._ready = self._factory()
            except Exception as exc:
                reason = f"TypeScript is unavailable: {exc}"
                self._failed = (time.monotonic() + self._retry_s, reason)
                log.warning("%s", reason)
                raise StripperUnavailable(reason) from exc
            return self._ready
