"""``POST /execute`` as Server-Sent Events: console lines as the code writes them, then the result.

The run itself is the ordinary one (:meth:`ExecutionService.execute` with an
:class:`OutputStream`): same validation, idempotency, admission, limits and billing. The
sandbox thread hands each line to the event loop with ``call_soon_threadsafe``; the response
is started only once the run has a sandbox thread, so every refusal before that (400, 402,
409, 429, 503 ...) is the plain JSON error. Events::

    event: output   data: <the line as a JSON string>      (one per console line)
    event: result   data: <exactly the plain call's JSON body>
    event: error    data: <the error envelope>             (only if settling failed)

A replayed execution ID streams just the ``result`` event. When the client goes away the run
is told to stop (it ends at the next epoch tick) and is still recorded and billed: the
execution task is never cancelled, only the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.errors import ServiceError, error_response, translate

if TYPE_CHECKING:
    from service.auth import Caller
    from service.execution import Executed, ExecutionService
    from service.metrics import Metrics

__all__ = ["EVENT_STREAM", "EventStream", "OutputStream", "stream_execution", "wants_stream"]

log = logging.getLogger("codexec.streaming")

EVENT_STREAM = "text/event-stream"
_STARTED = "started"
_OUTPUT = "output"
# Execution tasks whose client went away: kept referenced until they are billed.
_DETACHED: set[asyncio.Task[Any]] = set()


def wants_stream(accept: str | None) -> bool:
    """True when the ``Accept`` header asks for ``text/event-stream``."""
    if not accept:
        return False
    return any(part.split(";", 1)[0].strip().lower() == EVENT_STREAM for part in accept.split(","))


def sse(event: str, data: bytes) -> bytes:
    """One Server-Sent Event (``data`` must hold no newline: JSON from orjson never does)."""
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that always watches for the client leaving.

    Starlette does that only for servers older than ASGI 2.4; on newer ones a departure is
    noticed at the next write, which a run that prints nothing more never makes.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:

            async def stream() -> None:
                with contextlib.suppress(OSError):  # the client left while we wrote
                    await self.stream_response(send)
                tg.cancel_scope.cancel()

            tg.start_soon(stream)
            await self.listen_for_disconnect(receive)
            tg.cancel_scope.cancel()


class OutputStream:
    """The channel of one streamed run from its sandbox thread to the event loop.

    ``started`` and ``line`` are called in the sandbox thread; ``stop`` is set by the loop
    when the client disconnected. The queue is bounded by the run's output limits.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.stop = threading.Event()
        self.execution_id = ""  # set by the executor before the run starts

    def started(self) -> None:
        """The run has a sandbox thread (called in that thread)."""
        self._loop.call_soon_threadsafe(self.queue.put_nowait, (_STARTED, ""))

    def line(self, text: str) -> None:
        """One console line (called in the sandbox thread)."""
        self._loop.call_soon_threadsafe(self.queue.put_nowait, (_OUTPUT, text))


async def _first(stream: OutputStream, task: asyncio.Task[Executed]) -> bool:
    """Wait until the run started (True) or the task ended first (False)."""
    getter = asyncio.ensure_future(stream.queue.get())
    try:
        await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        getter.cancel()
        raise
    if getter.done():
        item = getter.result()
        if item[0] == _OUTPUT:  # cannot come before "started"; keep it anyway
            stream.queue.put_nowait(item)
        return True
    getter.cancel()
    return False


def _detach(task: asyncio.Task[Executed], stream: OutputStream) -> None:
    """The client left: stop the run at its next tick and let it be billed."""
    stream.stop.set()
    if task.done():
        return
    _DETACHED.add(task)

    def done(t: asyncio.Task[Executed]) -> None:
        _DETACHED.discard(t)
        if not t.cancelled() and (exc := t.exception()) is not None:
            log.warning("a streamed execution whose client left failed: %r", exc)

    task.add_done_callback(done)


async def _events(
    stream: OutputStream, task: asyncio.Task[Executed], metrics: Metrics
) -> AsyncIterator[bytes]:
    metrics.stream_clients.inc()
    finished = False
    try:
        while True:
            if stream.queue.empty() and task.done():
                break
            getter = asyncio.ensure_future(stream.queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            kind, text = getter.result()
            if kind == _OUTPUT:
                yield sse("output", orjson.dumps(text))
        try:
            done = task.result()
        except Exception as exc:  # settling failed after the stream began
            err = translate(exc) or ServiceError("internal error")
            yield sse("error", bytes(error_response(err).body))
        else:
            yield sse("result", done.body)
        finished = True
    finally:
        metrics.stream_clients.dec()
        if not finished:
            _detach(task, stream)


async def stream_execution(
    executor: ExecutionService,
    caller: Caller,
    body: dict[str, Any],
    execution_id: str | None,
    metrics: Metrics,
) -> EventStream:
    """Start a streamed execution; raise its error if it is refused before it runs."""
    stream = OutputStream(asyncio.get_running_loop())
    task = asyncio.ensure_future(executor.execute(caller, body, execution_id, stream=stream))
    try:
        started = await _first(stream, task)
    except asyncio.CancelledError:
        _detach(task, stream)
        raise
    if not started:
        done = task.result()  # raises the refusal (or answers a replay)
        headers = {"X-Execution-ID": done.execution_id, **done.headers}
        return EventStream(
            _replay(done.body), media_type=EVENT_STREAM, headers=_sse_headers(headers)
        )
    return EventStream(
        _events(stream, task, metrics),
        media_type=EVENT_STREAM,
        headers=_sse_headers({"X-Execution-ID": stream.execution_id}),
    )


async def _replay(body: bytes) -> AsyncIterator[bytes]:
    yield sse("result", body)


def _sse_headers(extra: dict[str, str]) -> dict[str, str]:
    return {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **extra}
