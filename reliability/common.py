"""What the soak and chaos runs share: a ``codexec serve`` subprocess with N workers on an
embedded Redis they own, worker PIDs and RSS from /proc, metrics, keys and usage totals.

Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from billing import keys
from billing.apikeys import ApiKeys
from billing.client import connect
from billing.spool import Spool
from billing.usage import UsageStore
from reliability.launch import Service, launch

ADMIN_KEY = "admin-" + "r" * 32
# Generous limits: the runs measure the service, not a plan's rate limit.
PLANS = {
    "default": "soak",
    "plans": {
        "soak": {
            "max_timeout_ms": 10000,
            "max_memory_bytes": 134217728,
            "allowed_modules": [],
            "price_per_execution": "0.000001",
            "price_per_cpu_second": "0.0001",
            "price_per_mb": "0.00001",
            "monthly_budget": None,
            "rate_per_second": 1000000,
            "burst": 1000000,
        }
    },
}


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (VmRSS of /proc/<pid>/status); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine() -> str:
    """One line about where the figures come from."""
    load = os.getloadavg()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs "
        f"({model}), Python {platform.python_version()}, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def start_service(
    redis_url: str,
    var_dir: Path,
    *,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Service:
    """``python -m service serve`` with the runs' plans and admin key; ready on return."""
    var_dir.mkdir(parents=True, exist_ok=True)
    plans = var_dir / "plans.json"
    plans.write_text(json.dumps(PLANS))
    settings = {
        "REDIS_URL": redis_url,
        "PLANS_FILE": str(plans),
        "ADMIN_KEY": ADMIN_KEY,
        "LOG_LEVEL": "WARNING",
    }
    settings.update({k.removeprefix("CODEXEC_"): v for k, v in (extra_env or {}).items()})
    return launch(settings, var_dir, workers=workers, timeout=timeout)


def create_keys(redis_url: str, clients: list[str]) -> dict[str, str]:
    """A fresh API key for each client (plan ``soak``)."""

    async def go() -> dict[str, str]:
        client = connect(redis_url)
        try:
            return {c: await ApiKeys(client).create(c, "soak") for c in clients}
        finally:
            await client.aclose()

    return asyncio.run(go())


def usage_totals(redis_url: str, clients: list[str]) -> dict[str, tuple[int, int]]:
    """Per client: (executions in this month's record, ledger entries)."""

    async def go() -> dict[str, tuple[int, int]]:
        client = connect(redis_url)
        try:
            store = UsageStore(client, Spool(Path("/nonexistent-spool")))
            month = datetime.now(UTC).strftime("%Y-%m")
            found = {}
            for c in clients:
                totals = await store.totals(c, month)
                found[c] = (totals.executions, int(await client.xlen(keys.ledger(c))))
            return found
        finally:
            await client.aclose()

    return asyncio.run(go())


def metric_sum(url: str, sample: str, **labels: str) -> float:
    """Sum of the samples called ``sample`` (with these labels) on /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def wait_spool_empty(service: Service, timeout: float = 30) -> bool:
    """Whether every spooled record was replayed within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.spool_depth() == 0:
            return True
        time.sleep(0.2)
    return service.spool_depth() == 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(len(ordered), rank) - 1]
