"""Prometheus metrics, declared once, on an injectable registry.

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by ``codexec serve``
before the workers start; :func:`render` then aggregates every worker's files. No label
carries a client ID or a raw path.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "multiprocess_enabled", "render"]

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)
FUEL_BUCKETS = tuple(float(10**e) for e in range(4, 13))


def multiprocess_enabled() -> bool:
    """Whether metrics are shared between worker processes through files."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """Every metric the service exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.executions = Counter(
            "codexec_executions_total",
            "Executions by outcome (ok, error, or the limit error type).",
            ["outcome"],
            registry=r,
        )
        self.execution_seconds = Histogram(
            "codexec_execution_seconds",
            "Wall time of the sandbox run.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.execution_fuel = Histogram(
            "codexec_execution_fuel",
            "Fuel consumed per execution.",
            buckets=FUEL_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "codexec_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "codexec_http_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sandbox_in_use = Gauge(
            "codexec_sandbox_in_use",
            "Sandbox slots busy right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sandbox_waiting = Gauge(
            "codexec_sandbox_waiting",
            "Admitted requests waiting for a sandbox slot.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sandbox_rebuilds = Counter(
            "codexec_sandbox_rebuilds_total",
            "Sandbox instances discarded and rebuilt (after memory growth or an engine fault).",
            registry=r,
        )
        self.inline_runs = Counter(
            "codexec_inline_runs_total",
            "Runs and the inline fuel slice on the event loop: done there, moved to a sandbox "
            "thread because they needed more, or skipped (code whose slice ran out before).",
            ["result"],
            registry=r,
        )
        self.admission_rejections = Counter(
            "codexec_admission_rejections_total",
            "Requests refused with 503 because every slot and queue place was taken.",
            registry=r,
        )
        self.rate_limited = Counter(
            "codexec_rate_limited_total", "Requests refused with 429.", registry=r
        )
        self.quota_rejections = Counter(
            "codexec_quota_rejections_total", "Requests refused with 402.", registry=r
        )
        self.idempotent_replays = Counter(
            "codexec_idempotent_replays_total",
            "Requests answered from a stored response (same X-Execution-ID).",
            registry=r,
        )
        self.spool_depth = Gauge(
            "codexec_billing_spool_depth",
            "Usage records waiting in the local spool for Redis.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.redis_errors = Counter(
            "codexec_redis_errors_total",
            "Redis operations that failed, by operation.",
            ["operation"],
            registry=r,
        )
        self.reconcile_mismatches = Gauge(
            "codexec_reconcile_mismatches",
            "Client periods whose usage counters differ from the sums of their ledger "
            "entries, at the last reconciliation (maintenance job or `codexec billing "
            "rollup`, re-read every minute); 0 when all match.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.reconcile_runs = Counter(
            "codexec_reconcile_runs_total",
            "Reconciliations run by this process's maintenance job.",
            registry=r,
        )
        self.reconcile_last_run = Gauge(
            "codexec_reconcile_last_run_timestamp_seconds",
            "Unix time of the last saved reconciliation (maintenance job or CronJob, re-read "
            "every minute); 0 until one has run. Alert CodexecReconcileStale watches it.",
            registry=r,
            multiprocess_mode="max",
        )
        # Execution modes: streams, async jobs, batches (service/streaming.py, service/jobs.py)
        self.stream_clients = Gauge(
            "codexec_stream_clients",
            "Clients connected to a streamed (text/event-stream) execution right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.job_queue_depth = Gauge(
            "codexec_job_queue_depth",
            "Async executions queued or running, not yet finished (all processes).",
            registry=r,
            multiprocess_mode="max",
        )
        self.job_age_seconds = Histogram(
            "codexec_job_age_seconds",
            "Time from an async execution's submission to the start of its run.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs = Counter(
            "codexec_jobs_total",
            "Async execution jobs by event: submitted, rejected (queue full), run (succeeded), "
            "failed, reclaimed (taken over from a runner that went quiet), deferred (busy).",
            ["event"],
            registry=r,
        )
        self.batch_items = Counter(
            "codexec_batch_items_total",
            "Items of execution batches, by how they ended (ran, refused).",
            ["result"],
            registry=r,
        )
        # Webhooks (billing/webhooks.py, billing/webhook_delivery.py) and budget alerts
        self.webhook_deliveries = Counter(
            "codexec_webhook_deliveries_total",
            "Webhook delivery attempts by what followed: delivered, retried or dead (lettered).",
            ["result"],
            registry=r,
        )
        self.webhook_attempts = Counter(
            "codexec_webhook_attempts_total", "Webhook HTTP attempts made.", registry=r
        )
        self.webhook_outbox_depth = Gauge(
            "codexec_webhook_outbox_depth",
            "Webhook deliveries queued or waiting for a retry (all processes).",
            registry=r,
            multiprocess_mode="max",
        )
        self.webhook_dead_letters = Gauge(
            "codexec_webhook_dead_letters",
            "Webhook deliveries in the dead-letter stream (all processes).",
            registry=r,
            multiprocess_mode="max",
        )
        self.budget_alerts = Counter(
            "codexec_budget_alerts_total", "Budget threshold alerts fired.", registry=r
        )


def render(metrics: Metrics) -> bytes:
    """The text exposition of every metric (all workers' in multiprocess mode)."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(metrics.registry)
