"""Bounded admission to the sandbox threads: answer at once rather than queue forever.

At most ``max_requests`` executions are in progress in a process at once (runs that finish
inline on the event loop included); beyond that a request is refused with 503 at once, so
overload never turns into a growing queue in front of the event loop. A run that needs a
thread is admitted while fewer than ``slots + queue`` are in flight in this process (503
beyond); it then waits for one of ``slots`` worker threads.

Every client has a share, applied per process whether or not its plan names one:

- its requests in progress: the plan's ``max_concurrency``, else ``client_share`` of
  ``max_requests`` (rounded down, at least 1); over it a request is refused (429,
  ``Retry-After: 1``) at the door, before it costs a rate-limit round trip or an inline
  slice, so a flood cannot fill ``max_requests`` (503 for everyone);
- its runs in threads: the plan's ``max_concurrency``, else ``client_share`` of ``slots``
  (rounded down, at least 1). A client's run beyond that waits until one of its own runs
  finishes; a free thread goes to the oldest waiting run whose client is under its share, so
  a flood never holds every thread and never queues in front of another client's run.

One client flooding a process therefore holds at most its share, and every other client
keeps being served. The share holds even when the client is alone (a process serving one
client uses ``client_share`` of its threads for it; ``CODEXEC_CLIENT_SHARE=1`` gives it
all). The threads are a plain :class:`~concurrent.futures.ThreadPoolExecutor` of ``slots``
threads (each keeps its own sandbox instance), handed a run only when one is free; handing
a call to it costs about a third of ``anyio.to_thread`` (measured in docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from service.errors import RateLimited, Unavailable
from service.metrics import Metrics

__all__ = ["Admission"]

T = TypeVar("T")


@dataclass
class _Waiter:
    """A run waiting for a thread: its client, that client's thread share, its wake-up."""

    client_id: str
    share: int
    granted: asyncio.Future[None]


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
        self.request_share = max(1, math.floor(max_requests * client_share))
        """Requests in progress of one client whose plan sets no ``max_concurrency``."""
        self.run_share = max(1, math.floor(slots * client_share))
        """Threads one such client's runs may hold at once."""
        self._in_flight = 0
        self._by_client: Counter[str] = Counter()
        self._requests_by_client: Counter[str] = Counter()
        self._free = slots
        self._running: Counter[str] = Counter()
        self._waiters: deque[_Waiter] = deque()

    @contextmanager
    def request(self, client_id: str = "", share: int | None = None) -> Iterator[None]:
        """Hold one of the process's execution places for a request, or refuse it (503); a
        client already holding ``share`` places (the plan's ``max_concurrency``; None: the
        process's :attr:`request_share`) is refused (429) before anything is done for it,
        even an inline run."""
        if self._requests >= self.max_requests:
            self._metrics.admission_rejections.inc()
            raise Unavailable("too many executions in progress; retry shortly")
        limit = self.request_share if share is None else share
        if self._requests_by_client[client_id] >= limit:
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
        if self._by_client[client_id] >= (self.request_share if share is None else share):
            self._metrics.rate_limited.inc()
            raise RateLimited(retry_after=1)
        self._in_flight += 1
        self._by_client[client_id] += 1

    def _release(self, client_id: str) -> None:
        self._in_flight -= 1
        self._by_client[client_id] -= 1
        if self._by_client[client_id] <= 0:
            del self._by_client[client_id]

    def _dispatch(self) -> None:
        """Give free threads to the oldest waiting runs whose clients are under their share."""
        while self._free and self._waiters:
            waiter = next((w for w in self._waiters if self._running[w.client_id] < w.share), None)
            if waiter is None:
                return
            self._waiters.remove(waiter)
            self._free -= 1
            self._running[waiter.client_id] += 1
            waiter.granted.set_result(None)

    async def _thread(self, client_id: str, share: int) -> None:
        """Wait until this run may take a thread (counted as the client's until released)."""
        waiter = _Waiter(client_id, share, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._dispatch()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._free_thread(client_id)  # granted, but cancelled before it ran
            else:
                self._waiters.remove(waiter)
            raise

    def _free_thread(self, client_id: str) -> None:
        self._free += 1
        self._running[client_id] -= 1
        if self._running[client_id] <= 0:
            del self._running[client_id]
        self._dispatch()

    async def run(self, client_id: str, fn: Callable[[], T], *, share: int | None = None) -> T:
        """Run blocking ``fn`` in a sandbox thread, or refuse at once; ``share`` is the
        client's own bound on its runs (None: :attr:`request_share` in flight and
        :attr:`run_share` in threads)."""
        self._admit(client_id, share)
        metrics = self._metrics
        loop = asyncio.get_running_loop()

        def in_thread() -> T:
            metrics.sandbox_waiting.dec()
            metrics.sandbox_in_use.inc()
            try:
                return fn()
            finally:
                metrics.sandbox_in_use.dec()
                with contextlib.suppress(RuntimeError):  # the loop closed first
                    loop.call_soon_threadsafe(self._free_thread, client_id)

        metrics.sandbox_waiting.inc()
        try:
            await self._thread(client_id, self.run_share if share is None else share)
        except BaseException:
            metrics.sandbox_waiting.dec()
            self._release(client_id)
            raise
        future = self._pool.submit(in_thread)  # a thread is free: it starts at once
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancel():  # it never started: give its thread back here
                metrics.sandbox_waiting.dec()
                self._free_thread(client_id)
            raise
        finally:
            self._release(client_id)

    def close(self) -> None:
        """Stop the threads after the runs already started have finished."""
        self._pool.shutdown(wait=True, cancel_futures=True)
