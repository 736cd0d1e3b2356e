"""Redis goes down under a running service: answers continue, usage is spooled, and after
Redis is back every answered execution is billed exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from billing import keys
from billing.embedded import EmbeddedRedis
from billing.totals import UsageTotals
from tests.integration.conftest import LEGACY_KEY, make_settings, start_server, stop_server

EXAMPLE = "const x = 10; const y = 20; return x + y;"
CLIENT = "outage-client"


def wait_until_replayed(http: httpx.Client, seconds: float = 20) -> None:
    """Until Redis answers again and this server's spool is empty."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = http.get("/readyz")
        if ready.status_code == 200 and ready.json()["checks"]["spool_depth"] == 0:
            return
        time.sleep(0.2)
    pytest.fail("the spool was not replayed after Redis came back")


@pytest.mark.slow
def test_redis_outage_loses_nothing_and_bills_once(tmp_path: Path, module_cache: Path) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    live = start_server(
        make_settings(
            redis_server.url,
            tmp_path / "var",
            module_cache_dir=module_cache,
            spool_replay_interval_s=0.2,
        )
    )
    answered: set[str] = set()
    try:
        with live.client(LEGACY_KEY) as http:

            def run(execution_id: str) -> None:
                r = http.post(
                    "/",
                    json={"code": EXAMPLE, "clientId": CLIENT},
                    headers={"X-Execution-ID": execution_id},
                )
                assert r.status_code == 200, r.text
                assert r.json()["result"] == 30
                answered.add(execution_id)

            for i in range(10):
                run(f"before-{i}")
            redis_server.stop()
            assert http.get("/readyz").status_code == 503
            for i in range(20):
                run(f"during-{i}")
            for i in range(5):  # client retries while Redis is down: answered again
                run(f"during-{i}")
            redis_server.start()
            wait_until_replayed(http)
            run("after-0")
        redis = live.sync_redis()
        try:
            day = time.strftime("%Y-%m-%d", time.gmtime())
            totals = UsageTotals.from_hash(redis.hgetall(keys.usage(CLIENT, day)))
            ledger = redis.xlen(keys.ledger(CLIENT))
        finally:
            redis.close()
        assert len(answered) == 31
        assert totals.executions == 31  # 35 answers during the outage window, 31 distinct IDs
        assert ledger == 31
    finally:
        stop_server(live)
        redis_server.stop()


@pytest.mark.slow
def test_stalled_redis_costs_a_request_at_most_its_budget(
    tmp_path: Path, module_cache: Path
) -> None:
    """CLIENT PAUSE stalls every Redis command: answers still come within the per-step
    budget (look-up and admission fail open, the record is spooled) and each execution is
    billed exactly once when Redis answers again, even if its record also landed late."""
    import redis as syncredis

    redis_server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    live = start_server(
        make_settings(
            redis_server.url,
            tmp_path / "var",
            module_cache_dir=module_cache,
            spool_replay_interval_s=0.2,
            redis_budget_s=0.3,
        )
    )
    admin = syncredis.Redis.from_url(redis_server.url)
    try:
        with live.client(LEGACY_KEY) as http:
            body = {"code": EXAMPLE, "clientId": CLIENT}
            assert http.post("/", json=body, headers={"X-Execution-ID": "warm"}).status_code == 200
            admin.execute_command("CLIENT", "PAUSE", "2500", "ALL")
            for i in range(3):
                r = http.post("/", json=body, headers={"X-Execution-ID": f"stall-{i}"})
                assert r.status_code == 200
                assert r.elapsed.total_seconds() < 1.5  # three steps of 0.3 s at most, plus the run
            wait_until_replayed(http)
        day = time.strftime("%Y-%m-%d", time.gmtime())
        totals = UsageTotals.from_hash(admin.hgetall(keys.usage(CLIENT, day)))
        assert totals.executions == 4
    finally:
        admin.close()
        stop_server(live)
        redis_server.stop()
