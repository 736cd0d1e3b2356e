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


@pytest.mark.parametrize("threshold", [12_345, 0])
def test_gc_threshold_is_applied_once_started(
    redis_server: str, var_dir: Path, module_cache: Path, threshold: int
) -> None:
    """``CODEXEC_GC_THRESHOLD`` sets the youngest generation's threshold after start-up;
    ``0`` leaves whatever the process had."""
    import gc

    from tests.integration.conftest import make_settings, start_server, stop_server

    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])
    try:
        settings = make_settings(
            redis_server, var_dir, module_cache_dir=module_cache, gc_threshold=threshold
        )
        live = start_server(settings)
        try:
            assert gc.get_threshold() == ((threshold or 700), *before[1:])
        finally:
            stop_server(live)
    finally:
        gc.set_threshold(*before)
