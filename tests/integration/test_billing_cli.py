"""The billing and keys subcommands, called directly with a CliContext."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from billing.apikeys import ApiKeys
from billing.cli import CliContext, add_commands
from billing.plans import Plans
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="codexec")
    add_commands(top.add_subparsers(dest="command", required=True))
    return top


async def run(redis: aioredis.Redis, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    ctx = CliContext(redis=redis, plans=Plans.load(), retention_days=40, out=out)
    args = parser().parse_args(argv)
    code = await args.func(args, ctx)
    return code, out.getvalue()


async def seed(redis: aioredis.Redis, var_dir: Path) -> None:
    store = UsageStore(redis, Spool(var_dir))
    for i in range(4):
        rec = UsageRecord.priced(
            Plans.load().get("basic"), client_id=f"c{i % 2}", execution_id=f"x{i}",
            at=datetime(2024, 3, 10 + i, tzinfo=UTC), fuel=10**9, cpu_ms=1, wall_ms=2,
            peak_memory_bytes=1 << 20,
        )  # fmt: skip
        await store.record(rec, "h", b"")


async def test_report_json_and_csv(redis_client: aioredis.Redis, var_dir: Path) -> None:
    await seed(redis_client, var_dir)
    code, text = await run(redis_client, "billing", "report", "--month", "2024-03")
    assert code == 0
    doc = orjson.loads(text)
    assert doc["total"]["executions"] == 4
    assert [r["client"] for r in doc["rows"]] == ["c0", "c1"]
    code, text = await run(
        redis_client, "billing", "report", "--from", "2024-03-10", "--to", "2024-03-11",
        "--client", "c1", "--format", "csv",
    )  # fmt: skip
    lines = text.strip().splitlines()
    assert lines[0].startswith("client,period,executions")
    assert lines[1].startswith("c1,2024-03-11,1,")
    assert lines[-1].startswith("*,2024-03-10..2024-03-11,1,")
    target = var_dir / "r.json"
    code, text = await run(
        redis_client, "billing", "report", "--day", "2024-03-12", "--output", str(target)
    )
    assert orjson.loads(target.read_text())["total"]["executions"] == 1


async def test_export_import_rollup(redis_client: aioredis.Redis, var_dir: Path) -> None:
    await seed(redis_client, var_dir)
    out_dir = var_dir / "kv"
    code, text = await run(redis_client, "billing", "export", "--dir", str(out_dir))
    assert code == 0
    files = sorted(out_dir.glob("usage-*.json"))
    assert len(files) == 1
    assert len(orjson.loads(files[0].read_bytes())) == 6
    await redis_client.flushdb()
    code, text = await run(redis_client, "billing", "import", str(files[0]))
    assert "6 written, 0 not newer" in text
    code, text = await run(redis_client, "billing", "import", str(files[0]))
    assert "0 written, 6 not newer" in text
    code, text = await run(
        redis_client, "billing", "rollup", "--retention-days", "3", "--now", "2024-03-15T00:00:00"
    )
    assert code == 0
    assert "daily_expired=2" in text  # 03-10 and 03-11 are before the cutoff 03-12


async def test_keys_create_list_revoke(redis_client: aioredis.Redis) -> None:
    code, text = await run(redis_client, "keys", "create", "acme", "--plan", "standard")
    assert code == 0
    plaintext = text.splitlines()[0]
    key = await ApiKeys(redis_client).resolve(plaintext)
    assert key is not None
    assert key.plan == "standard"
    code, text = await run(redis_client, "keys", "list")
    assert key.prefix in text
    assert plaintext not in text
    assert "revoked=-" in text
    code, text = await run(redis_client, "keys", "revoke", key.prefix)
    assert (code, text.strip()) == (0, "revoked")
    code, text = await run(redis_client, "keys", "list")
    assert "revoked=-" not in text
    code, _ = await run(redis_client, "keys", "revoke", "f" * 64)
    assert code == 1
