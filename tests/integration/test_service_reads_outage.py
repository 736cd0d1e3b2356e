"""While Redis is down, the read endpoints answer 503 StoreUnavailable (never 500) and the
connection stays usable."""

from __future__ import annotations

from pathlib import Path

from billing.embedded import EmbeddedRedis
from tests.integration.conftest import (
    ADMIN_KEY,
    LEGACY_KEY,
    make_settings,
    start_server,
    stop_server,
)

READS = (
    (LEGACY_KEY, "/v1/usage?clientId=reader"),
    (LEGACY_KEY, "/v1/usage/executions?clientId=reader"),
    (LEGACY_KEY, "/v1/receipts/some-id?clientId=reader"),
    (ADMIN_KEY, "/v1/billing/report?period=month"),
)


def test_reads_during_a_redis_outage_are_503(tmp_path: Path, module_cache: Path) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    live = start_server(
        make_settings(redis_server.url, tmp_path / "var", module_cache_dir=module_cache)
    )
    try:
        redis_server.stop()
        for key, path in READS:
            with live.client(key) as http:
                first = http.get(path)
                assert first.status_code == 503, (path, first.status_code, first.text)
                error = first.json()["error"]
                assert error["type"] == "StoreUnavailable"
                assert "Retry-After" in first.headers
                again = http.get(path)  # same connection: not reset by an unhandled error
                assert again.status_code == 503
    finally:
        stop_server(live)
        redis_server.stop()
