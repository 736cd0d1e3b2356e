"""The only place that builds (and parses) Redis key names.

Every key of one client carries the client ID as a Redis Cluster hash tag
(``usage:{acme}:2024-05-01``), so a record script touching a client's daily record, monthly
record, idempotency claim and ledger works on one slot. API keys (``key:<sha256>``) are global.

Layout (see ``billing/usage.py`` for the hash fields)::

    usage:{<client>}:<YYYY-MM-DD>    hash   daily counters
    usage:{<client>}:<YYYY-MM>       hash   monthly counters
    exec:{<client>}:<executionId>    string body hash + "\\n" + stored response, 24 h
    ledger:{<client>}                stream one entry per recorded execution or correction
    ledgerid:{<client>}              hash   execution ID -> ledger entry ID (trimmed with it)
    reconcile:last                   hash   the last reconciliation's result (global)
    budget:{<client>}                hash   per-client overrides (field "monthly")
    budget:{<client>}:<YYYY-MM>      hash   budget leases: "leased" total + one field per lease
    leases:{<client>}:<YYYY-MM>      zset   lease ID -> deadline (server ms), swept by admit.lua
    rate:{<client>}                  hash   token bucket state
    key:<sha256 hex>                 hash   API key: client, plan, created, revoked
    tmp:{<client>}:rollup            hash   scratch of the rollup script (deleted by it)
    webhook:{<client>}               hash   webhook endpoint: url, secret, created_ms, thresholds
    alerts:{<client>}:<YYYY-MM>      hash   budget alert thresholds fired this month (<t>),
                                            their webhooks not yet queued (p:<t>), seq
    outbox                           stream webhook deliveries (consumer group "webhooks")
    {outbox}:retry                   zset   deliveries waiting for their next attempt (due ms)
    {outbox}:deadletter              stream deliveries that ran out of attempts
    {outbox}:dedup:<client>:<sha>    string delivery ID of an idempotency key, 7 days
    jobs                             stream async executions to run (consumer group "runners")
    jobs:{<client>}                  zset   the client's unfinished async executions (by ms)
    job:{<client>}:<executionId>     hash   one async execution: status, request, response
    batch:{<client>}:<batchId>       hash   one async batch: item IDs, items left, callback

The outbox keys share the hash slot of ``outbox`` (``{outbox}`` hashes the same text), so
moving a delivery between them is one atomic script on a Redis Cluster too.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime

__all__ = [
    "DEADLETTER",
    "JOBS",
    "LEDGER_SCAN_PATTERN",
    "OUTBOX",
    "OUTBOX_RETRY",
    "RECONCILE_LAST",
    "USAGE_SCAN_PATTERN",
    "alerts",
    "api_key",
    "batch",
    "budget",
    "client_of_ledger_key",
    "client_of_usage_key",
    "day_period",
    "execution",
    "job",
    "jobs_of",
    "kv_usage",
    "ledger",
    "ledger_index",
    "month_period",
    "outbox_dedup",
    "parse_kv_usage",
    "parse_period",
    "parse_usage_key",
    "rate",
    "rollup_scratch",
    "usage",
    "usage_pattern",
    "validate_client_id",
    "webhook",
]

# The service enforces 1-128 chars of [A-Za-z0-9._:@-]; braces would break the hash tag.
_CLIENT_RE = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_EXEC_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_RE = re.compile(r"\d{4}-\d{2}")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_USAGE_RE = re.compile(r"usage:\{([^{}]+)\}:(\d{4}-\d{2}(?:-\d{2})?)")
_KV_RE = re.compile(r"usage:(.+):(\d{4}-\d{2}(?:-\d{2})?)")

USAGE_SCAN_PATTERN = "usage:{*}:*"
"""SCAN ``MATCH`` pattern of every usage record (braces are literal in Redis globs)."""


def validate_client_id(client_id: str) -> str:
    """Return ``client_id`` if it may appear in a key, else raise :class:`ValueError`."""
    if not _CLIENT_RE.fullmatch(client_id):
        raise ValueError(f"invalid client ID {client_id!r}: 1-128 chars of [A-Za-z0-9._:@-]")
    return client_id


def _validate_execution_id(execution_id: str) -> str:
    if not _EXEC_RE.fullmatch(execution_id):
        raise ValueError(f"invalid execution ID {execution_id!r}: 1-128 chars of [A-Za-z0-9._:-]")
    return execution_id


def day_period(at: date | datetime) -> str:
    """``YYYY-MM-DD`` of a date (or of a UTC datetime)."""
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"


def month_period(at: date | datetime) -> str:
    """``YYYY-MM`` of a date (or of a UTC datetime)."""
    return f"{at.year:04d}-{at.month:02d}"


def parse_period(period: str) -> date:
    """Validate ``YYYY-MM-DD`` or ``YYYY-MM``; return its first day (ValueError if malformed)."""
    if _DAY_RE.fullmatch(period):
        return date.fromisoformat(period)
    if _MONTH_RE.fullmatch(period):
        return date.fromisoformat(period + "-01")
    raise ValueError(f"invalid period {period!r}: expected YYYY-MM-DD or YYYY-MM")


def usage(client_id: str, period: str) -> str:
    """``usage:{<client>}:<period>`` where period is ``YYYY-MM-DD`` or ``YYYY-MM``."""
    parse_period(period)
    return f"usage:{{{validate_client_id(client_id)}}}:{period}"


def usage_pattern(client_id: str) -> str:
    """SCAN ``MATCH`` pattern of one client's usage records (client IDs hold no glob chars)."""
    return f"usage:{{{validate_client_id(client_id)}}}:*"


