"""The same recording, idempotency, report, KV and rollup behaviour on a real 3-master cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from billing import keys
from billing.embedded import EmbeddedCluster
from billing.errors import RateLimitExceeded
from billing.gate import Gate
from billing.kv import export_pages, import_records
from billing.kvformat import parse_file
from billing.maintenance import rollup
from billing.plans import Plans
from billing.quotas import Quotas
from billing.reports import build_report
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

pytestmark = pytest.mark.cluster

PLAN = Plans.load().get("standard")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Three masters from the same redis-server binary, joined with redis-cli --cluster."""
    with EmbeddedCluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running.ports


@pytest.fixture
async def rc(cluster: list[int]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster[0])
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    try:
        yield client
    finally:
        await client.aclose()


def make(client: str, execution_id: str, day: int = 1) -> UsageRecord:
    return UsageRecord.priced(
        PLAN, client_id=client, execution_id=execution_id, at=datetime(2024, 4, day, tzinfo=UTC),
        fuel=5_000_000, cpu_ms=0.3, wall_ms=0.5, peak_memory_bytes=1 << 18,
    )  # fmt: skip


CLIENTS = [f"tenant-{i}" for i in range(12)]  # spread over the three masters


async def test_clients_really_spread_over_masters(rc: RedisCluster) -> None:
    nodes = {str(rc.get_node_from_key(keys.ledger(c))) for c in CLIENTS}
    assert len(nodes) == 3


async def test_record_idempotency_and_totals(rc: RedisCluster, var_dir: Path) -> None:
    store = UsageStore(rc, Spool(var_dir))
    calls = [(c, f"e{i}") for c in CLIENTS for i in range(10)] + [(c, "e0") for c in CLIENTS]
    outcomes = await asyncio.gather(*(store.record(make(c, e), "h", e.encode()) for c, e in calls))
    assert not any(o.spooled for o in outcomes)
    assert sum(o.duplicate for o in outcomes) == len(CLIENTS)
    for c in CLIENTS:
        assert (await store.totals(c, "2024-04-01")).executions == 10
        assert (await store.totals(c, "2024-04")).executions == 10
        stored = await store.lookup(c, "e3")
        assert stored is not None
        assert stored.response == b"e3"
        assert await rc.xlen(keys.ledger(c)) == 10
    report = await build_report(rc, date(2024, 4, 1), date(2024, 4, 30))
    assert {r.client_id for r in report.rows} == set(CLIENTS)
    assert report.total.executions == 10 * len(CLIENTS)
    assert report.total.cost_pusd == 10 * len(CLIENTS) * make("x", "y").increments().cost_pusd


async def test_kv_round_trip_rollup_quota_rate(rc: RedisCluster, var_dir: Path) -> None:
    store = UsageStore(rc, Spool(var_dir))
    for c in CLIENTS:
        for day in (1, 2):
            await store.record(make(c, f"d{day}", day), "h", b"")
    pages = await export_pages(rc)
    records = [r for page in pages for r in parse_file(page)]
    assert len(records) == 3 * len(CLIENTS)
    before = {r.client_id + r.period: r.totals for r in records}
    await rc.flushall(target_nodes=RedisCluster.PRIMARIES)
    assert (await import_records(rc, records)).written == len(records)
    assert (await import_records(rc, records)).written == 0
    again = [r for page in await export_pages(rc) for r in parse_file(page)]
    assert {r.client_id + r.period: r.totals for r in again} == before
    summary = await rollup(rc, 9, datetime(2024, 4, 12, tzinfo=UTC))  # cutoff 04-03
    assert (summary.clients, summary.daily_expired) == (len(CLIENTS), 2 * len(CLIENTS))
    assert (await store.totals(CLIENTS[0], "2024-04")).executions == 2
    await Quotas(rc, Plans.load()).check(
        CLIENTS[0], "standard", now=datetime(2024, 4, 3, tzinfo=UTC)
    )
    one_per_second = PLAN.model_copy(update={"rate_per_second": 1.0, "burst": 1})
    gate = Gate(rc, lease_fraction=0.0)  # the admit script (rate + budget keys) on a cluster
    await gate.admit(CLIENTS[0], one_per_second)
    with pytest.raises(RateLimitExceeded) as refused:
        await gate.admit(CLIENTS[0], one_per_second)
    assert 0 < refused.value.retry_after <= 1.0
