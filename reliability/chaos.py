"""``make chaos``: faults under a bounded load, one PASS/FAIL line each.

1. redis-kill: Redis SIGKILLed mid-load and restarted on the same port and data dir.
2. redis-slow: Redis stalled while load runs (``CLIENT PAUSE`` 1.5 s, then ``DEBUG SLEEP``
   5 s, longer than the client's 2 s socket timeout and its one retry, then ``CLIENT PAUSE``
   9 s of writes only).
3. worker-kill: one uvicorn worker SIGKILLed while it runs a ~2 s script; the client retries
   the same ``X-Execution-ID``.
4. disk-full: Redis down AND the spool on a full 64 KiB tmpfs: 503 (fail closed), never an
   answer whose usage is lost; space freed: answers again; Redis back: all billed once.

Every client retries a failed request (transport error or 5xx) with the same
``X-Execution-ID``; some IDs are also re-sent after their answer. The check in every case:
per-client executions and ledger entries in Redis == distinct execution IDs answered 200.
Needs root for the tmpfs mount (disk-full is reported SKIP otherwise).

    python -m reliability.chaos [--only NAME ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis as syncredis

from billing.embedded import EmbeddedRedis
from reliability.common import (
    cpu_ticks,
    create_keys,
    machine,
    start_service,
    usage_totals,
    wait_spool_empty,
)
from reliability.launch import Service

CODE = "return [%d, Math.random()];"
BIG = "return 'x'.repeat(6000) + %d;"  # a spool line over one 4 KiB tmpfs page
LONG = "let s = 0; for (let i = 0; i < 3e7; i++) s += i; return s;"  # ~2 s on the sandbox


@dataclass
class Outcome:
    name: str
    ok: bool
    detail: str
    figures: dict[str, object] = field(default_factory=dict)


@dataclass
class Load:
    """Bounded load: ``n`` executions from 4 threads, each retried until answered."""

    url: str
    tokens: dict[str, str]
    retries: int = 40
    answered: dict[str, set[str]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    unanswered: list[str] = field(default_factory=list)
    first_body: dict[str, bytes] = field(default_factory=dict)
    divergent: int = 0  # retries answered with another body than the first answer
    slowest_s: float = 0.0  # longest single attempt
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, http: httpx.Client, client: str, eid: str, code: str) -> httpx.Response | None:
        """One attempt; None on a transport error."""
        started = time.monotonic()
        try:
            r = http.post(
                "/execute",
                json={"code": code, "timeout": 10000},
                headers={"Authorization": f"Bearer {self.tokens[client]}", "X-Execution-ID": eid},
            )
        except httpx.HTTPError:
            with self.lock:
                self.transport_errors += 1
            return None
        with self.lock:
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)
        return r

    def until_answered(self, http: httpx.Client, client: str, eid: str, code: str) -> bool:
        for _ in range(self.retries):
            r = self.post(http, client, eid, code)
            if r is not None and r.status_code == 200:
                with self.lock:
                    self.answered.setdefault(client, set()).add(eid)
                    first = self.first_body.setdefault(eid, r.content)
                    self.divergent += first != r.content
                return True
            time.sleep(0.25)
        with self.lock:
            self.unanswered.append(eid)
        return False

    def run(self, n: int, pace_s: float = 0.02, tag: str = "") -> None:
        clients = sorted(self.tokens)

        def job(i: int) -> None:
            client = clients[i % len(clients)]
            eid = f"{tag}{i}-{uuid.uuid4().hex[:12]}"
            with httpx.Client(base_url=self.url, timeout=30) as http:
                if self.until_answered(http, client, eid, CODE % i) and i % 5 == 0:
                    self.until_answered(http, client, eid, CODE % i)  # a retry after success

        with ThreadPoolExecutor(4) as pool:
            for i in range(n):
                pool.submit(job, i)
                time.sleep(pace_s)

    def billing_check(self, redis_url: str) -> tuple[bool, str]:
        usage = usage_totals(redis_url, sorted(self.tokens))
        want = {c: len(self.answered.get(c, ())) for c in self.tokens}
        ok = all(usage[c] == (want[c], want[c]) for c in self.tokens) and not self.unanswered
        return ok, (
            f"usage (executions, ledger) {usage} vs distinct answered {want}; "
            f"retries answered with a body other than the first: {self.divergent}"
        )


@contextlib.contextmanager
def environment(
    tmp: Path, name: str, spool_tmpfs: bool = False
) -> Iterator[tuple[EmbeddedRedis, Service, dict[str, str]]]:
    """A Redis (persistent, so a restart keeps the data) and a 2-worker service."""
    redis_server = EmbeddedRedis(tmp / name / "redis", persist=True).start()
    var = tmp / name / "var"
    mounted = False
    try:
        if spool_tmpfs:
            (var / "spool").mkdir(parents=True)
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(var / "spool")],
                check=True,
                capture_output=True,
            )
            mounted = True
        service = start_service(
            redis_server.url,
            var,
            workers=2,
            extra_env={"CODEXEC_SPOOL_REPLAY_INTERVAL_S": "0.3", "CODEXEC_AUTH_CACHE_TTL_S": "60"},
        )
        try:
            tokens = create_keys(redis_server.url, [f"{name}-a", f"{name}-b"])
            yield redis_server, service, tokens
        finally:
            service.stop()
    finally:
        redis_server.stop()
        if mounted:
            subprocess.run(["umount", "-l", str(var / "spool")], check=False)


class Peak:
    """Samples the service's spool depth every 50 ms: proof the fault reached the service."""

    def __init__(self, service: Service) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(service,), daemon=True)
        self._thread.start()

    def _run(self, service: Service) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, service.spool_depth())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def redis_kill(tmp: Path) -> Outcome:
    with environment(tmp, "kill") as (redis_server, service, tokens):
        load = Load(service.url, tokens)
        runner = threading.Thread(target=load.run, args=(240,))
        peak = Peak(service)
        runner.start()
        time.sleep(1.5)
        redis_server.kill()
        time.sleep(3)
        redis_server.start()
        runner.join(180)
        replayed = wait_spool_empty(service)
        spool_peak = peak.stop()
        ok, detail = load.billing_check(redis_server.url)
    ok = ok and replayed
    return Outcome(
        "redis-kill",
        ok,
        f"{detail}; spool peak {spool_peak}, drained: {replayed}; statuses {load.statuses}; "
        f"transport errors {load.transport_errors}; unanswered {len(load.unanswered)}",
    )


