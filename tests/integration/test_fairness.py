"""Fairness between clients: one client flooding a process cannot take every sandbox.

A real ``codexec serve`` process with 3 sandbox threads; client ``flood``, in a process of
its own, keeps 64 requests going (after a 429 it waits ``Retry-After`` x U(0.5, 1.5), as a
client told to retry does), while client ``steady`` sends one request at a time, the same
~7 ms of work. Quiet and flooded phases alternate 8 times; the steady client's p99 latency
under the flood stays within 2x of its p99 alone. Two cases: both clients on the packaged
``enterprise`` plan (no ``max_concurrency``: the default ``CODEXEC_CLIENT_SHARE`` of 0.5
holds the flood to one of the 3 threads and 16 of the 32 places of ``CODEXEC_MAX_IN_FLIGHT``,
its other requests waiting for its own thread or refused with 429), and the flood on a plan
of its own with ``max_concurrency: 1`` (one request in progress, the rest refused).

This is a behavioural ratio measured in one run on one machine, not an absolute timing; the
flood's fair share (one thread) still takes CPU, so on an oversubscribed machine (load
average over twice its CPUs) other tenants would set the ratio. The guard first waits up to
``QUIET_WAIT_S`` for the load average to fall below that (on CI it is usually the earlier
tests' own load decaying), and skips only if it does not;
``FAIRNESS_ON_A_BUSY_MACHINE=1`` runs the test regardless. Noise from other tenants can only
raise the flooded p99, so a failed measurement is repeated, up to ``ATTEMPTS`` times.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from billing.apikeys import ApiKeys
from reliability.launch import launch

PLANS = {
    "default": "steady",
    "plans": {
        name: {
            "max_timeout_ms": 10000,
            "max_memory_bytes": 134217728,
            "price_per_cpu_second": "0.0001",
            "price_per_mb": "0.00001",
            "monthly_budget": None,
            "rate_per_second": 1000000,
            "burst": 1000000,
            **extra,
        }
        for name, extra in (("steady", {}), ("flood", {"max_concurrency": 1}))
    },
}
PACKAGED_PLAN = "enterprise"  # the packaged plan whose rate limit a steady client stays under
# ~7 ms of interpreter work, beyond the inline slice: every run needs a thread
STEADY = {"code": "let s = 0; for (let i = 0; i < 1e5; i++) s += i; return s;"}
FLOOD = STEADY  # the same work: only the concurrency differs
SAMPLES = 20
ROUNDS = 8
ATTEMPTS = 3
QUIET_WAIT_S = 90.0


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def steady_latencies(http: httpx.Client, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        resp = http.post("/execute", json=STEADY)
        latencies.append(time.perf_counter() - start)
        assert resp.status_code == 200, resp.text
    return latencies


async def _flood(port: int, token: str, go: EventType, stop: EventType) -> dict[int, int]:
    body = json.dumps(FLOOD).encode()
    request = (
        f"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    seen: dict[int, int] = {}

    async def one() -> None:
        # plain HTTP/1.1 on one keep-alive connection: the load generator's own CPU stays
        # small next to the server's (httpx costs milliseconds per request)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not stop.is_set():
                if not go.is_set():
                    await asyncio.sleep(0.05)
                    continue
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
                length = int(head.split("content-length:")[1].split("\r\n")[0])
                await reader.readexactly(length)
                status = int(head.split(" ", 2)[1])
                seen[status] = seen.get(status, 0) + 1
                if status == 429:
                    retry_after = float(head.split("retry-after:")[1].split("\r\n")[0])
                    await asyncio.sleep(retry_after * random.uniform(0.5, 1.5))
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(64)))
    return seen


def flood(
    port: int, token: str, go: EventType, stop: EventType, out: Queue[dict[int, int]]
) -> None:
    """64 requests going while ``go`` is set, until ``stop`` (in a process of its own, so
    the measuring thread does not share a GIL with it); puts the status counts in ``out``."""
    out.put(asyncio.run(_flood(port, token, go, stop)))


async def make_keys(redis_url: str, case: str, plans: tuple[str, str]) -> tuple[str, str]:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        keys = ApiKeys(redis)
        steady_plan, flood_plan = plans
        return (
            await keys.create(f"fair-{case}-steady", steady_plan),
            await keys.create(f"fair-{case}-flood", flood_plan),
        )
    finally:
        await redis.aclose()


def skip_on_a_busy_machine() -> None:
    """Wait up to ``QUIET_WAIT_S`` for the load average to fall to twice the CPUs, or skip."""
    if os.environ.get("FAIRNESS_ON_A_BUSY_MACHINE"):
        return
    limit = 2 * (os.cpu_count() or 1)
    give_up = time.monotonic() + QUIET_WAIT_S
    while os.getloadavg()[0] > limit:
        if time.monotonic() > give_up:
            # The flood's fair share (one thread) still takes CPU; on an oversubscribed
            # machine every extra runnable thread slows the steady client by the other
            # tenants' ratio.
            pytest.skip(
                f"the machine stayed oversubscribed (load average > {limit}) for "
                f"{QUIET_WAIT_S:.0f} s: no latency ratio (FAIRNESS_ON_A_BUSY_MACHINE=1 runs it)"
            )
        time.sleep(1.0)


@pytest.mark.parametrize("case", ["packaged", "explicit"])
def test_a_flooding_client_does_not_slow_another_down(
    case: str, redis_server: str, tmp_path: Path, module_cache: Path
) -> None:
    skip_on_a_busy_machine()
    settings = {
        "REDIS_URL": redis_server,
        "MODULE_CACHE_DIR": str(module_cache),
        "SANDBOX_THREADS": "3",
    }
    if case == "packaged":
        plan_names = (PACKAGED_PLAN, PACKAGED_PLAN)
    else:
        plans = tmp_path / "plans.json"
        plans.write_text(json.dumps(PLANS))
        settings["PLANS_FILE"] = str(plans)
        plan_names = ("steady", "flood")
    steady_token, flood_token = asyncio.run(make_keys(redis_server, case, plan_names))
    try:
        service = launch(settings, tmp_path / "var", timeout=45)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    spawn = multiprocessing.get_context("spawn")
    go, stop, out = spawn.Event(), spawn.Event(), spawn.Queue()
    port = int(service.url.rsplit(":", 1)[1])
    flooder = spawn.Process(target=flood, args=(port, flood_token, go, stop, out))
    attempts: list[str] = []
    try:
        flooder.start()
        with httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {steady_token}"}, timeout=30
        ) as http:
            steady_latencies(http, 20)  # warm-up
            # Other tenants' load can only inflate the flooded p99, never hide unfairness,
            # so a measurement is repeated (at most ATTEMPTS times) until one is clean.
            for _ in range(ATTEMPTS):
                alone: list[float] = []
                loaded: list[float] = []
                for _ in range(ROUNDS):  # alternate, so that a change in the machine's load
                    alone += steady_latencies(http, SAMPLES)  # hits both sides alike
                    go.set()
                    time.sleep(0.5)
                    loaded += steady_latencies(http, SAMPLES)
                    go.clear()
                    time.sleep(1.0)  # the flood's last runs and retries drain
                quiet, busy = p99(alone), p99(loaded)
                attempts.append(f"{busy * 1000:.1f} ms flooded vs {quiet * 1000:.1f} ms alone")
                if busy <= 2 * quiet:
                    break
    finally:
        stop.set()
        go.set()
        seen: dict[int, int] = out.get(timeout=60) if flooder.is_alive() else {}
        flooder.join(60)
        service.stop()
    assert seen.get(200, 0) > 0, seen  # the flood did run...
    assert seen.get(429, 0) > 0, seen  # ...held to its share, the rest refused at once
    assert set(seen) <= {200, 429}, seen
    ms = "steady p99 per attempt: " + "; ".join(attempts)
    print(f"fairness[{case}]: {ms}; flood answers {seen}")  # shown with pytest -s
    assert busy <= 2 * quiet, ms
