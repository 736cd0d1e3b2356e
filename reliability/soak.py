"""``make soak``: a fixed-rate mixed workload against ``codexec serve`` with 2 workers.

Open loop: request ``i`` is sent at ``t0 + i / rate`` whatever the answers before it did
(latency is measured from that scheduled moment, so a stall is not hidden), with at most
``--max-outstanding`` requests in flight (beyond that a send is skipped and counted).
Classes: trivial, CPU-bound hitting its timeout, memory bomb, throw, console-heavy, and
isolation (two clients interleaved; each run checks it sees neither the other's globals,
context nor output). At the end: per-class p50/p99, 5xx other than admission 503s, worker
RSS at start and end, sandbox rebuilds, and per-client usage in Redis vs answered runs.

    python -m reliability.soak [--duration 300] [--quick] [--rate 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from billing.embedded import EmbeddedRedis
from reliability.common import (
    create_keys,
    machine,
    metric_sum,
    percentile,
    rss_mib,
    start_service,
    usage_totals,
)
from reliability.launch import Service

CLIENTS = ["soak-a", "soak-b"]
MIB = 1024 * 1024

ISOLATION = (
    "const seen = typeof globalThis.__mark === 'undefined' ? null : String(globalThis.__mark);"
    "globalThis.__mark = context.tag; globalThis['own_' + context.client] = context.n;"
    "const others = Object.keys(globalThis).filter(k => k.startsWith('own_')"
    " && k !== 'own_' + context.client);"
    "console.log('tag', context.tag);"
    "return {seen, others, tag: context.tag, ctx: Object.keys(context).sort()};"
)


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int


KINDS = (
    Kind("trivial", 25),
    Kind("isolation", 30),
    Kind("throw", 10),
    Kind("console", 10),
    Kind("cpu_timeout", 10),
    Kind("memory_bomb", 15),
)


def make_request(kind: str, client: str, n: int) -> tuple[dict[str, Any], Any]:
    """The body for one request of ``kind`` and what its answer must contain."""
    tag = f"{client}:{n}:{random.getrandbits(32):08x}"
    if kind == "trivial":
        return {"code": f"return {n} * 2;"}, n * 2
    if kind == "isolation":
        ctx = {"tag": tag, "client": client, "n": n}
        want = {"seen": None, "others": [], "tag": tag, "ctx": ["client", "n", "tag"]}
        return {"code": ISOLATION, "context": ctx}, (want, [f"tag {tag}"])
    if kind == "throw":
        return {"code": f"throw new TypeError('boom {n}');"}, ("TypeError", f"boom {n}")
    if kind == "console":
        code = "for (let i = 0; i < 200; i++) console.log('line', i, context.tag); return 200;"
        return {"code": code, "context": {"tag": tag}}, tag
    if kind == "cpu_timeout":
        return {"code": "let i = 0; while (true) { i++; }", "timeout": 100}, None
    if kind == "memory_bomb":
        code = "const a = []; while (true) { a.push(new Array(100000).fill(a.length)); }"
        return {"code": code, "memoryLimit": 16 * MIB, "timeout": 3000}, None
    raise ValueError(kind)


def check(kind: str, want: Any, body: dict[str, Any]) -> str | None:
    """None if a 200 answer is what ``kind`` must give, else what is wrong."""
    err = body.get("error") or {}
    if kind == "trivial":
        ok = body.get("success") is True and body.get("result") == want
    elif kind == "isolation":
        result, output = want
        ok = body.get("result") == result and body.get("output") == output
    elif kind == "throw":
        ok = (err.get("type"), err.get("message")) == want
    elif kind == "console":
        out = body.get("output") or []
        ok = body.get("result") == 200 and len(out) == 200 and out[-1] == f"line 199 {want}"
    elif kind == "cpu_timeout":
        ok = err.get("type") in {"TimeoutError", "FuelExhaustedError"}
    else:
        ok = err.get("type") == "MemoryLimitError"
    return None if ok else f"{kind}: unexpected answer {json.dumps(body)[:300]}"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # 200s per client (billed)
    wrong: list[str] = field(default_factory=list)
    transport: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    sent: int = 0


async def one(
    http: httpx.AsyncClient, tokens: dict[str, str], kind: str, n: int, due: float, t: Tally
) -> None:
    client = CLIENTS[n % 2]
    body, want = make_request(kind, client, n)
    headers = {"Authorization": f"Bearer {tokens[client]}"}
    try:
        resp = await http.post("/execute", json=body, headers=headers)
    except httpx.HTTPError as exc:
        t.transport[type(exc).__name__] += 1
        return
    t.latencies[kind].append((time.monotonic() - due) * 1000)
    t.statuses[kind, resp.status_code] += 1
    if resp.status_code == 200:
        t.answered[client] += 1
        problem = check(kind, want, resp.json())
        if problem:
            t.wrong.append(problem)
    elif resp.status_code >= 500 and resp.status_code != 503:
        t.wrong.append(f"{kind}: {resp.status_code} {resp.text[:200]}")


async def drive(
    url: str, tokens: dict[str, str], rate: float, duration: float, max_outstanding: int
) -> tuple[Tally, float]:
    """Send ``rate`` requests a second for ``duration`` seconds; wait for the stragglers."""
    tally = Tally()
    names = [k.name for k in KINDS]
    weights = [k.weight for k in KINDS]
    rng = random.Random(6)
    limits = httpx.Limits(max_connections=max_outstanding, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        tasks: set[asyncio.Task[None]] = set()
        t0 = time.monotonic()
        total = int(rate * duration)
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= max_outstanding:
                tally.skipped += 1
                continue
            kind = rng.choices(names, weights)[0]
            task = asyncio.create_task(one(http, tokens, kind, i, due, tally))
            tally.sent += 1
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        elapsed = time.monotonic() - t0
    return tally, elapsed


def run(duration: float, rate: float, max_outstanding: int, json_out: Path | None) -> int:
    print(f"soak: {duration:.0f} s at {rate:g} req/s, 2 workers; {machine()}", flush=True)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="codexec-soak-") as tmp:
        root = Path(tmp)
        with EmbeddedRedis(root / "redis") as redis_server:
            tokens = create_keys(redis_server.url, CLIENTS)
            service: Service = start_service(redis_server.url, root / "var", workers=2)
            try:
                pids = service.worker_pids()
                # warm-up: a few runs of every class so start RSS is the steady baseline
                warm, _ = asyncio.run(drive(service.url, tokens, 20, 2, max_outstanding))
                rss_start = {p: rss_mib(p) for p in pids}
                rebuilds0 = metric_sum(service.url, "codexec_sandbox_rebuilds_total")
                tally, elapsed = asyncio.run(
                    drive(service.url, tokens, rate, duration, max_outstanding)
                )
                rss_end = {p: rss_mib(p) for p in service.worker_pids()}
                rebuilds = metric_sum(service.url, "codexec_sandbox_rebuilds_total") - rebuilds0
                time.sleep(0.5)
                usage = usage_totals(redis_server.url, CLIENTS)
                pids_end = service.worker_pids()
            finally:
                service.stop()
    answered_total = {c: warm.answered[c] + tally.answered[c] for c in CLIENTS}
    done = sum(tally.statuses.values())
    print(f"\nsent {tally.sent} (skipped at the client bound: {tally.skipped}), answered "
          f"{done} in {elapsed:.1f} s = {done / elapsed:.1f} req/s")  # fmt: skip
    print(f"{'class':<12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    report: dict[str, Any] = {"machine": machine(), "duration_s": duration, "rate": rate}
    classes = {}
    for k in KINDS:
        lat = tally.latencies[k.name]
        st = {code: n for (kind, code), n in sorted(tally.statuses.items()) if kind == k.name}
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        print(f"{k.name:<12} {len(lat):>6} {p50:>8.1f} {p99:>8.1f} {max(lat, default=0):>8.1f}"
              f"  {st}")  # fmt: skip
        classes[k.name] = {"n": len(lat), "p50_ms": p50, "p99_ms": p99, "statuses": st}
    report.update(classes=classes, throughput_rps=done / elapsed, sent=tally.sent)
    other_5xx = sum(n for (_, c), n in tally.statuses.items() if c >= 500 and c != 503)
    admission_503 = sum(n for (_, c), n in tally.statuses.items() if c == 503)
    print(f"5xx other than 503: {other_5xx}; admission 503s: {admission_503}; "
          f"transport errors: {dict(tally.transport)}")  # fmt: skip
    for p in sorted(set(rss_start) | set(rss_end)):
        print(f"worker {p}: RSS {rss_start.get(p, 0):.1f} MiB -> {rss_end.get(p, 0):.1f} MiB")
    print(f"sandbox rebuilds during the run: {rebuilds:.0f}")
    print(f"usage in Redis (executions, ledger) vs answered: "
          f"{ {c: (usage[c], answered_total[c]) for c in CLIENTS} }")  # fmt: skip
    report.update(
        other_5xx=other_5xx, admission_503=admission_503, transport=dict(tally.transport),
        rss_start_mib=rss_start, rss_end_mib=rss_end, rebuilds=rebuilds,
        usage={c: list(usage[c]) for c in CLIENTS}, answered=answered_total,
        wrong=tally.wrong[:20], skipped=tally.skipped,
    )  # fmt: skip
    if other_5xx:
        failures.append(f"{other_5xx} 5xx answers other than 503")
    if tally.transport:
        failures.append(f"transport errors {dict(tally.transport)}")
    if tally.wrong:
        failures.append(f"{len(tally.wrong)} wrong answers, first: {tally.wrong[0]}")
    for c in CLIENTS:
        if usage[c] != (answered_total[c], answered_total[c]):
            failures.append(f"usage of {c} {usage[c]} != answered {answered_total[c]}")
    if sorted(pids_end) != sorted(pids):
        failures.append(f"worker processes changed: {pids} -> {pids_end}")
    if tally.skipped:
        failures.append(f"{tally.skipped} sends skipped: the service fell behind the rate")
    report["failures"] = failures
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2, default=str))
    print("\nSOAK " + ("PASS" if not failures else "FAIL:\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--quick", action="store_true", help="30 s instead of --duration")
    parser.add_argument("--rate", type=float, default=30.0, help="requests/s (default 30)")
    parser.add_argument("--max-outstanding", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    duration = 30.0 if args.quick else args.duration
    if not 1 <= duration <= 3600 or not 0 < args.rate <= 500:
        parser.error("--duration must be 1..3600 s and --rate 0..500 req/s")
    return run(duration, args.rate, args.max_outstanding, args.json)


if __name__ == "__main__":
    sys.exit(main())
