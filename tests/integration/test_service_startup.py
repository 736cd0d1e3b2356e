"""Start-up checks that need Redis: production refuses to serve without any API key."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from billing.apikeys import ApiKeys
from service.app import StartupError, create_app
from service.config import Settings


def production(redis_url: str, var_dir: Path, module_cache: Path) -> Settings:
    return Settings(
        environment="production",
        redis_url=redis_url,
        var_dir=var_dir,
        module_cache_dir=module_cache,
        admin_key="a" * 32,
        cors_origins=["https://app.example.com"],
        maintenance_cron=None,
    )


async def test_production_without_keys_refuses_to_start(
    redis_client: aioredis.Redis, redis_server: str, var_dir: Path, module_cache: Path
) -> None:
    app = create_app(production(redis_server, var_dir, module_cache))
    with pytest.raises(StartupError, match="keys create"):
        async with app.router.lifespan_context(app):
            pass
    await ApiKeys(redis_client).create("acme", "basic")
    app = create_app(production(redis_server, var_dir, module_cache))
    async with app.router.lifespan_context(app):
        assert app.state.services.settings.environment == "production"
