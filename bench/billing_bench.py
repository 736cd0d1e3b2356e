"""Usage records per second through ``UsageStore.record`` against plain ``INCR`` round trips.

Both run in the same process, on the same embedded redis-server (started and stopped here),
sequentially and with 16 concurrent asyncio tasks. The target is one record (idempotency
claim + daily and monthly counters + ledger entry with its receipt facts + execution-ID
index, one Lua call) costing no more than 1.5 plain round trips. Run:
``python -m bench billing`` (``--quick`` for a smoke run).

The machine is usually shared, so each mode runs in :data:`ROUNDS` rounds of INCR, records,
INCR (each a tenth of the operations); a round's ratio uses the faster of its two INCR
figures, and the median round is reported (with the spread of the ratios).

The baseline INCR goes through redis-py's client as an application sends it. Records go
through connections held for them (:mod:`billing.lanes`), which skip most of that client's
per-call work, so the sequential mode also prints the ratio against INCR sent the same lean
way (same held connection, same packing): the cost of the record's own work alone.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from billing.embedded import EmbeddedRedis
from billing.lanes import Lanes, pack
from billing.plans import Plans
from billing.receipt_facts import ReceiptFacts, context_sha256
from billing.spool import Spool
from billing.usage import UsageRecord, UsageStore

CONCURRENCY = 16
ROUNDS = 10


async def _rate(op: Callable[[], Awaitable[object]], n: int, tasks: int) -> float:
    per_task = n // tasks

    async def worker() -> None:
        for _ in range(per_task):
            await op()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return per_task * tasks / (time.perf_counter() - start)


async def _main(n: int, directory: Path) -> None:
    with EmbeddedRedis(directory / "redis", persist=False) as server:
        pool = aioredis.BlockingConnectionPool.from_url(server.url, max_connections=CONCURRENCY)
        client = aioredis.Redis(connection_pool=pool)
        store = UsageStore(client, Spool(directory / "spool"))
        plan = Plans.load().get("standard")
        ids = itertools.count()
        response = b'{"success":true,"result":30,"output":[],"error":null}'
        per_cpu, per_mb, per_exec = ReceiptFacts.prices_of(plan)
        facts = ReceiptFacts(  # what the service records for a typical run
            code_sha256=bytes(32), context_sha256=context_sha256({}), wasm_sha256=bytes(32),
            wasmtime_version="50.0.1", random_seed=2**63 + 12345, read_clock=False,
            timeout_ms=5000, memory_bytes=52_428_800, fuel_cap=135_000_000_000,
            max_code_bytes=65536, max_output_lines=1000, max_output_bytes=1 << 20,
            max_result_bytes=1 << 20, price_per_cpu_second=per_cpu, price_per_mb=per_mb,
            price_per_execution=per_exec, engine_build="0" * 32,
        )  # fmt: skip

        async def record() -> object:
            rec = UsageRecord.priced(
                plan, client_id=f"bench-{next(ids) % 64}", execution_id=f"e{next(ids)}",
                at=datetime.now(UTC), fuel=73_511, cpu_ms=0.33, wall_ms=0.41,
                peak_memory_bytes=262_144, receipt=facts,
            )  # fmt: skip
            return await store.record(rec, "0" * 64, response)

        async def incr() -> object:
            return await client.incr("bench:incr")

        lean = Lanes(client, 1)
        incr_packed = pack(("INCR", "bench:incr"))

        async def lean_incr() -> object:
            return await lean.round_trip(incr_packed, 1)

        await _rate(record, 200, 1)  # warm up: script load, connections
        await _rate(incr, 200, 1)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for tasks in (1, CONCURRENCY):
            rounds = []
            for _ in range(ROUNDS):
                incr_rate = await _rate(incr, n // ROUNDS, tasks)
                record_rate = await _rate(record, n // ROUNDS, tasks)
                incr_rate = max(incr_rate, await _rate(incr, n // ROUNDS, tasks))  # bracket
                rounds.append((incr_rate / record_rate, record_rate, incr_rate))
            rounds.sort()
            ratio, record_rate, incr_rate = rounds[len(rounds) // 2]
            label = "sequential" if tasks == 1 else f"{tasks} tasks"
            print(
                f"{label:>10}: record {record_rate:8.0f}/s   INCR {incr_rate:8.0f}/s   "
                f"one record = {ratio:.2f} round trips (target <= 1.5; "
                f"rounds {rounds[0][0]:.2f}-{rounds[-1][0]:.2f})"
            )
        await _rate(lean_incr, 200, 1)
        lean_rounds = []
        for _ in range(ROUNDS):
            lean_rate = await _rate(lean_incr, n // ROUNDS, 1)
            record_rate = await _rate(record, n // ROUNDS, 1)
            lean_rate = max(lean_rate, await _rate(lean_incr, n // ROUNDS, 1))
            lean_rounds.append((lean_rate / record_rate, record_rate, lean_rate))
        lean_rounds.sort()
        ratio, record_rate, lean_rate = lean_rounds[len(lean_rounds) // 2]
        print(
            f"{'sequential':>10}: record {record_rate:8.0f}/s   INCR on a held connection "
            f"{lean_rate:8.0f}/s   one record = {ratio:.2f} of those (like for like; "
            f"rounds {lean_rounds[0][0]:.2f}-{lean_rounds[-1][0]:.2f})"
        )
        await lean.aclose()
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        await client.aclose(close_connection_pool=True)


def run(quick: bool = False) -> None:
    """Run the billing benchmark and print records/s, INCR/s and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_main(2_000 if quick else 20_000, Path(tmp)))


if __name__ == "__main__":
    run()
