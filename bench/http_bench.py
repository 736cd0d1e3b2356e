"""HTTP benchmark: ``POST /execute`` with billing on vs a no-op endpoint of the same app.

For 1 and 2 uvicorn workers, ``codexec serve`` runs against an embedded redis-server (AOF
``everysec``, as ``make run``); wrk (Debian package) sends the contract's example at
concurrency 16 for 10 s to 127.0.0.1 after a 3 s warm-up, first to ``/v1/noop`` (auth, body
bounds and validation, no run, no Redis), then to ``/execute`` (run + rate limit + budget
reservation + usage record with its ledger entry). A second service of the same size with
``CODEXEC_HARD_CAPS=false`` (rate limit + a spend reading + the same record) takes
``/execute`` too, in the same run: the two take turns in slices of the measuring time.
Prints req/s, p50, p99, the ratio to the no-op ceiling and the ratio of hard caps to
recording alone. Two more rows per worker count, with no target, follow the paths the
contract's example does not take: a ~1 ms loop (a sandbox thread) and an 11 KB ``context``
(an instance rebuilt after every run). First, for each worker count, the prototype's bare
FastAPI no-op (:mod:`bench.bare_app`) is measured the same way: how fast the machine is today
against the prototype's figures, and the least p99 any FastAPI endpoint gets here.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from bench.bare_app import PROTOTYPE_RPS
from billing.apikeys import ApiKeys
from billing.embedded import EmbeddedRedis, free_port
from reliability.launch import Service, launch, stop_group

EXAMPLE = '{"code": "const x = 10; const y = 20; return x + y;", "language": "javascript"}'
# ~1 ms of JS, over the inline slice: a run that goes to a sandbox thread (service.dispatch)
LOOP_EXAMPLE = (
    '{"code": "let s = 0; for (let i = 0; i < 20000; i++) s += i; return s;", '
    '"language": "javascript"}'
)
# an 11 KB ``context`` (280 small objects): enough to grow the plain snapshot's heap, so every
# run's instance is rebuilt (sandbox.pool's builder thread)
CONTEXT_EXAMPLE = json.dumps(
    {
        "code": "return context.rows.length",
        "language": "javascript",
        "context": {"rows": [{"id": i, "name": "x" * 20} for i in range(280)]},
    }
)
BARE_BODY = '{"code": "const x = 10; const y = 20; return x + y;", "timeout_ms": 1000}'
BARE = "bare FastAPI no-op"
JSON = {"Content-Type": "application/json"}
CONNECTIONS = 16
DRAIN_S = 1.0
CAPS_OFF = "/execute caps off"
LOOP = "/execute 1 ms loop"
CONTEXT = "/execute 11 KB ctx"
ROUNDS = 2
PLANS = {
    "default": "bench",
    "plans": {
        "bench": {
            "max_timeout_ms": 10000,
            "max_memory_bytes": 134217728,
            "allowed_modules": [],
            "price_per_execution": "0",
            "price_per_cpu_second": "0.0001",
            "price_per_mb": "0.00001",
            "monthly_budget": "1000000",
            "rate_per_second": 1000000,
            "burst": 1000000,
        }
    },
}

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if m is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50/p99 (ms) and non-2xx count from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if not (rps and p50 and p99):
        raise RuntimeError("cannot parse wrk output:\n" + output)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
    }


def wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    """One bounded wrk run against a loopback URL."""
    assert url.startswith("http://127.0.0.1:")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    return parse_wrk(out)


async def _make_key(url: str) -> str:
    client = aioredis.Redis.from_url(url)
    try:
        return await ApiKeys(client).create("bench-client", "bench")
    finally:
        await client.aclose()


def _wrk_script(path: Path, body: str, token: str | None = None) -> Path:
    """Write a wrk script that POSTs ``body`` as JSON (with ``token`` as a Bearer key)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines.append('wrk.headers["Content-Type"] = "application/json"')
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def _warm(url: str, script: Path, seconds: int) -> None:
    """A warm-up run, then a pause: when wrk stops, the requests it leaves in flight are still
    run (and hold the client's share of places, so the next run would start with 429s)."""
    wrk(url, script, seconds)
    time.sleep(DRAIN_S)


