"""The webhook outbox end to end: real Redis, a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from billing import keys
from billing.webhook_delivery import DeliveryWorker, http_client
from billing.webhook_signing import verify_signature
from billing.webhooks import GROUP, Outbox, Webhooks
from tests.integration.receiver import Receiver, receiver


class Run:
    """A delivery worker with fast retries, counting outcomes."""

    def __init__(self, redis: aioredis.Redis, **overrides: object) -> None:
        self.outcomes: Counter[str] = Counter()
        self.http = http_client(5)
        options: dict[str, object] = {
            "max_attempts": 4,
            "backoff_base_s": 0.05,
            "backoff_max_s": 0.2,
            "block_ms": 50,
            "on_outcome": lambda r: self.outcomes.update([r]),
        }
        options.update(overrides)
        self.worker = DeliveryWorker(Outbox(redis), self.http, **options)  # type: ignore[arg-type]

    async def until(self, done: object, timeout: float = 20) -> None:
        """Run rounds until ``done()`` is true (a generous hang guard, not a timing check)."""
        deadline = time.monotonic() + timeout
        while not done():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"not done; outcomes={self.outcomes}"
            await self.worker.run_once()


@pytest.fixture
async def run(redis_client: aioredis.Redis) -> AsyncIterator[Run]:
    r = Run(redis_client)
    try:
        yield r
    finally:
        await r.http.aclose()


def received_ok(rx: Receiver, n: int) -> bool:
    return len(rx.received) >= n


async def test_failed_attempts_are_retried_and_every_one_is_signed(
    redis_client: aioredis.Redis, run: Run
) -> None:
    outbox = Outbox(redis_client)
    with receiver([500, 503]) as rx:
        await Webhooks(redis_client).set_endpoint("acme", rx.url)
        delivery_id = await outbox.enqueue("acme", rx.url, "test.event", {"n": 1, "cost": "0.5"})
        await run.until(lambda: run.outcomes["delivered"] == 1)
    assert run.outcomes == Counter(retried=2, delivered=1)
    assert len(rx.received) == 3
    secret = await Webhooks(redis_client).secret("acme")
    for attempt, got in enumerate(rx.received, 1):
        assert verify_signature(secret, got.headers["Webhook-Signature"], got.body) > 0
        assert got.headers["Webhook-Id"] == delivery_id
        assert got.headers["Webhook-Attempt"] == str(attempt)
        assert got.headers["Content-Type"] == "application/json"
    assert len(set(rx.bodies())) == 1
    body = orjson.loads(rx.received[0].body)
    assert body["id"] == delivery_id
    assert body["type"] == "test.event"
    assert body["clientId"] == "acme"
    assert body["data"] == {"n": 1, "cost": "0.5"}
    assert await outbox.depth() == 0
    assert await outbox.dead_letters() == []


async def test_a_key_queues_a_delivery_once(redis_client: aioredis.Redis, run: Run) -> None:
    outbox = Outbox(redis_client)
    with receiver() as rx:
        first = await outbox.enqueue("acme", rx.url, "execution.completed", {}, key="e1:completed")
        again = await outbox.enqueue("acme", rx.url, "execution.completed", {}, key="e1:completed")
        other = await outbox.enqueue("bob", rx.url, "execution.completed", {}, key="e1:completed")
        await run.until(lambda: run.outcomes["delivered"] == 2)
    assert first == again != other
    assert sorted(orjson.loads(b)["id"] for b in rx.bodies()) == sorted([first, other])


async def test_out_of_attempts_goes_to_dead_letters_and_can_be_retried(
    redis_client: aioredis.Redis, run: Run
) -> None:
    outbox = Outbox(redis_client)
    with receiver([500] * 4) as rx:
        delivery_id = await outbox.enqueue("acme", rx.url, "test.event", {"n": 2})
        await run.until(lambda: run.outcomes["dead"] == 1)
        assert run.outcomes == Counter(retried=3, dead=1)
        dead = await outbox.dead_letters()
        assert [d.delivery.id for d in dead] == [delivery_id]
        assert dead[0].delivery.attempts == 4
        assert dead[0].delivery.last_error.startswith("HTTP 500")
        assert await outbox.depth() == 0

        assert await outbox.retry_dead("whd_not-there") == 0
        assert await outbox.retry_dead(delivery_id) == 1
        assert await outbox.retry_dead(delivery_id) == 0
        await run.until(lambda: run.outcomes["delivered"] == 1)
    assert await outbox.dead_letters() == []
    assert len(rx.received) == 5
    assert rx.received[-1].headers["Webhook-Attempt"] == "1"


async def test_dead_letters_older_than_the_retention_are_trimmed(
    redis_client: aioredis.Redis,
) -> None:
    outbox = Outbox(redis_client)
    ancient = await redis_client.xadd(keys.DEADLETTER, {"d": b"{}"}, id="1000-0")
    day_old = int(time.time() * 1000) - 86_400_000
    recent = await redis_client.xadd(keys.DEADLETTER, {"d": b"{}"}, id=f"{day_old}-0")
    run = Run(redis_client, max_attempts=1, deadletter_retention_s=2 * 86400)
    try:
        with receiver([500, 500]) as rx:
            delivery_id = await outbox.enqueue("acme", rx.url, "test.event", {})
            await run.until(lambda: run.outcomes["dead"] == 1)
            left = await redis_client.xrange(keys.DEADLETTER)
            assert [entry_id for entry_id, _ in left][:1] == [recent]
            assert ancient not in [entry_id for entry_id, _ in left]
            assert orjson.loads(left[-1][1][b"d"])["id"] == delivery_id

            async with redis_client.pipeline(transaction=False) as pipe:
                for _ in range(500):
                    pipe.xadd(keys.DEADLETTER, {"d": b"{}"})
                await pipe.execute()
            run.worker.deadletter_max = 50
            await outbox.enqueue("acme", rx.url, "test.event", {})
            await run.until(lambda: run.outcomes["dead"] == 2)
    finally:
        await run.http.aclose()
    assert 50 <= await redis_client.xlen(keys.DEADLETTER) < 200  # trimmed by whole nodes


async def test_retry_all_dead_letters(redis_client: aioredis.Redis, run: Run) -> None:
    outbox = Outbox(redis_client)
    with receiver([500] * 8) as rx:
        for n in range(2):
            await outbox.enqueue("acme", rx.url, "test.event", {"n": n})
        await run.until(lambda: run.outcomes["dead"] == 2)
        assert await outbox.retry_dead() == 2
        await run.until(lambda: run.outcomes["delivered"] == 2)
    assert await outbox.dead_letters() == []


async def test_a_delivery_survives_a_restart(
    redis_server: str, redis_client: aioredis.Redis
) -> None:
    with receiver() as rx:
        # queued by a process that then went away before any worker ran
        gone = aioredis.Redis.from_url(redis_server)
        delivery_id = await Outbox(gone).enqueue("acme", rx.url, "test.event", {"n": 3})
        await gone.aclose()
        fresh = Run(redis_client)
        try:
            await fresh.until(lambda: received_ok(rx, 1))
        finally:
            await fresh.http.aclose()
    assert orjson.loads(rx.received[0].body)["id"] == delivery_id


async def test_a_delivery_read_by_a_dead_process_is_claimed_by_another(
    redis_client: aioredis.Redis,
) -> None:
    outbox = Outbox(redis_client)
    with receiver() as rx:
        dying = Run(redis_client, consumer="dying")
        await dying.worker.ensure_group()
        delivery_id = await outbox.enqueue("acme", rx.url, "test.event", {"n": 4})
        # the dying process reads the delivery, then is killed before it sends it
        read = await redis_client.xreadgroup(GROUP, "dying", {keys.OUTBOX: ">"}, count=10)
        assert len(read[0][1]) == 1
        await dying.http.aclose()
        survivor = Run(redis_client, consumer="survivor", claim_idle_s=0.2)
        try:
            await survivor.until(lambda: survivor.outcomes["delivered"] == 1)
        finally:
            await survivor.http.aclose()
    assert [orjson.loads(b)["id"] for b in rx.bodies()] == [delivery_id]
    pending = await redis_client.xpending(keys.OUTBOX, GROUP)
    assert pending["pending"] == 0


async def test_redirects_are_not_followed(redis_client: aioredis.Redis, run: Run) -> None:
    outbox = Outbox(redis_client)
    with receiver([302, 302, 302, 302]) as rx:
        await outbox.enqueue("acme", rx.url, "test.event", {})
        await run.until(lambda: run.outcomes["dead"] == 1)
    assert len(rx.received) == 4
    dead = await outbox.dead_letters()
    assert dead[0].delivery.last_error.startswith("HTTP 302")


async def test_unreachable_receivers_are_retried(redis_client: aioredis.Redis) -> None:
    from billing.embedded import free_port

    run = Run(redis_client, max_attempts=2)
    try:
        url = f"http://127.0.0.1:{free_port()}/hook"
        await Outbox(redis_client).enqueue("acme", url, "test.event", {})
        await run.until(lambda: run.outcomes["dead"] == 1)
    finally:
        await run.http.aclose()
    assert run.outcomes == Counter(retried=1, dead=1)
    dead = await Outbox(redis_client).dead_letters()
    assert "ConnectError" in dead[0].delivery.last_error


async def test_cli_endpoints_alert_thresholds_and_dead_letters(
    redis_client: aioredis.Redis,
) -> None:
    from tests.integration.test_billing_cli import run as cli

    code, text = await cli(redis_client, "webhooks", "set", "acme", "https://hooks.example/a")
    assert code == 0
    secret = text.split("store it now): ")[1].strip()
    assert secret == await Webhooks(redis_client).secret("acme")
    code, text = await cli(redis_client, "webhooks", "set", "acme", "https://hooks.example/b")
    assert "unchanged" in text
    assert secret == await Webhooks(redis_client).secret("acme")
    code, text = await cli(redis_client, "webhooks", "set", "acme", "ftp://nope")
    assert code == 2
    code, text = await cli(redis_client, "billing", "alerts", "acme", "--thresholds", "90,50")
    assert code == 0
    assert "thresholds 50,90" in text
    code, text = await cli(redis_client, "webhooks", "list")
    assert "acme  https://hooks.example/b  thresholds=50,90" in text
    code, text = await cli(redis_client, "billing", "alerts", "acme", "--plan-default")
    assert "the plan's" in text
    code, text = await cli(redis_client, "billing", "alerts", "acme", "--thresholds", "150")
    assert code == 2

    from billing.embedded import free_port

    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    await cli(redis_client, "webhooks", "set", "acme", closed)
    code, text = await cli(redis_client, "webhooks", "ping", "acme")
    assert code == 0
    run = Run(redis_client, max_attempts=1)
    try:
        await run.until(lambda: run.outcomes["dead"] == 1)
    finally:
        await run.http.aclose()
    code, text = await cli(redis_client, "webhooks", "list", "--failed")
    assert "webhook.test" in text
    assert "1 dead letter(s)" in text
    delivery_id = text.split()[0]
    code, text = await cli(redis_client, "webhooks", "retry")
    assert code == 2
    code, text = await cli(redis_client, "webhooks", "retry", delivery_id)
    assert text.startswith("1 delivery")
    assert await Outbox(redis_client).dead_letter_count() == 0
    code, text = await cli(redis_client, "webhooks", "retry", "--all")
    assert text.startswith("0 delivery")


def test_the_service_delivers_what_was_queued_before_it_started(
    redis_server: str, module_cache: Path, var_dir: Path
) -> None:
    from tests.integration.conftest import make_settings, start_server, stop_server

    async def queue(url: str) -> str:
        redis = aioredis.Redis.from_url(redis_server)
        try:
            return await Outbox(redis).enqueue("svc-client", url, "test.event", {"n": 5})
        finally:
            await redis.aclose()

    import redis as syncredis

    with syncredis.Redis.from_url(redis_server) as plain:
        plain.flushdb()  # no deliveries left by other tests
    with receiver([500]) as rx:
        delivery_id = asyncio.run(queue(rx.url))  # no service runs yet
        live = start_server(
            make_settings(
                redis_server, var_dir, module_cache_dir=module_cache, webhook_backoff_s=0.05
            )
        )
        try:
            deadline = time.monotonic() + 30  # hang guard
            with live.client() as http:
                text = ""
                while 'result="delivered"' not in text and time.monotonic() < deadline:
                    time.sleep(0.05)
                    text = http.get("/metrics").text
        finally:
            stop_server(live)
    assert [orjson.loads(b)["id"] for b in rx.bodies()] == [delivery_id, delivery_id]
    assert 'codexec_webhook_deliveries_total{result="retried"} 1.0' in text
    assert 'codexec_webhook_deliveries_total{result="delivered"} 1.0' in text
    assert "codexec_webhook_attempts_total 2.0" in text


async def test_unreadable_entries_are_dropped_not_fatal(
    redis_client: aioredis.Redis, run: Run
) -> None:
    await run.worker.ensure_group()
    await redis_client.xadd(keys.OUTBOX, {"d": "not json"})
    await redis_client.xadd(keys.OUTBOX, {"other": "field"})
    with receiver() as rx:
        await Outbox(redis_client).enqueue("acme", rx.url, "test.event", {})
        await run.until(lambda: run.outcomes["delivered"] == 1)
    assert len(rx.received) == 1
    assert await redis_client.xlen(keys.OUTBOX) == 0
    assert (await redis_client.xpending(keys.OUTBOX, GROUP))["pending"] == 0


@pytest.mark.cluster
async def test_outbox_and_alerts_on_a_redis_cluster(tmp_path: Path) -> None:
    """Every script touches keys of one slot: ``{outbox}`` or ``{client}``."""
    from datetime import UTC, datetime

    from redis.asyncio.cluster import RedisCluster

    from billing.alerts import Alerts
    from billing.embedded import EmbeddedCluster
    from billing.plans import Plans

    with EmbeddedCluster(tmp_path / "cluster") as running:
        rc = RedisCluster(host="127.0.0.1", port=running.ports[0])
        run = Run(rc, max_attempts=2)  # type: ignore[arg-type]
        try:
            outbox = Outbox(rc)
            with receiver([500, 500, 500]) as rx:
                await Webhooks(rc).set_endpoint("acme", rx.url)
                first = await outbox.enqueue("acme", rx.url, "test.event", {}, key="k1")
                assert await outbox.enqueue("acme", rx.url, "test.event", {}, key="k1") == first
                await run.until(lambda: run.outcomes["dead"] == 1)
                assert await outbox.retry_dead(first) == 1
                await run.until(lambda: run.outcomes["delivered"] == 1)
                alerts = Alerts(rc, outbox, refresh_s=0)  # type: ignore[arg-type]
                month = keys.month_period(datetime.now(UTC))
                await rc.hincrby(keys.usage("acme", month), "cost_pusd", 6 * 10**12)
                plan = Plans.load().get("basic")
                assert await alerts.after_charge("acme", plan, 6 * 10**12) == [50]
                await run.until(lambda: run.outcomes["delivered"] == 2)
            assert [orjson.loads(b)["type"] for b in rx.bodies()][-1] == "budget.threshold"
        finally:
            await run.http.aclose()
            await rc.aclose()