def execution(client_id: str, execution_id: str) -> str:
    """``exec:{<client>}:<executionId>``: the idempotency claim and stored response."""
    return f"exec:{{{validate_client_id(client_id)}}}:{_validate_execution_id(execution_id)}"


def ledger(client_id: str) -> str:
    """``ledger:{<client>}``: the per-execution stream."""
    return f"ledger:{{{validate_client_id(client_id)}}}"


RECONCILE_LAST = "reconcile:last"
"""Hash: the last reconciliation's result (mismatched periods, clients, periods, at_ms)."""

LEDGER_SCAN_PATTERN = "ledger:{*}"
"""SCAN ``MATCH`` pattern of every ledger stream."""

_LEDGER_RE = re.compile(r"ledger:\{([^{}]+)\}")


def ledger_index(client_id: str) -> str:
    """``ledgerid:{<client>}``: execution ID -> ledger entry ID (receipts are found by it)."""
    return f"ledgerid:{{{validate_client_id(client_id)}}}"


def client_of_ledger_key(key: str | bytes) -> str | None:
    """The client ID of a ``ledger:{<client>}`` key, or None if it is not one."""
    text = key.decode() if isinstance(key, bytes) else key
    m = _LEDGER_RE.fullmatch(text)
    if m is None or not _CLIENT_RE.fullmatch(m.group(1)):
        return None
    return m.group(1)


def budget(client_id: str) -> str:
    """``budget:{<client>}``: per-client overrides of the plan's budget."""
    return f"budget:{{{validate_client_id(client_id)}}}"


def budget_leases(client_id: str, month: str) -> str:
    """``budget:{<client>}:<YYYY-MM>``: the month's outstanding budget leases (pico-USD)."""
    if not _MONTH_RE.fullmatch(month):
        raise ValueError(f"invalid month {month!r}: expected YYYY-MM")
    return f"budget:{{{validate_client_id(client_id)}}}:{month}"


def lease_deadlines(client_id: str, month: str) -> str:
    """``leases:{<client>}:<YYYY-MM>``: when each budget lease of the month expires."""
    if not _MONTH_RE.fullmatch(month):
        raise ValueError(f"invalid month {month!r}: expected YYYY-MM")
    return f"leases:{{{validate_client_id(client_id)}}}:{month}"


