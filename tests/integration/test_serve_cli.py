"""``codexec serve --dev`` as ``make run`` starts it: embedded Redis, dev key, 2 workers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing.embedded import free_port

EXAMPLE = {"code": "const x = 10; const y = 20; return x + y;", "language": "javascript"}


def worker_pids(parent: int) -> list[int]:
    """The worker processes of a ``codexec serve`` (multiprocessing spawn children)."""
    workers = []
    for task in Path(f"/proc/{parent}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread is gone
            continue
        for pid in children:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # the process is gone
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                workers.append(int(pid))
    return sorted(workers)


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.3) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_dev_with_embedded_redis(tmp_path: Path, module_cache: Path, workers: int) -> None:
    """Both uvicorn modes: in-process (1 worker) and supervisor + workers (2)."""
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEXEC_", "PROMETHEUS_"))}
    env.update(
        CODEXEC_VAR_DIR=str(tmp_path / "var"),
        CODEXEC_MODULE_CACHE_DIR=str(module_cache),
        CODEXEC_PORT=str(port),
        CODEXEC_EMBEDDED_REDIS_PORT=str(redis_port),
        CODEXEC_WORKERS=str(workers),
        CODEXEC_MAINTENANCE_CRON="off",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail("codexec serve exited during start-up")
            if m := re.search(r"Authorization: Bearer (cx_[A-Za-z0-9_-]+)", line):
                token = m.group(1)
        assert token is not None, "no curl line with a development key was printed"
        assert (tmp_path / "var" / "dev-api-key").read_text().strip() == token
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        results = []
        for _ in range(8):  # new connections: spread over both workers
            with httpx.Client(base_url=base, headers=headers) as http:
                results.append(http.post("/execute", json=EXAMPLE).json()["result"])
        assert results == [30] * 8
        text = httpx.get(base + "/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        ok = sum(
            s.value
            for s in families["codexec_executions"].samples
            if s.name == "codexec_executions_total" and s.labels["outcome"] == "ok"
        )
        assert ok == 8  # with 2 workers: summed over both workers' multiprocess files
        assert redis_answers(redis_port)
        if workers > 1:  # a worker that dies is replaced, and the service keeps answering
            before = worker_pids(proc.pid)
            assert len(before) == workers
            os.kill(before[0], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = worker_pids(proc.pid)
                if len(now) == workers and before[0] not in now:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"worker {before[0]} was not replaced")
            with httpx.Client(base_url=base, headers=headers) as http:
                assert http.post("/execute", json=EXAMPLE).json()["result"] == 30
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # what `kill` or Ctrl-C on `make run` sends
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 10
    while redis_answers(redis_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_answers(redis_port), "the embedded redis-server outlived the service"


def test_embedded_redis_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """Even SIGKILL of the process that started it does not leave redis-server running."""
    port = free_port()
    script = (
        "import sys, time; from pathlib import Path; from billing.embedded import EmbeddedRedis;"
        f"EmbeddedRedis(Path({str(tmp_path)!r}), port={port}, persist=False).start();"
        "print('up', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        assert redis_answers(port)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 10
    while redis_answers(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_answers(port)