def redis_slow(tmp: Path) -> Outcome:
    with environment(tmp, "slow") as (redis_server, service, tokens):
        load = Load(service.url, tokens)
        runner = threading.Thread(target=load.run, args=(600,))
        peak = Peak(service)
        runner.start()
        admin = syncredis.Redis.from_url(redis_server.url, socket_timeout=10)
        try:
            time.sleep(1)
            admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # type: ignore[no-untyped-call]
            time.sleep(2.5)
            # DEBUG SLEEP blocks the whole server
            admin.execute_command("DEBUG", "SLEEP", 5)  # type: ignore[no-untyped-call]
            time.sleep(1)
            # writes (and scripts) held for 9 s while reads go on: the rate-limit lease and
            # the usage record both time out (2 s + one retry each): records are spooled
            # while Redis may still run the held ones afterwards
            admin.execute_command("CLIENT", "PAUSE", 9000, "WRITE")  # type: ignore[no-untyped-call]
        finally:
            admin.close()
        runner.join(180)
        replayed = wait_spool_empty(service)
        spool_peak = peak.stop()
        ok, detail = load.billing_check(redis_server.url)
    errors = sum(n for s, n in load.statuses.items() if s >= 500) + load.transport_errors
    return Outcome(
        "redis-slow",
        ok and replayed,
        f"{detail}; spool peak {spool_peak}, drained: {replayed}; statuses {load.statuses}; "
        f"failed attempts (retried) {errors}; slowest answer {load.slowest_s:.2f} s",
    )


def busiest(pids: list[int], window: float = 0.4) -> int:
    """The PID that used the most CPU over ``window`` seconds."""
    before = {p: cpu_ticks(p) for p in pids}
    time.sleep(window)
    return max(pids, key=lambda p: cpu_ticks(p) - before[p])


def worker_kill(tmp: Path) -> Outcome:
    with environment(tmp, "wkill") as (redis_server, service, tokens):
        client = sorted(tokens)[0]
        load = Load(service.url, tokens, retries=20)
        pids = service.worker_pids()
        eid = "long-" + uuid.uuid4().hex
        result: list[bool] = []

        def long_request() -> None:
            with httpx.Client(base_url=service.url, timeout=30) as http:
                result.append(load.until_answered(http, client, eid, LONG))

        t = threading.Thread(target=long_request)
        t.start()
        time.sleep(0.6)
        victim = busiest(pids)
        os.kill(victim, signal.SIGKILL)
        t.join(120)
        # background check: the service still answers other clients' runs
        other = Load(service.url, {sorted(tokens)[1]: tokens[sorted(tokens)[1]]})
        other.run(20, tag="after-")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(service.worker_pids()) < 2:
            time.sleep(0.2)
        pids_after = service.worker_pids()
        usage = usage_totals(redis_server.url, [client])[client]
        ok_other, detail_other = other.billing_check(redis_server.url)
    ok = bool(result and result[0]) and usage == (1, 1) and ok_other
    return Outcome(
        "worker-kill",
        ok,
        f"killed worker {victim} of {pids} mid-run; retried {eid[:13]}...: answered "
        f"{bool(result and result[0])}, attempts {load.statuses} + {load.transport_errors} "
        f"transport errors; billed (executions, ledger) {usage} (want (1, 1)); workers after: "
        f"{pids_after}; afterwards {detail_other}",
    )


