"""Fixtures shared by every test package: a real Redis server (never a fake one), the compiled
module cache, a real sandbox and TypeScript stripper."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from billing.embedded import EmbeddedRedis
from sandbox import Sandbox
from sandbox.runner import DEFAULT_CACHE_DIR
from sandbox.typescript import TypeScript


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server: ``CODEXEC_REDIS_URL`` or an embedded one for the session."""
    url = os.environ.get("CODEXEC_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_server: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on an emptied database."""
    client = aioredis.Redis.from_url(redis_server)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-module cache for the whole session (compiling takes ~1 s)."""
    return tmp_path_factory.mktemp("module-cache")


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    """A private ./var for one test (spool, keys, module cache)."""
    d = tmp_path / "var"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def sb(module_cache: Path) -> Iterator[Sandbox]:
    """A real sandbox for the tests of one module (the session's compiled-module cache)."""
    with Sandbox(module_cache) as box:
        yield box


@pytest.fixture(scope="module")
def ts(sb: Sandbox, module_cache: Path) -> TypeScript:
    """The real TypeScript stripper on ``sb``'s engine (fetched once if it is missing)."""
    return TypeScript(
        sb.compiled.engine, module_cache, package_dirs=(DEFAULT_CACHE_DIR,), fetch=True
    )
