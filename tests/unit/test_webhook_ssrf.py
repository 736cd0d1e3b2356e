"""Where webhook deliveries may connect: every resolved address checked, refusals final.

Real Redis and a real receiver on 127.0.0.1; ``localhost`` is a *name* that resolves to a
loopback address, which is what a DNS-based SSRF looks like from the service's side.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis.asyncio as aioredis

from billing.webhook_address import refusal
from billing.webhook_delivery import DeliveryWorker, http_client
from billing.webhooks import Outbox
from tests.integration.receiver import receiver


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not globally routable"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1%eth0", "link-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", None),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_refused_addresses(address: str, why: str | None) -> None:
    assert refusal(address) == why


async def _deliver(redis: aioredis.Redis, url: str, *, allow_private: bool) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    async with http_client(5, allow_private=allow_private) as http:
        worker = DeliveryWorker(
            Outbox(redis),
            http,
            max_attempts=5,
            backoff_base_s=0.01,
            backoff_max_s=0.02,
            block_ms=20,
            on_outcome=lambda r: outcomes.update([r]),
        )
        await Outbox(redis).enqueue("acme", url, "test.event", {"n": 1})
        deadline = time.monotonic() + 20  # hang guard
        while not outcomes:
            assert time.monotonic() < deadline, "no outcome"
            await worker.run_once()
    return outcomes


async def test_a_name_resolving_to_loopback_is_refused_and_dead_lettered(
    redis_client: aioredis.Redis,
) -> None:
    with receiver() as rx:
        url = rx.url.replace("127.0.0.1", "localhost")
        outcomes = await _deliver(redis_client, url, allow_private=False)
        assert outcomes == Counter(dead=1)  # at once: a retry could not go better
        assert rx.received == []  # never connected
    dead = await Outbox(redis_client).dead_letters()
    assert len(dead) == 1
    assert dead[0].delivery.attempts == 1
    error = dead[0].delivery.last_error
    assert error.startswith("address refused: localhost resolves only to refused addresses")
    assert "127.0.0.1 (loopback)" in error
    assert await Outbox(redis_client).depth() == 0


async def test_an_ip_literal_is_checked_too(redis_client: aioredis.Redis) -> None:
    with receiver() as rx:
        outcomes = await _deliver(redis_client, rx.url, allow_private=False)
        assert outcomes == Counter(dead=1)
        assert rx.received == []


async def test_private_addresses_allowed_when_the_setting_is_on(
    redis_client: aioredis.Redis,
) -> None:
    with receiver() as rx:
        url = rx.url.replace("127.0.0.1", "localhost")
        outcomes = await _deliver(redis_client, url, allow_private=True)
        assert outcomes == Counter(delivered=1)
        assert len(rx.received) == 1
        assert rx.received[0].headers["Host"] == url.split("/")[2]  # the name, not the address
    assert await Outbox(redis_client).dead_letters() == []


async def test_an_unresolvable_name_is_retried_not_refused(redis_client: aioredis.Redis) -> None:
    outcomes = await _deliver(redis_client, "http://no-such-host.invalid/hook", allow_private=False)
    assert outcomes == Counter(retried=1)
