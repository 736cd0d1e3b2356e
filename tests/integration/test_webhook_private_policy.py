"""The service's webhook deliveries follow the private-address policy of its settings.

A real service (uvicorn on real Redis) delivers a webhook queued for a receiver on
127.0.0.1: in production without ``CODEXEC_CALLBACK_ALLOW_PRIVATE`` it is dead-lettered
at once and never sent; with the setting on (or outside production) it is delivered. The
dead letters it adds trim those older than ``CODEXEC_WEBHOOK_DEADLETTER_RETENTION_DAYS``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis as syncredis
import redis.asyncio as aioredis

from billing import keys
from billing.webhooks import DeadLetter, Delivery, Outbox
from tests.integration.conftest import make_settings, start_server, stop_server
from tests.integration.receiver import receiver


async def _queue(redis_url: str, url: str) -> str:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        return await Outbox(redis).enqueue("policy-client", url, "test.event", {"n": 1})
    finally:
        await redis.aclose()


def _old_dead_letter(redis_url: str, days: int) -> str:
    """A dead letter added ``days`` ago (its stream ID is its time)."""
    created_ms = int((time.time() - days * 86400) * 1000)
    old = Delivery(f"old-{days}", "policy-client", "http://x.example/", "e", "{}", created_ms)
    entry_id = f"{created_ms}-0"
    with syncredis.Redis.from_url(redis_url) as plain:
        plain.xadd(keys.DEADLETTER, {"d": old.to_json()}, id=entry_id)
    return entry_id


async def _dead_letters(redis_url: str) -> list[DeadLetter]:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        return await Outbox(redis).dead_letters()
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    ("environment", "allow_private", "outcome"),
    [
        ("production", False, "dead"),
        ("production", True, "delivered"),
        ("development", False, "delivered"),
    ],
)
def test_deliveries_to_a_loopback_receiver(
    environment: str,
    allow_private: bool,
    outcome: str,
    redis_server: str,
    module_cache: Path,
    var_dir: Path,
) -> None:
    with syncredis.Redis.from_url(redis_server) as plain:
        plain.flushdb()  # no deliveries left by other tests
    _old_dead_letter(redis_server, 3)  # past the retention of 2 days set below
    kept = _old_dead_letter(redis_server, 1)
    with receiver() as rx:
        delivery_id = asyncio.run(_queue(redis_server, rx.url))
        settings = make_settings(
            redis_server,
            var_dir,
            module_cache_dir=module_cache,
            environment=environment,
            callback_allow_private=allow_private,
            webhook_backoff_s=0.05,
            webhook_deadletter_retention_days=2,
        )
        live = start_server(settings)
        try:
            deadline = time.monotonic() + 30  # hang guard
            with live.client() as http:
                text = ""
                while "codexec_webhook_deliveries_total{" not in text:
                    assert time.monotonic() < deadline, "no delivery outcome"
                    time.sleep(0.05)
                    text = http.get("/metrics").text
        finally:
            stop_server(live)
        received = rx.bodies()
    assert f'codexec_webhook_deliveries_total{{result="{outcome}"}} 1.0' in text
    dead = asyncio.run(_dead_letters(redis_server))
    if outcome == "dead":
        assert received == []  # never connected
        assert [d.delivery.id for d in dead] == ["old-1", delivery_id]  # old-3 trimmed
        assert dead[0].entry_id == kept
        assert dead[1].delivery.attempts == 1  # at once: a retry could not go better
        assert "127.0.0.1 (loopback)" in dead[1].delivery.last_error
    else:
        assert len(received) == 1
        assert [d.delivery.id for d in dead] == ["old-3", "old-1"]  # nothing added or trimmed
