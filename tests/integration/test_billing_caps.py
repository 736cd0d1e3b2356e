"""Hard spend caps against a real Redis and real ``codexec serve`` processes.

The gate-level tests play several processes with several :class:`Gate` objects and record
each run's cost into the month's usage hash as ``record.lua`` would; the HTTP tests run the
whole service: 16 concurrent streams against a budget of exactly 100 runs, and a worker
killed with SIGKILL in the middle of a run whose reservation must come back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis as syncredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from billing import keys
from billing.apikeys import ApiKeys
from billing.embedded import EmbeddedCluster
from billing.errors import QuotaExceeded, RateLimitExceeded
from billing.gate import Gate
from billing.money import from_pico, to_pico
from billing.plans import Plan, Plans
from billing.pricing import price
from billing.quotas import Quotas, fuel_for_cost
from billing.totals import UsageTotals
from reliability.launch import Service, launch
from tests.integration.conftest import make_settings, start_server, stop_server

PLANS = Plans.load()
NOW = datetime(2024, 8, 15, tzinfo=UTC)
MONTH = keys.month_period(NOW)


def capped(budget: str, *, rate: float = 1e6) -> Plan:
    return PLANS.get("basic").model_copy(
        update={"monthly_budget": Decimal(budget), "rate_per_second": rate, "burst": int(rate)}
    )


async def recorded(redis: aioredis.Redis, client: str, month: str = MONTH) -> int:
    raw: dict[bytes, bytes] = await redis.hgetall(keys.usage(client, month))  # type: ignore[assignment]
    return UsageTotals.from_hash(raw).cost_pusd


async def test_concurrent_gates_never_lease_past_the_budget(redis_client: aioredis.Redis) -> None:
    # 3 processes, 40 concurrent runs each costing exactly what it reserved (1e-9 USD), in
    # three waves; a budget of 50 runs: exactly 50 run, the month never exceeds it.
    plan = capped("0.00000005")
    budget = to_pico(Decimal("0.00000005"))
    cost = Decimal("0.000000001")
    gates = [Gate(redis_client, hard_caps=True) for _ in range(3)]
    ran = refused = 0

    async def one(i: int) -> None:
        nonlocal ran, refused
        gate = gates[i % 3]
        try:
            held = await gate.admit("acme", plan, now=NOW, max_cost=cost, hold_s=1)
        except QuotaExceeded:
            refused += 1
            return
        assert held is not None
        await asyncio.sleep(0.001 * (i % 5))
        await redis_client.hincrby(keys.usage("acme", MONTH), "cost_pusd", to_pico(cost))
        gate.charge("acme", cost)
        held.release()
        ran += 1
        assert await recorded(redis_client, "acme") <= budget

    for _ in range(3):  # a later wave sees what the first left
        await asyncio.gather(*(one(i) for i in range(40)))
    assert ran == 50
    assert refused == 3 * 40 - 50
    assert await recorded(redis_client, "acme") == to_pico(Decimal("0.00000005"))


async def test_quota_error_names_the_remaining_budget(redis_client: aioredis.Redis) -> None:
    gate = Gate(redis_client, hard_caps=True)
    plan = capped("0.000000010")
    await redis_client.hset(keys.usage("acme", MONTH), "cost_pusd", 7000)
    with pytest.raises(QuotaExceeded) as refused:
        await gate.admit("acme", plan, now=NOW, max_cost=Decimal("0.000000004"))
    assert refused.value.remaining == "0.000000003"
    held = await gate.admit("acme", plan, now=NOW, max_cost=Decimal("0.000000003"))
    assert held is not None


async def test_a_dead_processs_lease_is_swept_after_its_lifetime(
    redis_client: aioredis.Redis,
) -> None:
    plan = capped("0.00000001")
    dead = Gate(redis_client, hard_caps=True, budget_lease_ttl_s=0.3, settle_grace_s=0)
    held = await dead.admit("acme", plan, now=NOW, max_cost=Decimal("0.000000008"))
    assert held is not None  # ...and its process dies without releasing it
    live = Gate(redis_client, hard_caps=True, budget_lease_ttl_s=0.3)
    with pytest.raises(QuotaExceeded):
        await live.admit("acme", plan, now=NOW, max_cost=Decimal("0.000000005"))
    assert await redis_client.zscore(keys.lease_deadlines("acme", MONTH), dead.lease_id)
    await asyncio.sleep(1.5)  # the lease lived 0.3 s + 1 s of margin
    assert await live.admit("acme", plan, now=NOW, max_cost=Decimal("0.000000005"))
    assert await redis_client.hget(keys.budget_leases("acme", MONTH), dead.lease_id) is None


async def test_admission_gives_up_within_one_redis_budget_even_after_waiting(
    redis_server: str, redis_client: aioredis.Redis
) -> None:
    """Admission is one step with one Redis budget (``CODEXEC_REDIS_BUDGET_S``): a request that
    waits for another request's lease call (one per client at a time) and would then make its
    own gives up when the budget is spent, not after twice it (and fails open, as the first)."""
    client = aioredis.Redis.from_url(redis_server)
    gate = Gate(client, hard_caps=True, redis_timeout_s=0.4)
    plan = capped("1")

    async def admit() -> float:
        started = time.monotonic()
        assert await gate.admit("acme", plan, now=NOW, max_cost=Decimal("0.000001")) is None
        return time.monotonic() - started

    try:
        await redis_client.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        paused = time.monotonic()
        first, second = await asyncio.gather(admit(), admit())
        # each gives up after 0.4 s; waiting for the first call and then making its own
        # would take the second 0.8 s
        assert first < 0.7
        assert second < 0.7
    finally:
        await asyncio.sleep(max(0.0, 1.6 - (time.monotonic() - paused)))
        await client.aclose()


async def test_clients_without_a_budget_hold_no_lease(redis_client: aioredis.Redis) -> None:
    gate = Gate(redis_client, hard_caps=True)
    unlimited = PLANS.get("enterprise")
    assert unlimited.monthly_budget is None
    for _ in range(5):
        assert await gate.admit("big", unlimited, now=NOW, max_cost=Decimal(5)) is None
    assert not await redis_client.exists(keys.budget_leases("big", MONTH))
    await Quotas(redis_client, PLANS).set_budget("limited", None)  # override: unlimited
    assert await gate.admit("limited", capped("0.000001"), now=NOW, max_cost=Decimal(1)) is None


# ---- the whole service: real `codexec serve` processes ----------------------------------

SERVE_PLAN_FIELDS = {
    "max_timeout_ms": 10000,
    "max_memory_bytes": 134217728,
    "price_per_execution": "0",
    "price_per_cpu_second": "0.0001",
    "price_per_mb": "0",
    "monthly_budget": "1",
    "rate_per_second": 1000000,
    "burst": 1000000,
}
SERVE_PLANS = {"default": "capped", "plans": {"capped": SERVE_PLAN_FIELDS}}
SERVE_PLAN = Plans.parse(json.dumps(SERVE_PLANS)).get("capped")
SPIN = "while (true) {}"


def serve(redis_url: str, var_dir: Path, module_cache: Path) -> Service:
    plans = var_dir.parent / "plans.json"
    plans.write_text(json.dumps(SERVE_PLANS))
    settings = {
        "REDIS_URL": redis_url,
        "PLANS_FILE": str(plans),
        "MODULE_CACHE_DIR": str(module_cache),
        "SANDBOX_THREADS": "2",
        "BUDGET_LEASE_TTL_S": "1",
    }
    try:
        return launch(settings, var_dir, timeout=45)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def client_key(redis_url: str, client_id: str, budget_pusd: int) -> str:
    """A key of plan ``capped`` for ``client_id``, whose monthly budget is overridden."""

    async def create() -> str:
        redis = aioredis.Redis.from_url(redis_url)
        try:
            await Quotas(redis, Plans.parse(json.dumps(SERVE_PLANS))).set_budget(
                client_id, from_pico(budget_pusd)
            )
            return await ApiKeys(redis).create(client_id, "capped")
        finally:
            await redis.aclose()

    return asyncio.run(create())


def month_cost(redis: syncredis.Redis, client_id: str) -> UsageTotals:
    month = keys.month_period(datetime.now(UTC))
    raw: dict[bytes, bytes] = redis.hgetall(keys.usage(client_id, month))  # type: ignore[assignment]
    return UsageTotals.from_hash(raw)


def test_sixteen_streams_run_exactly_what_the_budget_affords(
    redis_server: str, tmp_path: Path, module_cache: Path
) -> None:
    # Every run spins until the fuel its maxCost buys is gone, so it costs exactly its
    # reservation: price(fuel cap) with no memory price and no per-execution price. The
    # budget is 100.5 such runs: exactly 100 can be afforded.
    max_cost = "0.0000001"
    memory = 8 * 1024 * 1024
    fuel = fuel_for_cost(SERVE_PLAN, Decimal(max_cost), memory)
    assert fuel is not None
    assert fuel > 0
    per_run = to_pico(price(SERVE_PLAN, fuel, memory).cost)
    budget = 100 * per_run + per_run // 2
    token = client_key(redis_server, "caps-16", budget)
    service = serve(redis_server, tmp_path / "var", module_cache)
    redis = syncredis.Redis.from_url(redis_server)
    body = {"code": SPIN, "maxCost": max_cost, "memoryLimit": memory, "timeout": 10000}
    statuses: list[int] = []
    stop = False

    def stream(_: int) -> list[httpx.Response]:
        got = []
        with httpx.Client(base_url=service.url, timeout=60) as http:
            http.headers["Authorization"] = f"Bearer {token}"
            while True:
                resp = http.post("/execute", json=body)
                got.append(resp)
                if resp.status_code != 200:
                    return got

    def watch() -> int:
        highest = 0
        while not stop:
            highest = max(highest, month_cost(redis, "caps-16").cost_pusd)
            time.sleep(0.005)
        return highest

    try:
        with ThreadPoolExecutor(17) as pool:
            watcher = pool.submit(watch)
            answers = [r for got in pool.map(stream, range(16)) for r in got]
            stop = True
            highest = watcher.result()
    finally:
        service.stop()
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) == 100
    assert statuses.count(402) == 16
    assert len(statuses) == 116
    ok = next(r for r in answers if r.status_code == 200)
    error = ok.json()["error"]
    assert error["type"] == "FuelExhaustedError"
    assert "maxCost of 0.0000001 USD reached" in error["message"]
    assert ok.json()["metrics"]["fuel"] == fuel
    assert ok.headers["RateLimit-Policy"] == '"burst";q=1000000;w=1'
    assert ok.headers["RateLimit"].startswith('"burst";r=')
    refused = next(r for r in answers if r.status_code == 402).json()["error"]
    assert refused["type"] == "QuotaExceeded"
    assert Decimal(refused["remaining"]) < from_pico(per_run)
    totals = month_cost(redis, "caps-16")
    assert (totals.executions, totals.cost_pusd) == (100, 100 * per_run)
    assert highest <= budget


def test_a_killed_workers_reservation_is_released(
    redis_server: str, tmp_path: Path, module_cache: Path
) -> None:
    # A's run may cost 0.0008 USD (4 s x fuel headroom 2 at 0.0001/s), B's 0.0006; the
    # budget of 0.001 holds one of them. A is killed mid-run: its lease must come back
    # within its lifetime (BUDGET_LEASE_TTL_S 1 + A's timeout 4 + 2 s grace + 1 s = 8 s).
    token = client_key(redis_server, "caps-kill", to_pico(Decimal("0.001")))
    a = serve(redis_server, tmp_path / "a", module_cache)
    b = serve(redis_server, tmp_path / "b", module_cache)
    redis = syncredis.Redis.from_url(redis_server)
    deadlines = keys.lease_deadlines("caps-kill", keys.month_period(datetime.now(UTC)))
    auth = {"Authorization": f"Bearer {token}"}
    short = {"code": "return 1", "timeout": 3000}
    try:
        with ThreadPoolExecutor(1) as pool:
            doomed = pool.submit(
                httpx.post,
                a.url + "/execute",
                json={"code": SPIN, "timeout": 4000},
                headers=auth,
                timeout=30,
            )
            hang_guard = time.monotonic() + 20
            while not redis.zcard(deadlines) and time.monotonic() < hang_guard:
                time.sleep(0.02)
            assert redis.zcard(deadlines) == 1, "A never took its lease"
            before = httpx.post(b.url + "/execute", json=short, headers=auth, timeout=30)
            assert before.status_code == 402, before.text
            os.killpg(a.proc.pid, signal.SIGKILL)
            a.proc.wait(10)
            with pytest.raises(httpx.TransportError):
                doomed.result()
        killed = time.monotonic()
        statuses = []
        while time.monotonic() < killed + 30:
            resp = httpx.post(b.url + "/execute", json=short, headers=auth, timeout=30)
            statuses.append(resp.status_code)
            if resp.status_code == 200:
                break
            time.sleep(0.2)
        assert statuses[-1] == 200, statuses
        assert statuses[0] == 402  # the dead process's reservation outlived it for a while
        assert set(statuses[:-1]) == {402}
        assert month_cost(redis, "caps-kill").executions == 1  # A's run was never billed
    finally:
        a.stop()
        b.stop()


async def test_runs_reserve_locally_after_one_call(redis_client: aioredis.Redis) -> None:
    gate = Gate(redis_client, hard_caps=True)
    plan = capped("1")
    await redis_client.config_resetstat()
    for _ in range(20):
        held = await gate.admit("acme", plan, now=NOW, max_cost=Decimal("0.001"), hold_s=5)
        assert held is not None
        gate.charge("acme", Decimal("0.0001"))
        held.release()
    stats = await redis_client.info("commandstats")
    calls = stats.get("cmdstat_evalsha", {}).get("calls", 0) + stats.get("cmdstat_eval", {}).get(
        "calls", 0
    )
    assert calls <= 2  # one call (+ its NOSCRIPT retry) leased 8 runs; each gave most back
    lease = await redis_client.hget(keys.budget_leases("acme", MONTH), gate.lease_id)
    assert lease is not None
    assert int(lease) == to_pico(Decimal("0.008"))


@pytest.mark.cluster
async def test_leases_on_a_redis_cluster(tmp_path: Path) -> None:
    # every key admit.lua touches carries the client's hash tag: one slot, one script run
    with EmbeddedCluster(tmp_path / "cluster") as running:
        rc = RedisCluster(host="127.0.0.1", port=running.ports[0])
        try:
            gate = Gate(rc, hard_caps=True)
            plan = capped("0.000000003")
            for client in ("tenant-0", "tenant-5"):
                for _ in range(3):
                    held = await gate.admit(client, plan, now=NOW, max_cost=Decimal("1e-9"))
                    assert held is not None
                with pytest.raises(QuotaExceeded):
                    await gate.admit(client, plan, now=NOW, max_cost=Decimal("1e-9"))
        finally:
            await rc.aclose()


async def test_a_refusal_describes_the_bucket(redis_client: aioredis.Redis) -> None:
    gate = Gate(redis_client, hard_caps=True, lease_fraction=0.0)
    plan = capped("1", rate=2.0).model_copy(update={"burst": 3})
    for _ in range(3):
        await gate.admit("acme", plan, now=NOW, max_cost=Decimal("0.001"))
    with pytest.raises(RateLimitExceeded) as refused:
        await gate.admit("acme", plan, now=NOW, max_cost=Decimal("0.001"))
    assert (refused.value.limit, refused.value.window_s) == (3, 2)
    assert 0 < refused.value.retry_after <= 0.5
    state = gate.rate_state("acme", plan)
    assert (state.limit, state.window_s, state.remaining) == (3, 2, 0)
    assert state.reset_s == 2


def test_max_cost_and_rate_limit_headers_over_http(
    redis_server: str, tmp_path: Path, module_cache: Path
) -> None:
    plans = tmp_path / "plans.json"
    slow = {**SERVE_PLAN_FIELDS, "rate_per_second": 0.5, "burst": 1}
    plans.write_text(
        json.dumps({"default": "capped", "plans": {"capped": SERVE_PLAN_FIELDS, "slow": slow}})
    )
    live = start_server(
        make_settings(
            redis_server, tmp_path / "var", plans_file=plans, module_cache_dir=module_cache
        )
    )
    try:
        token = live.new_key("caps-http", "capped")
        with live.client(token) as http:
            # below the inline fuel slice: the run ends inline, at exactly the fuel bought
            tiny = "0.00000001"
            fuel = fuel_for_cost(SERVE_PLAN, Decimal(tiny), 1 << 20)
            assert fuel is not None
            assert 0 < fuel < live.settings.inline_fuel
            body = {"code": SPIN, "maxCost": tiny, "memoryLimit": 1 << 20}
            ran = http.post("/execute", json=body).json()
            assert ran["metrics"]["fuel"] == fuel
            assert ran["error"]["type"] == "FuelExhaustedError"
            assert Decimal(str(ran["metrics"]["cost"])) <= Decimal(tiny)
            cheap = http.post("/execute", json={"code": "return 2", "maxCost": "0.001"}).json()
            assert cheap["result"] == 2  # a cap not reached changes nothing
            bad = http.post("/execute", json={"code": "return 1", "maxCost": "1e-30"})
            assert bad.status_code == 400  # buys no fuel at all
            assert bad.json()["error"]["field"] == "maxCost"
            assert http.post("/execute", json={"code": "1", "maxCost": 1}).status_code == 400
        with live.client(live.new_key("caps-slow", "slow")) as http:
            first = http.post("/execute", json={"code": "return 1"})
            second = http.post("/execute", json={"code": "return 1"})
        assert first.headers["RateLimit-Policy"] == '"burst";q=1;w=2'
        assert first.headers["RateLimit"] == '"burst";r=0;t=2'
        assert second.status_code == 429
        assert second.headers["RateLimit-Policy"] == '"burst";q=1;w=2'
        assert second.headers["RateLimit"] == f'"burst";r=0;t={second.headers["Retry-After"]}'
    finally:
        stop_server(live)
