"""Ledger exports on a real Redis: the CLI in every format, and the admin endpoint."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from billing.corrections import credit
from billing.plans import Plans
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore
from tests.integration.conftest import ADMIN_KEY, LiveServer
from tests.integration.test_billing_cli import run

PLAN = Plans.load().get("basic")
# Ledger ranges select by stream ID too, so entries are made now, not back-dated.
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = NOW.date().isoformat()
RANGE = ("--from", (NOW.date() - timedelta(days=1)).isoformat(), "--to", DAY)


async def seed(redis: aioredis.Redis, var_dir: Path) -> None:
    store = UsageStore(redis, Spool(var_dir))
    for i in range(4):
        rec = UsageRecord.priced(
            PLAN, client_id=f"exp-{i % 2}", execution_id=f"run-{i}",
            at=NOW - timedelta(seconds=40 - 10 * i), fuel=10**9 + i, cpu_ms=1, wall_ms=2,
            peak_memory_bytes=1 << 20,
        )  # fmt: skip
        assert not (await store.record(rec, "h", b"")).duplicate
    await credit(redis, "exp-0", Decimal("0.000001"), "goodwill", at=NOW)


def lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


async def test_json_and_csv_list_every_entry(redis_client: aioredis.Redis, var_dir: Path) -> None:
    await seed(redis_client, var_dir)
    code, text = await run(redis_client, "billing", "export", "--format", "json", *RANGE)
    assert code == 0
    rows = lines(text)
    assert [(r["clientId"], r["kind"]) for r in rows] == [
        ("exp-0", "execution"), ("exp-0", "execution"), ("exp-0", "credit"),
        ("exp-1", "execution"), ("exp-1", "execution"),
    ]  # fmt: skip
    code, report = await run(redis_client, "billing", "report", *RANGE)
    total = orjson.loads(report)["total"]["cost"]
    assert sum(Decimal(str(r["cost"])) for r in rows) == Decimal(total)  # the ledger adds up

    code, text = await run(
        redis_client, "billing", "export", "--format", "csv", *RANGE, "--client", "exp-1"
    )
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["executionId"] for r in table] == ["run-1", "run-3"]
    assert table[0]["fuel"] == str(10**9 + 1)


async def test_cloudevents(redis_client: aioredis.Redis, var_dir: Path) -> None:
    await seed(redis_client, var_dir)
    code, text = await run(
        redis_client, "billing", "export", "--format", "cloudevents", *RANGE,
        "--source", "//codexec/test", "--client", "exp-0",
    )  # fmt: skip
    assert code == 0
    events = lines(text)
    assert [e["type"] for e in events] == [
        "codexec.execution", "codexec.execution", "codexec.credit"
    ]  # fmt: skip
    assert len({e["id"] for e in events}) == 3
    for e in events:
        assert e["specversion"] == "1.0"
        assert e["source"] == "//codexec/test"
        assert e["subject"] == "exp-0"
        assert str(e["time"]).startswith(DAY[:7])
    assert events[0]["id"] == "run-0"
    assert events[0]["data"]["fuel"] == 10**9  # type: ignore[index]


async def test_stripe_needs_a_customer_for_every_client(
    redis_client: aioredis.Redis, var_dir: Path
) -> None:
    await seed(redis_client, var_dir)
    code, text = await run(redis_client, "billing", "export", "--format", "stripe", *RANGE)
    assert code == 2
    assert "no Stripe customer" in text
    mapping = var_dir / "customers.json"
    mapping.write_text('{"exp-0": "cus_A", "exp-1": "cus_B"}')
    code, text = await run(
        redis_client, "billing", "export", "--format", "stripe", *RANGE,
        "--customers", str(mapping), "--value", "fuel", "--event-name", "codexec_fuel",
    )  # fmt: skip
    assert code == 0
    events = lines(text)
    assert len(events) == 4  # the credit is not a meter event
    assert {e["event_name"] for e in events} == {"codexec_fuel"}
    assert [e["payload"]["stripe_customer_id"] for e in events] == [
        "cus_A",
        "cus_A",
        "cus_B",
        "cus_B",
    ]  # type: ignore[index]
    assert sum(int(e["payload"]["value"]) for e in events) == 4 * 10**9 + 6  # type: ignore[index]
    assert events[0]["timestamp"] == int((NOW - timedelta(seconds=40)).timestamp())
    out = var_dir / "stripe.jsonl"
    code, text = await run(
        redis_client, "billing", "export", "--format", "stripe", *RANGE,
        "--customers", str(mapping), "--output", str(out),
    )  # fmt: skip
    assert "(4 lines)" in text
    assert all(int(e["payload"]["value"]) >= 0 for e in lines(out.read_text()))  # type: ignore[index]


async def test_kv_still_needs_a_directory(redis_client: aioredis.Redis) -> None:
    code, text = await run(redis_client, "billing", "export", "--format", "kv")
    assert code == 2
    assert "--dir" in text


async def test_admin_endpoint_streams_every_format(
    live: LiveServer, redis_client: aioredis.Redis, var_dir: Path
) -> None:
    await seed(redis_client, var_dir)
    with live.client(ADMIN_KEY) as http:
        params = {"start": RANGE[1], "end": DAY}
        got = http.get("/v1/billing/export", params={**params, "format": "cloudevents"})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/x-ndjson")
        events = lines(got.text)
        assert len(events) == 5
        assert {e["source"] for e in events} == {"codexec"}
        got = http.get(
            "/v1/billing/export", params={**params, "format": "csv", "clientId": "exp-1"}
        )
        assert got.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(got.text)))) == 2
        got = http.get("/v1/billing/export", params={**params, "format": "stripe"})
        assert got.status_code == 400
        assert "CUSTOMERS_FILE" in got.json()["error"]["message"]
        got = http.get("/v1/billing/export", params={"format": "kv"})
        assert got.status_code == 200
        assert isinstance(got.json(), list)
    with live.client() as anonymous:
        assert anonymous.get("/v1/billing/export", params={"format": "json"}).status_code == 401
