"""A real uvicorn server (in a thread of the test process) on a real Redis."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as syncredis
import uvicorn

from billing.apikeys import ApiKeys
from billing.embedded import free_port
from service.app import create_app
from service.config import Settings
from service.metrics import Metrics

ADMIN_KEY = "admin-" + "a" * 32
LEGACY_KEY = "legacy-" + "l" * 32


@dataclass
class LiveServer:
    """A running service: its base URL, settings and a way to make client keys."""

    url: str
    settings: Settings
    redis_url: str
    thread: threading.Thread
    server: uvicorn.Server

    def new_key(self, client_id: str, plan: str = "basic") -> str:
        """Create a per-client key in the real key store."""

        async def create() -> str:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(self.redis_url)
            try:
                return await ApiKeys(client).create(client_id, plan)
            finally:
                await client.aclose()

        return asyncio.run(create())

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server, authenticated with ``token`` if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def sync_redis(self) -> syncredis.Redis:
        """A plain Redis client to check what was recorded."""
        return syncredis.Redis.from_url(self.redis_url)


def start_server(settings: Settings) -> LiveServer:
    """Start uvicorn with ``create_app(settings)`` in a thread and wait until it answers."""
    app = create_app(settings, Metrics())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during start-up")
        time.sleep(0.02)
    else:
        raise RuntimeError("uvicorn did not start in 30 s")
    assert settings.redis_url is not None
    return LiveServer(url, settings, settings.redis_url, thread, server)


def stop_server(live: LiveServer) -> None:
    """Ask uvicorn to exit and wait for its lifespan to finish."""
    live.server.should_exit = True
    live.thread.join(30)


def make_settings(redis_url: str, var_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: real Redis, private ./var, known admin and legacy keys."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "var_dir": var_dir,
        "port": free_port(),
        "admin_key": ADMIN_KEY,
        "api_key": LEGACY_KEY,
        "maintenance_cron": None,
        "cors_origins": ["https://app.example.com"],
        "auth_cache_ttl_s": 0,
    }
    values.update(overrides)
    return Settings(**values)


def usage_today(live: LiveServer, client_id: str) -> dict[str, Any]:
    """Today's usage of ``client_id`` as ``GET /v1/usage`` reports it (admin key)."""
    with live.client(ADMIN_KEY) as http:
        r = http.get("/v1/usage", params={"clientId": client_id})
    assert r.status_code == 200, r.text
    today: dict[str, Any] = r.json()["today"]
    return today


@pytest.fixture(scope="module")
def live(
    redis_server: str, module_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One service per test module, shared by its tests (use distinct client IDs)."""
    settings = make_settings(
        redis_server, tmp_path_factory.mktemp("var"), module_cache_dir=module_cache
    )
    server = start_server(settings)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def client_id() -> str:
    """A client ID no other test uses."""
    return "client-" + secrets.token_hex(6)
