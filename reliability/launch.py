"""Start ``python -m service serve`` as its own process group, the way an operator does.

The one launcher used by the scale-out test, ``make bench`` and ``make soak``/``make chaos``:
a clean ``CODEXEC_*`` environment plus the caller's settings, a free port, output to a log
file, and a return only once ``/readyz`` answers 200.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from billing.embedded import free_port
from billing.spool import Spool

__all__ = ["Service", "launch"]


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Service:
    """One ``python -m service serve`` process group."""

    proc: subprocess.Popen[bytes]
    url: str
    var_dir: Path
    log: Path

    def worker_pids(self) -> list[int]:
        """PIDs of the uvicorn worker processes (children running ``spawn_main``), or the
        server process itself with one worker."""
        found = []
        for pid in _children(self.proc.pid):
            cmd = _cmdline(pid)
            if "spawn_main" in cmd and "resource_tracker" not in cmd:
                found.append(pid)
        return sorted(found) or [self.proc.pid]

    def spool_depth(self) -> int:
        """Spooled records of every process (live or dead) under this service's var dir."""
        return Spool(self.var_dir / "spool").depth(all_processes=True)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 30 s."""
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group that ``proc`` leads (started with ``start_new_session``),
    SIGKILL after 30 s; nothing if it has already exited."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def launch(
    settings: dict[str, str], var_dir: Path, *, workers: int = 1, timeout: float = 60
) -> Service:
    """Start a service with ``CODEXEC_*`` ``settings`` (names without the prefix, e.g.
    ``{"REDIS_URL": ...}``); raises RuntimeError with the log's tail if it does not get ready."""
    var_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEXEC_", "PROMETHEUS_"))}
    env.update(
        CODEXEC_PORT=str(port),
        CODEXEC_VAR_DIR=str(var_dir),
        CODEXEC_WORKERS=str(workers),
        CODEXEC_MAINTENANCE_CRON="off",
    )
    env.update({f"CODEXEC_{name}": value for name, value in settings.items()})
    log = var_dir / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(proc, f"http://127.0.0.1:{port}", var_dir, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"codexec serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(service.url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        service.stop()
        raise RuntimeError(f"codexec serve not ready in {timeout}s:\n{log.read_text()[-3000:]}")
    while time.monotonic() < deadline and workers > 1 and len(service.worker_pids()) < workers:
        time.sleep(0.1)
    return service
