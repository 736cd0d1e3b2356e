"""Several uvicorn worker processes, each with its own ``SO_REUSEPORT`` listening socket.

uvicorn's own multi-worker mode shares one listening socket between the workers; with a few
long-lived keep-alive connections (a proxy, a load generator) one worker can end up accepting
all of them while the others idle. With one socket per worker and ``SO_REUSEPORT`` the
kernel spreads new connections over the workers by hashing each connection. This supervisor
starts the workers, restarts any that dies, and stops them all on SIGTERM/SIGINT (each worker
shuts down gracefully, as uvicorn does).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

__all__ = ["APP", "reuseport_socket", "run_workers"]

log = logging.getLogger("codexec.workers")

APP = "service.app:create_app"
"""The ASGI application factory the workers serve (``bench`` serves a reference app too)."""

BACKLOG = 2048


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that other processes may bind to the same address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int, log_level: str, graceful_s: int, app: str) -> None:
    import uvicorn

    from service.logs import configure_logging

    configure_logging(log_level)
    config = uvicorn.Config(
        app,
        factory=True,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful_s,
    )
    uvicorn.Server(config).run(sockets=[reuseport_socket(host, port)])


def _mark_dead(pid: int | None) -> None:
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def run_workers(
    workers: int,
    host: str,
    port: int,
    *,
    log_level: str = "INFO",
    graceful_s: int = 30,
    app: str = APP,
) -> None:
    """Serve ``app`` (``module:factory``) with ``workers`` processes until SIGTERM or SIGINT;
    restart workers that die."""
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> BaseProcess:
        process = context.Process(
            target=_worker, args=(host, port, log_level, graceful_s, app), daemon=False
        )
        process.start()
        return process

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # Fail early in the parent if the address cannot be bound at all.
    reuseport_socket(host, port).close()
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    log.info("workers started", extra={"workers": workers, "port": port})
    try:
        while not stopping.wait(0.5):
            for i, process in enumerate(processes):
                if not process.is_alive():
                    log.warning(
                        "worker died; restarting",
                        extra={"pid": process.pid, "exitcode": process.exitcode},
                    )
                    _mark_dead(process.pid)
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for process in processes:
            process.join(graceful_s + 5)
            if process.is_alive():
                process.kill()
                process.join()
            _mark_dead(process.pid)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