def rate(client_id: str) -> str:
    """``rate:{<client>}``: token-bucket state."""
    return f"rate:{{{validate_client_id(client_id)}}}"


def rollup_scratch(client_id: str) -> str:
    """``tmp:{<client>}:rollup``: scratch space of the monthly recompute script."""
    return f"tmp:{{{validate_client_id(client_id)}}}:rollup"


OUTBOX = "outbox"
"""The stream of webhook deliveries waiting for their next attempt now."""

OUTBOX_RETRY = "{outbox}:retry"
"""Sorted set of deliveries waiting for a later attempt (score: due Unix ms)."""

DEADLETTER = "{outbox}:deadletter"
"""The stream of deliveries that ran out of attempts (kept for admins)."""


def outbox_dedup(client_id: str, key: str) -> str:
    """``{outbox}:dedup:<client>:<sha256 of key>``: a delivery's idempotency key."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{{outbox}}:dedup:{validate_client_id(client_id)}:{digest}"


def webhook(client_id: str) -> str:
    """``webhook:{<client>}``: the client's webhook endpoint, secret and alert thresholds."""
    return f"webhook:{{{validate_client_id(client_id)}}}"


def alerts(client_id: str, month: str) -> str:
    """``alerts:{<client>}:<YYYY-MM>``: which budget alert thresholds fired this month."""
    if not _MONTH_RE.fullmatch(month):
        raise ValueError(f"invalid month {month!r}: expected YYYY-MM")
    return f"alerts:{{{validate_client_id(client_id)}}}:{month}"


JOBS = "jobs"
"""The stream of async executions waiting for (or held by) a runner."""


def jobs_of(client_id: str) -> str:
    """``jobs:{<client>}``: the client's queued or running async executions (score: ms)."""
    return f"jobs:{{{validate_client_id(client_id)}}}"


def job(client_id: str, execution_id: str) -> str:
    """``job:{<client>}:<executionId>``: one async execution's state and response."""
    return f"job:{{{validate_client_id(client_id)}}}:{_validate_execution_id(execution_id)}"


def batch(client_id: str, batch_id: str) -> str:
    """``batch:{<client>}:<batchId>``: one async batch (its items and how many are left)."""
    return f"batch:{{{validate_client_id(client_id)}}}:{_validate_execution_id(batch_id)}"


def api_key(sha256_hex: str) -> str:
    """``key:<sha256 hex>``: one API key's hash."""
    if not _SHA_RE.fullmatch(sha256_hex):
        raise ValueError("an API key is addressed by its lowercase SHA-256 hex digest")
    return f"key:{sha256_hex}"


def parse_usage_key(key: str | bytes) -> tuple[str, str] | None:
    """``(client, period)`` of a Redis usage key, or None if it is not one."""
    text = key.decode() if isinstance(key, bytes) else key
    m = _USAGE_RE.fullmatch(text)
    if m is None or not _CLIENT_RE.fullmatch(m.group(1)):
        return None
    try:
        parse_period(m.group(2))
    except ValueError:
        return None
    return m.group(1), m.group(2)


def client_of_usage_key(key: str | bytes) -> str | None:
    """The client ID of a Redis usage key, or None."""
    parsed = parse_usage_key(key)
    return parsed[0] if parsed else None


def kv_usage(client_id: str, period: str) -> str:
    """The Cloudflare KV name of a usage record: ``usage:<client>:<period>`` (no braces)."""
    parse_period(period)
    return f"usage:{validate_client_id(client_id)}:{period}"


def parse_kv_usage(name: str) -> tuple[str, str]:
    """``(client, period)`` of a KV usage name; ValueError if it is not one.

    The period is the last ``:``-separated part, so client IDs containing ``:`` survive.
    """
    m = _KV_RE.fullmatch(name)
    if m is None:
        raise ValueError(f"not a usage key: {name!r}")
    client, period = m.group(1), m.group(2)
    validate_client_id(client)
    parse_period(period)
    return client, period
