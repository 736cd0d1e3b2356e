"""Hostile concurrency over real HTTP: slow bodies do not starve other clients, and two
clients' interleaved runs never see each other's globals, context or output.

``make test`` runs small versions; ``make soak`` sends thousands of isolation runs and
``make fuzz`` the longer slowloris (``CODEXEC_SLOWLORIS_S``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reliability.soak import ISOLATION
from tests.integration.conftest import LiveServer, make_settings, start_server, stop_server

SLOW_SECONDS = float(os.environ.get("CODEXEC_SLOWLORIS_S", "2"))
ISOLATION_RUNS = int(os.environ.get("CODEXEC_ISOLATION_RUNS", "160"))


@pytest.fixture(scope="module")
def server(
    redis_server: str, module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        redis_server,
        tmp_path_factory.mktemp("var"),
        module_cache_dir=module_cache,
        body_timeout_s=SLOW_SECONDS + 30,  # slow but within the limit: answered normally
    )
    live = start_server(settings)
    try:
        yield live
    finally:
        stop_server(live)


def _slow_body(port: int, token: str, seconds: float, result: list[bytes]) -> None:
    """Send a valid request whose body trickles in byte by byte over ``seconds``."""
    body = b'{"code": "return 7;"}'
    head = (
        f"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 30) as s:
        s.sendall(head)
        try:
            for byte in body:
                s.sendall(bytes([byte]))
                time.sleep(seconds / len(body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (408) and closed; its answer is still readable
        result.append(s.recv(65536))


def test_slow_bodies_do_not_starve_other_clients(server: LiveServer) -> None:
    slow_token = server.new_key("slowloris", plan="enterprise")
    token = server.new_key("prompt-client", plan="enterprise")
    port = int(server.url.rsplit(":", 1)[1])
    answers: list[bytes] = []
    slow = [
        threading.Thread(target=_slow_body, args=(port, slow_token, SLOW_SECONDS, answers))
        for _ in range(8)
    ]
    for t in slow:
        t.start()
    latencies = []
    with server.client(token) as http:
        deadline = time.monotonic() + SLOW_SECONDS * 0.8
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = http.post("/execute", json={"code": "return 1 + 1;"})
            latencies.append(time.monotonic() - started)
            assert r.status_code == 200, r.text
            assert r.json()["result"] == 2
            time.sleep(0.02)
    for t in slow:
        t.join(SLOW_SECONDS + 30)
    assert len(latencies) >= 5
    assert max(latencies) < 0.5, f"a normal request waited {max(latencies):.3f} s"
    assert len(answers) == 8
    assert all(a.startswith(b"HTTP/1.1 200") and b'"result":7' in a for a in answers)


def test_a_body_slower_than_the_limit_gets_408(
    redis_server: str, module_cache: Path, tmp_path: Path
) -> None:
    live = start_server(
        make_settings(
            redis_server, tmp_path / "var", module_cache_dir=module_cache, body_timeout_s=0.5
        )
    )
    try:
        token = live.new_key("too-slow", plan="enterprise")
        port = int(live.url.rsplit(":", 1)[1])
        answers: list[bytes] = []
        started = time.monotonic()
        _slow_body(port, token, 2.0, answers)
        assert answers[0].startswith(b"HTTP/1.1 408")
        assert b'"type":"RequestTimeout"' in answers[0]
        assert time.monotonic() - started < 2.5
        with live.client(token) as http:  # the server is fine afterwards
            assert http.post("/execute", json={"code": "return 1"}).status_code == 200
    finally:
        stop_server(live)


def test_interleaved_clients_never_see_each_other(server: LiveServer) -> None:
    tokens = {c: server.new_key(c, plan="enterprise") for c in ("iso-a", "iso-b")}

    def run(n: int) -> str | None:
        client = ("iso-a", "iso-b")[n % 2]
        tag = f"{client}:{n}"
        with server.client(tokens[client]) as http:
            body: dict[str, Any] = http.post(
                "/execute",
                json={"code": ISOLATION, "context": {"tag": tag, "client": client, "n": n}},
            ).json()
        want = {"seen": None, "others": [], "tag": tag, "ctx": ["client", "n", "tag"]}
        if body.get("result") != want or body.get("output") != [f"tag {tag}"]:
            return f"run {n} of {client}: {body}"
        return None

    with ThreadPoolExecutor(8) as pool:
        problems = [p for p in pool.map(run, range(ISOLATION_RUNS)) if p]
    assert problems == []
