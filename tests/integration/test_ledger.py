"""The ledger on a real Redis: pages, corrections, reconciliation, trimming, and over HTTP."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from billing import keys
from billing.cli import CliContext, add_commands
from billing.corrections import CorrectionRefused, credit, void
from billing.embedded import EmbeddedCluster
from billing.kv import export_pages
from billing.ledger import entry_by_execution, iter_entries, ledger_clients, read_page
from billing.maintenance import rollup
from billing.money import from_pico, to_pico
from billing.plans import Plans
from billing.receipt_facts import ReceiptFacts, context_sha256
from billing.receipts import receipt_of_entry
from billing.reconcile import last_mismatches, reconcile
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore
from service.background import reconcile_once
from service.config import Settings
from service.metrics import Metrics
from tests.integration.conftest import LiveServer

PLAN = Plans.load().get("basic")
NOW = datetime.now(UTC).replace(microsecond=0)  # records go minutes before it, same month


def rec(
    client: str, n: int, at: datetime, *, fuel: int = 10**8, error: bool = False
) -> UsageRecord:
    return UsageRecord.priced(
        PLAN, client_id=client, execution_id=f"ex-{n}", at=at, fuel=fuel + n,
        cpu_ms=1.5, wall_ms=2.25, peak_memory_bytes=(n + 1) << 20, error=error,
    )  # fmt: skip


async def seed(redis: aioredis.Redis, var_dir: Path, client: str, n: int) -> list[UsageRecord]:
    store = UsageStore(redis, Spool(var_dir))
    records = [rec(client, i, NOW - timedelta(minutes=n - i), error=i % 3 == 0) for i in range(n)]
    for r in records:
        outcome = await store.record(r, "-", b"")
        assert not outcome.spooled
    return records


async def month_cost(redis: aioredis.Redis, var_dir: Path, client: str, period: str) -> int:
    totals = await UsageStore(redis, Spool(var_dir)).totals(client, period)
    return totals.cost_pusd


async def test_pages_cover_the_range_once_in_order(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    records = await seed(redis_client, var_dir, "acme", 10)
    start, end = NOW - timedelta(minutes=8), NOW  # ex-2 .. ex-9, the last excluded by `end`
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = await read_page(redis_client, "acme", start, end, cursor, count=3)
        seen += [e.execution_id for e in page]
        pages += 1
        if cursor is None:
            break
    assert seen == [f"ex-{i}" for i in range(2, 10)]
    assert pages == 3
    streamed = [e.execution_id async for e in iter_entries(redis_client, "acme", start, end)]
    assert streamed == seen
    entry = await entry_by_execution(redis_client, "acme", "ex-4")
    assert entry is not None
    r = records[4]
    inc = r.increments()
    assert (entry.fuel, entry.mem_bytes, entry.cost_pusd) == (
        r.fuel,
        r.peak_memory_bytes,
        inc.cost_pusd,
    )
    assert entry.at == r.at
    assert await entry_by_execution(redis_client, "acme", "nope") is None
    assert await entry_by_execution(redis_client, "other", "ex-4") is None
    assert [c async for c in ledger_clients(redis_client)] == ["acme"]
    for bogus in ("bogus", "0-20000000000000000000", "1-"):
        with pytest.raises(ValueError, match="cursor"):
            await read_page(redis_client, "acme", start, end, bogus)


async def test_credits_and_voids_are_entries_and_move_the_counters(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    records = await seed(redis_client, var_dir, "acme", 4)
    month = keys.month_period(NOW)
    before = await month_cost(redis_client, var_dir, "acme", month)
    assert before == sum(r.increments().cost_pusd for r in records)

    await void(redis_client, "acme", "ex-1", "billing bug #12")
    voided = records[1].increments().cost_pusd
    assert await month_cost(redis_client, var_dir, "acme", month) == before - voided
    with pytest.raises(CorrectionRefused, match="already voided"):
        await void(redis_client, "acme", "ex-1", "again")
    with pytest.raises(CorrectionRefused, match="no ledger entry"):
        await void(redis_client, "acme", "ex-404", "unknown")

    credit_id, _ = await credit(redis_client, "acme", Decimal("0.0000001"), "goodwill")
    after = before - voided - to_pico(Decimal("0.0000001"))
    assert await month_cost(redis_client, var_dir, "acme", month) == after
    length = await redis_client.xlen(keys.ledger("acme"))
    with pytest.raises(CorrectionRefused, match="more than the month"):
        await credit(redis_client, "acme", from_pico(after + 1), "too much")
    with pytest.raises(CorrectionRefused, match="reason"):
        await credit(redis_client, "acme", Decimal("0.0000001"), " ")
    assert await redis_client.xlen(keys.ledger("acme")) == length  # refused: nothing written

    kinds = [(e.kind, e.execution_id, e.cost_pusd) async for e in iter_entries(
        redis_client, "acme", NOW - timedelta(days=1), NOW + timedelta(minutes=5))]  # fmt: skip
    assert kinds[-2] == ("void", "ex-1", -voided)
    assert kinds[-1][:2] == ("credit", credit_id)
    result = await reconcile(redis_client, retention_days=40, client_id="acme")
    assert result.ok, result.differences
    assert result.periods >= 2


async def test_reconcile_finds_every_kind_of_difference(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    await seed(redis_client, var_dir, "acme", 3)
    await seed(redis_client, var_dir, "beta", 2)
    assert (await reconcile(redis_client, retention_days=40)).ok
    day = keys.day_period(NOW - timedelta(minutes=1))
    await redis_client.hincrby(keys.usage("acme", day), "fuel", 5)
    first: bytes = (await redis_client.xrange(keys.ledger("beta"), count=1))[0][0]  # type: ignore[index,assignment]
    await redis_client.xdel(keys.ledger("beta"), first)
    result = await reconcile(redis_client, retention_days=40)
    assert result.clients == 2
    found = {(d.client_id, d.period, d.field) for d in result.differences}
    assert ("acme", day, "fuel") in found
    assert ("acme", keys.month_period(NOW), "fuel") not in found  # only the day was altered
    assert {f for c, _, f in found if c == "beta"} >= {"executions", "fuel", "cost_pusd"}
    one = await reconcile(redis_client, retention_days=40, client_id="beta")
    assert one.clients == 1
    assert all(d.client_id == "beta" for d in one.differences)
    acme = next(d for d in result.differences if d.client_id == "acme")
    assert acme.counters - acme.ledger == 5


async def test_rollup_keeps_corrections_and_trims_old_entries(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    old = NOW - timedelta(days=60)
    await store.record(rec("acme", 100, old), "-", b"")
    records = await seed(redis_client, var_dir, "acme", 3)
    await credit(redis_client, "acme", Decimal("0.00000005"), "goodwill")
    month = keys.month_period(NOW)
    before = await month_cost(redis_client, var_dir, "acme", month)
    # the old entry was appended just now: trimming goes by stream ID, so rewrite its time
    await redis_client.delete(keys.ledger("acme"), keys.ledger_index("acme"))
    old_ms = int(old.timestamp() * 1000)
    await redis_client.xadd(
        keys.ledger("acme"), {"id": "ex-100", "at_ms": old_ms}, id=f"{old_ms}-0"
    )
    await redis_client.hset(keys.ledger_index("acme"), "ex-100", f"{old_ms}-0")
    for r in records:
        await redis_client.delete(keys.execution("acme", r.execution_id))
        await store.record(r, "-", b"")  # counted twice now; reconcile must say so
    summary = await rollup(redis_client, 40, NOW)
    assert summary.ledger_trimmed == 1
    assert await entry_by_execution(redis_client, "acme", "ex-100") is None
    assert not await redis_client.hexists(keys.ledger_index("acme"), "ex-100")
    assert await entry_by_execution(redis_client, "acme", "ex-0") is not None
    assert await month_cost(redis_client, var_dir, "acme", month) == before + sum(
        r.increments().cost_pusd for r in records
    )
    result = await reconcile(redis_client, retention_days=40, client_id="acme")
    assert {d.field for d in result.differences} >= {"executions", "cost_pusd"}


async def test_a_spooled_record_keeps_its_receipt_facts(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    facts = ReceiptFacts(
        code_sha256=bytes(range(32)), context_sha256=context_sha256({"a": 1}),
        wasm_sha256=bytes(32), wasmtime_version="50.0.1", random_seed=2**64 - 1,
        read_clock=True, timeout_ms=1000, memory_bytes=1 << 20, fuel_cap=10**10,
        max_code_bytes=10, max_output_lines=10, max_output_bytes=10, max_result_bytes=10,
        price_per_cpu_second="0.0001", price_per_mb="0.00001", price_per_execution="0",
        engine_build="b" * 32,
    )  # fmt: skip
    r = UsageRecord.priced(
        PLAN, client_id="acme", execution_id="spooled-1", at=NOW, fuel=5, cpu_ms=1,
        wall_ms=1, peak_memory_bytes=1, receipt=facts,
    )  # fmt: skip
    assert store.spool_record(r, "-", b"").spooled
    assert await store.replay_spool() == 1
    entry = await entry_by_execution(redis_client, "acme", "spooled-1")
    assert entry is not None
    assert ReceiptFacts.from_named(dict(entry.fields)) == facts
    body = receipt_of_entry(entry)
    assert body is not None
    assert body["readClock"] is True
    assert body["engine"]["build"] == "b" * 32


async def test_cli_credit_void_and_reconcile(redis_client: aioredis.Redis, var_dir: Path) -> None:
    await seed(redis_client, var_dir, "acme", 2)

    async def run(*argv: str) -> tuple[int, str]:
        top = argparse.ArgumentParser(prog="codexec")
        add_commands(top.add_subparsers(dest="command", required=True))
        args = top.parse_args(argv)
        out = io.StringIO()
        ctx = CliContext(redis=redis_client, plans=Plans.load(), retention_days=40, out=out)
        return await args.func(args, ctx), out.getvalue()

    code, text = await run("billing", "credit", "acme", "--void", "ex-0", "--reason", "test")
    assert code == 0, text
    assert "voided ex-0" in text
    code, text = await run("billing", "credit", "acme", "--void", "ex-0", "--reason", "test")
    assert code == 2
    assert "already voided" in text
    code, text = await run("billing", "credit", "acme", "--amount", "1000", "--reason", "x")
    assert code == 2
    code, text = await run("billing", "credit", "acme", "--amount", "0.0000001", "--reason", "x")
    assert code == 0, text
    code, text = await run("billing", "reconcile", "--month", keys.month_period(NOW))
    assert code == 0, text
    assert "mismatched_periods=0" in text
    await redis_client.hincrby(keys.usage("acme", keys.month_period(NOW)), "errors", 1)
    code, text = await run("billing", "reconcile", "--client", "acme")
    assert code == 1
    assert "MISMATCH acme" in text
    assert "errors" in text


async def test_maintenance_exports_the_mismatch_gauge(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    await seed(redis_client, var_dir, "acme", 2)
    metrics = Metrics()
    services: Any = SimpleNamespace(
        redis=redis_client, settings=Settings(var_dir=var_dir), metrics=metrics
    )
    gauge = metrics.registry.get_sample_value
    assert await reconcile_once(services, NOW) == 0
    assert gauge("codexec_reconcile_mismatches") == 0
    await redis_client.hincrby(
        keys.usage("acme", keys.day_period(NOW - timedelta(minutes=1))), "fuel", 1
    )
    assert await reconcile_once(services, NOW) == 1
    assert gauge("codexec_reconcile_mismatches") == 1
    assert gauge("codexec_reconcile_runs_total") == 2
    assert await last_mismatches(redis_client) == 1  # what every replica exports


async def test_the_rollup_command_reconciles_and_saves_the_result(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    await seed(redis_client, var_dir, "acme", 2)
    assert await last_mismatches(redis_client) is None
    await redis_client.hincrby(keys.usage("acme", keys.month_period(NOW)), "executions", 1)
    top = argparse.ArgumentParser(prog="codexec")
    add_commands(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["billing", "rollup"])
    out = io.StringIO()
    ctx = CliContext(redis=redis_client, plans=Plans.load(), retention_days=40, out=out)
    assert await args.func(args, ctx) == 0
    # the roll-up rebuilt the month from its days, which repaired it
    assert "reconcile: clients=1" in out.getvalue()
    assert await last_mismatches(redis_client) == 0


def test_executions_endpoint_pages_the_callers_ledger(live: LiveServer, client_id: str) -> None:
    token = live.new_key(client_id)
    other = live.new_key(client_id + "-b")
    ids = []
    with live.client(token) as http:
        for i in range(5):
            reply = http.post("/execute", json={"code": f"return {i};"})
            assert reply.status_code == 200
            ids.append(reply.json()["executionId"])
        got: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/usage/executions", params=params)
            assert page.status_code == 200, page.text
            doc = page.json()
            got += doc["executions"]
            cursor = doc["nextCursor"]
            if cursor is None:
                break
        assert http.get("/v1/usage/executions", params={"cursor": "x"}).status_code in (400, 422)
        old = {"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"}
        empty = http.get("/v1/usage/executions", params=old)
        assert empty.json()["executions"] == []
    assert [e["executionId"] for e in got] == ids
    assert all(e["kind"] == "execution" and e["fuel"] > 0 for e in got)
    assert len({e["codeSha256"] for e in got}) == 5
    with live.client(other) as http:
        assert http.get("/v1/usage/executions").json()["executions"] == []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with EmbeddedCluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running.ports


@pytest.mark.cluster
async def test_corrections_reconcile_and_trim_on_a_cluster(
    cluster: list[int], var_dir: Path
) -> None:
    rc = RedisCluster(host="127.0.0.1", port=cluster[0])
    try:
        await rc.flushall(target_nodes=RedisCluster.PRIMARIES)
        store = UsageStore(rc, Spool(var_dir))
        clients = [f"tenant-{i}" for i in range(6)]  # spread over the three masters
        for c in clients:
            for i in range(3):
                assert not (
                    await store.record(rec(c, i, NOW - timedelta(minutes=3 - i)), "-", b"")
                ).spooled
        await void(rc, "tenant-0", "ex-1", "refund")
        await credit(rc, "tenant-1", Decimal("0.0000001"), "goodwill")
        assert sorted([c async for c in ledger_clients(rc)]) == clients
        assert await entry_by_execution(rc, "tenant-2", "ex-2") is not None
        result = await reconcile(rc, retention_days=40)
        assert result.clients == 6
        assert result.ok, result.differences
        summary = await rollup(rc, 40, NOW)
        assert summary.ledger_trimmed == 0
        assert (await reconcile(rc, retention_days=40)).ok
    finally:
        await rc.aclose()


async def test_a_day_can_go_below_zero_and_the_month_survives_the_rollup(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    store = UsageStore(redis_client, Spool(var_dir))
    spend = rec("acme", 1, datetime(2024, 3, 10, 12, tzinfo=UTC), fuel=10**10)
    await store.record(spend, "-", b"")
    paid = spend.increments().cost_pusd
    later = datetime(2024, 3, 12, 9, tzinfo=UTC)
    await credit(redis_client, "acme", from_pico(paid // 2), "half back", at=later)
    with pytest.raises(CorrectionRefused):
        await credit(redis_client, "acme", from_pico(paid), "more than the month", at=later)
    day = await store.totals("acme", "2024-03-12")
    assert day.cost_pusd == -(paid // 2)
    now = datetime(2024, 3, 20, tzinfo=UTC)
    await rollup(redis_client, 40, now)
    month = await store.totals("acme", "2024-03")
    assert month.cost_pusd == paid - paid // 2
    assert month.executions == 1
    result = await reconcile(redis_client, retention_days=40, client_id="acme", now=now)
    assert result.ok, result.differences
    assert result.periods == 3  # two days and the month
    pages = await export_pages(redis_client, "acme")
    assert b"2024-03-12" in pages[0]
