"""Bounded admission to the sandbox threads: answer at once rather than queue forever.

At most ``max_requests`` executions are in progress in a process at once (runs that finish
inline on the event loop included); beyond that a request is refused with 503 at once, so
overload never turns into a growing queue in front of the event loop. A run that needs a
thread is admitted while fewer than ``slots + queue`` are in flight in this process and
its client holds less than its share of them (its plan's ``max_concurrency``, else
``client_share`` of ``slots + queue``); it then waits for one of ``slots`` worker threads.
A plan's ``max_concurrency`` also bounds the client's requests in progress, so a flood
of its requests is refused at the door instead of filling ``max_requests``.
One client flooding a process therefore holds at most its share of the threads and the
queue, and every other client keeps being served. Everything else is refused immediately
(503 overall, 429 for a client over its share), so a burst never turns into unbounded
latency. The threads are a plain
:class:`~concurrent.futures.ThreadPoolExecutor` (each keeps its own sandbox instance); handing
a call to it costs about a third of ``anyio.to_thread`` (measured in docs/performance.md).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from service.errors import RateLimited, Unavailable
from service.metrics import Metrics

__all__ = ["Admission"]

T = TypeVar("T")


class Admission:
    """Admission control in front of a bounded pool of sandbox threads."""

    def __init__(
        self,
        slots: int,
        queue: int,
        metrics: Metrics,
        *,
        client_share: float = 0.5,
        max_requests: int = 256,
    ) -> None:
        self.slots = slots
        self.max_requests = max_requests
        self._requests = 0
        self.capacity = slots + queue
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="sandbox")
        self._metrics = metrics
        self._per_client_max = max(1, math.ceil(self.capacity * client_share))
        self._in_flight = 0
        self._by_client: Counter[str] = Counter()
        self._requests_by_client: Counter[str] = Counter()

    @contextmanager
    def request(self, client_id: str = "", share: int | None = None) -> Iterator[None]:
        """Hold one of the process's execution places for a request, or refuse it (503);
        with ``share`` (the plan's ``max_concurrency``) a client already holding that many
        places is refused (429) before anything is done for it, even an inline run."""
        if self._requests >= self.max_requests:
            self._metrics.admission_rejections.inc()
            raise Unavailable("too many executions in progress; retry shortly")
        if share is not None and self._requests_by_client[client_id] >= share:
            self._metrics.rate_limited.inc()
            raise RateLimited(retry_after=1)
        self._requests += 1
        self._requests_by_client[client_id] += 1
        try:
            yield
        finally:
            self._requests -= 1
            self._requests_by_client[client_id] -= 1
            if self._requests_by_client[client_id] <= 0:
                del self._requests_by_client[client_id]

    def _admit(self, client_id: str, share: int | None) -> None:
        if self._in_flight >= self.capacity:
            self._metrics.admission_rejections.inc()
            raise Unavailable("every sandbox is busy and the queue is full; retry shortly")
        if self._by_client[client_id] >= (share or self._per_client_max):
            self._metrics.rate_limited.inc()
            raise RateLimited(retry_after=1)
        self._in_flight += 1
        self._by_client[client_id] += 1

    def _release(self, client_id: str) -> None:
        self._in_flight -= 1
        self._by_client[client_id] -= 1
        if self._by_client[client_id] <= 0:
            del self._by_client[client_id]

    async def run(self, client_id: str, fn: Callable[[], T], *, share: int | None = None) -> T:
        """Run blocking ``fn`` in a sandbox thread, or refuse at once; ``share`` is the
        client's own bound on its runs in flight (None: the process-wide share)."""
        self._admit(client_id, share)
        metrics = self._metrics
        entered = False

        def in_thread() -> T:
            nonlocal entered
            entered = True
            metrics.sandbox_waiting.dec()
            metrics.sandbox_in_use.inc()
            try:
                return fn()
            finally:
                metrics.sandbox_in_use.dec()

        metrics.sandbox_waiting.inc()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, in_thread)
        finally:
            if not entered:  # cancelled before a thread took it
                metrics.sandbox_waiting.dec()
            self._release(client_id)

    def close(self) -> None:
        """Stop the threads after the runs already started have finished."""
        self._pool.shutdown(wait=True, cancel_futures=True)