@contextmanager
def _bare_app(workers: int, timeout: float = 60) -> Iterator[str]:
    """Serve :mod:`bench.bare_app` with ``workers`` workers; yields its ``/noop`` URL."""
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_app", url.rsplit(":", 1)[1], str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench.bare_app did not start")
            try:
                answer = httpx.post(url + "/noop", content=BARE_BODY, headers=JSON, timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        time.sleep(1.0)  # the other workers finish starting
        yield url + "/noop"
    finally:
        stop_group(proc)


def _measure(
    workers: int,
    services: list[Service],
    scripts: tuple[Path, Path, Path],
    seconds: int,
    warmup: int,
) -> list[tuple[int, str, dict[str, float]]]:
    """The no-op, then ``/execute`` with hard caps (``services[0]``) and without
    (``services[1]``) taking turns in ``ROUNDS`` slices, so a change in the machine's load
    hits both alike (each figure is the mean over its slices); then the ~1 ms loop and the
    11 KB context with hard caps."""
    script, loop_script, context_script = scripts
    capped, plain = services[0].url + "/execute", services[1].url + "/execute"
    noop = services[0].url + "/v1/noop"
    _warm(noop, script, warmup)
    rows = [(workers, "/v1/noop", wrk(noop, script, seconds))]
    for url in (capped, plain):
        _warm(url, script, warmup)
    slices: dict[str, list[dict[str, float]]] = {capped: [], plain: []}
    for _ in range(ROUNDS):
        for url in (capped, plain):
            slices[url].append(wrk(url, script, max(1, seconds // ROUNDS)))
    for url, label in ((capped, "/execute"), (plain, CAPS_OFF)):
        runs = slices[url]
        mean = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
        mean["non_2xx"] = sum(r["non_2xx"] for r in runs)
        rows.append((workers, label, mean))
    for label, extra in ((LOOP, loop_script), (CONTEXT, context_script)):
        _warm(capped, extra, warmup)
        rows.append((workers, label, wrk(capped, extra, seconds)))
    return rows


def run(quick: bool = False) -> None:
    """Run the HTTP benchmark and print its table."""
    if shutil.which("wrk") is None:
        print("wrk is not installed: HTTP benchmark skipped (apt-get install wrk)")
        return
    seconds, warmup = (3, 1) if quick else (10, 3)
    rows: list[tuple[int, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plans = root / "plans.json"
        plans.write_text(json.dumps(PLANS))
        with EmbeddedRedis(root / "redis") as redis_server:
            token = asyncio.run(_make_key(redis_server.url))
            scripts = (
                _wrk_script(root / "post.lua", EXAMPLE, token),
                _wrk_script(root / "loop.lua", LOOP_EXAMPLE, token),
                _wrk_script(root / "context.lua", CONTEXT_EXAMPLE, token),
            )
            bare_script = _wrk_script(root / "bare.lua", BARE_BODY)
            for workers in (1, 2):
                with _bare_app(workers) as bare:
                    _warm(bare, bare_script, warmup)
                    rows.append((workers, BARE, wrk(bare, bare_script, seconds)))
                services = [
                    launch(
                        {
                            "REDIS_URL": redis_server.url,
                            "PLANS_FILE": str(plans),
                            "BENCH_ENDPOINTS": "true",
                            "HARD_CAPS": caps,
                        },
                        root / f"var{workers}-{caps}",
                        workers=workers,
                    )
                    for caps in ("true", "false")
                ]
                try:
                    rows += _measure(workers, services, scripts, seconds, warmup)
                finally:
                    for service in services:
                        service.stop()
    print(f"wrk -t1 -c{CONNECTIONS} -d{seconds}s --latency (after {warmup}s warm-up), 127.0.0.1")
    header = ("workers", "endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx", "vs no-op")
    print("{:>7} {:<20} {:>9} {:>8} {:>8} {:>8} {:>9}".format(*header))
    by_row = {(workers, path): r["rps"] for workers, path, r in rows}
    ceiling = {workers: rps for (workers, path), rps in by_row.items() if path == "/v1/noop"}
    for workers, path, r in rows:
        ratio = r["rps"] / ceiling[workers]
        print(
            f"{workers:>7} {path:<20} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['non_2xx']:>8.0f} {ratio:>8.0%}"
        )
    print("target: /execute with billing >= 60% of the no-op ceiling, p99 <= 5 ms")
    print(
        f"({LOOP}: ~1 ms of JS per request, run in a sandbox thread; {CONTEXT}: its instance "
        "is rebuilt after every run; neither is a target)"
    )
    for workers in sorted(ceiling):
        bare_rps = by_row[workers, BARE]
        print(
            f"{workers} worker(s): the prototype's bare FastAPI no-op {bare_rps:.0f} req/s here vs "
            f"{PROTOTYPE_RPS[workers]:.0f} in its REPORT.md: the machine runs at "
            f"{bare_rps / PROTOTYPE_RPS[workers]:.2f}x that day's speed; /execute is "
            f"{by_row[workers, '/execute'] / bare_rps:.0%} of the bare no-op"
        )
    for workers in sorted(ceiling):
        capped, plain = by_row[workers, "/execute"], by_row[workers, CAPS_OFF]
        print(
            f"{workers} worker(s): hard caps {capped:.0f} req/s vs recording alone {plain:.0f} "
            f"req/s: {capped / plain:.0%} (target >= 90%)"
        )