def disk_full(tmp: Path) -> Outcome:
    if os.geteuid() != 0:
        return Outcome("disk-full", True, "SKIP: needs root to mount a tmpfs")
    probe = tmp / "mount-probe"
    probe.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        return Outcome("disk-full", True, f"SKIP: cannot mount a tmpfs: {mounted.stderr.strip()}")
    subprocess.run(["umount", str(probe)], check=False)
    with environment(tmp, "disk", spool_tmpfs=True) as (redis_server, service, tokens):
        spool = service.var_dir / "spool"
        load = Load(service.url, tokens, retries=1)
        clients = sorted(tokens)
        # Warm the auth cache of both workers while Redis is up: with Redis down, a worker
        # that never saw a key answers 503, and the phases below send each client's requests
        # over one kept-alive connection, so to one worker. Each warm-up request opens its own
        # connection and the kernel picks the worker (SO_REUSEPORT): with 20 per client, the
        # chance that a client's later connection lands on a worker that never saw its key is
        # 2**-20 (with 3 per client it was 1/8, and this scenario failed now and then with
        # all 5 of one client's 10 requests refused).
        load.run(40, tag="warm-")
        redis_server.kill()
        filler = spool / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            size = 0
            with contextlib.suppress(OSError):
                while True:
                    size += os.write(fd, b"\0" * 4096)
            # leave one page free: the first record's line is cut short after 4 KiB
            os.ftruncate(fd, max(0, size - 4096))
        finally:
            os.close(fd)
        statuses_full: dict[int, int] = {}
        refused: list[tuple[str, str]] = []
        with httpx.Client(base_url=service.url, timeout=30) as http:
            for i in range(10):
                client, eid = clients[i % 2], f"full-{i}-{uuid.uuid4().hex[:8]}"
                r = load.post(http, client, eid, BIG % i)
                code = r.status_code if r is not None else 0
                statuses_full[code] = statuses_full.get(code, 0) + 1
                if code == 200:
                    load.answered.setdefault(client, set()).add(eid)
                else:
                    refused.append((client, eid))
            filler.unlink()  # space again, Redis still down: answered and spooled
            for i in range(10):
                client, eid = clients[i % 2], f"freed-{i}-{uuid.uuid4().hex[:8]}"
                load.until_answered(http, client, eid, CODE % i)
            spooled = service.spool_depth()
            redis_server.start()
            replayed = wait_spool_empty(service)
            for client, eid in refused:  # the refused ones, retried now: billed once
                load.until_answered(http, client, eid, BIG % int(eid.split("-")[1]))
        ok, detail = load.billing_check(redis_server.url)
        closed = statuses_full.get(503, 0) == sum(statuses_full.values())
    return Outcome(
        "disk-full",
        ok and closed and replayed and spooled == 10,
        f"while full: statuses {statuses_full} (all 503: {closed}); after freeing: {spooled} "
        f"spooled (want 10), replayed: {replayed}; {detail}",
    )


FAULTS: dict[str, Callable[[Path], Outcome]] = {
    "redis-kill": redis_kill,
    "redis-slow": redis_slow,
    "worker-kill": worker_kill,
    "disk-full": disk_full,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.chaos", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=sorted(FAULTS), help="faults to run")
    parser.add_argument("--json", type=Path, help="also write the outcomes as JSON")
    args = parser.parse_args(argv)
    print(f"chaos: {machine()}", flush=True)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="codexec-chaos-") as tmp:
        for name in args.only or list(FAULTS):
            started = time.monotonic()
            try:
                outcome = FAULTS[name](Path(tmp))
            except Exception as exc:  # a harness failure is a FAIL line, not a traceback
                outcome = Outcome(name, False, f"harness error: {type(exc).__name__}: {exc}")
            outcome.figures["seconds"] = round(time.monotonic() - started, 1)
            label = "FAIL" if not outcome.ok else "PASS"
            if outcome.detail.startswith("SKIP"):
                label, outcome.detail = "SKIP", outcome.detail.removeprefix("SKIP: ")
            print(f"{label} {outcome.name} "
                  f"({outcome.figures['seconds']} s): {outcome.detail}", flush=True)  # fmt: skip
            outcomes.append(outcome)
    if args.json is not None:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=2, default=str))
    failed = [o.name for o in outcomes if not o.ok]
    print("CHAOS " + ("PASS" if not failed else f"FAIL: {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
