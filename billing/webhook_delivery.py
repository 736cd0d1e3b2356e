"""The webhook delivery worker: reads the outbox's consumer group and sends each delivery.

Every service process runs one :class:`DeliveryWorker`. Each round it (1) moves deliveries
whose retry is due from ``{outbox}:retry`` back into the stream, (2) claims, with
XAUTOCLAIM, deliveries another consumer read more than ``claim_idle_s`` ago without
settling them (its process died mid-attempt), (3) reads new ones (XREADGROUP, blocking
briefly), and sends them concurrently. An attempt is a POST of the stored body, signed
(:func:`billing.webhook_signing.sign`) with the client's current secret, a timeout, no
redirects (a 3xx is a failure) and at most :data:`MAX_RESPONSE_BYTES` of the answer read.
A 2xx answer delivers it; anything else schedules the next attempt after
:func:`backoff_s` (longer if the receiver sent ``Retry-After`` with a 429 or 503) until
``max_attempts`` were made; then it is dead-lettered. The dead-letter stream keeps
``deadletter_retention_s`` and at most about ``deadletter_max`` entries: whenever the settle
script adds one, it trims by age (XTRIM MINID, exact) and by count (XADD MAXLEN ~), both
O(entries removed), so the stream never grows without bound.

Where a delivery may connect (server-side request forgery) is decided by
:mod:`billing.webhook_address`: the client of :func:`http_client` connects only to a resolved
and checked address, and a host with only refused addresses fails the attempt for good.
"""

from __future__ import annotations

import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx
from redis.exceptions import RedisError, ResponseError

from billing import keys
from billing.scripts import AnyRedis, register
from billing.webhook_address import AddressRefused, GuardedTransport, refusal
from billing.webhook_signing import sign
from billing.webhooks import GROUP, Delivery, Outbox

__all__ = [
    "DEADLETTER_MAX",
    "DEADLETTER_RETENTION_S",
    "MAX_RESPONSE_BYTES",
    "AddressRefused",  # re-exported from billing.webhook_address (its home)
    "AttemptResult",
    "DeliveryWorker",
    "backoff_s",
    "http_client",
    "refusal",  # re-exported from billing.webhook_address (its home)
]

log = logging.getLogger("codexec.webhooks")

MAX_RESPONSE_BYTES = 1024
"""How much of a receiver's answer is read (kept as the error of a failed attempt)."""

USER_AGENT = "codexec-webhooks/1"
STALE_CONSUMER_MS = 24 * 3600 * 1000
DEADLETTER_RETENTION_S = 30 * 86400
"""How long a dead letter is kept by default (30 days)."""
DEADLETTER_MAX = 100_000
"""How many dead letters are kept at most by default (about: trimmed by whole nodes)."""


def backoff_s(
    attempts: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Wait before the next attempt after ``attempts`` failed ones (>= 1): "equal jitter".

    The step is ``min(cap, base * 2**(attempts - 1))``; the wait is half of it plus a random
    part of the other half, so retries of many deliveries that failed together spread out.
    """
    step = min(cap_s, base_s * 2.0 ** max(0, attempts - 1))
    return step / 2 + rand() * step / 2


def http_client(timeout_s: float, *, allow_private: bool = True) -> httpx.AsyncClient:
    """The HTTP client deliveries use: ``timeout_s`` for each phase, redirects not followed,
    every connection to a resolved and checked address (:mod:`billing.webhook_address`). Pass
    ``allow_private=False`` in production (the service's ``CODEXEC_CALLBACK_ALLOW_PRIVATE``
    off); the default keeps loopback and private receivers reachable for development."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        transport=GuardedTransport(allow_private),
        trust_env=False,
    )


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt went."""

    ok: bool
    status: int | None = None
    error: str = ""
    retry_after_s: float | None = None
    final: bool = False
    """No later attempt can go better (the address is refused): dead-letter it now."""


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code not in (429, 503):
        return None
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


class DeliveryWorker:
    """Sends the outbox's deliveries (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        http: httpx.AsyncClient,
        *,
        max_attempts: int = 8,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 3600.0,
        claim_idle_s: float = 60.0,
        deadletter_retention_s: float = DEADLETTER_RETENTION_S,
        deadletter_max: int = DEADLETTER_MAX,
        batch: int = 16,
        block_ms: int = 500,
        consumer: str | None = None,
        on_outcome: Callable[[str], None] | None = None,
        on_attempt: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.redis: AnyRedis = outbox.redis
        self.http = http
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.deadletter_retention_ms = int(deadletter_retention_s * 1000)
        self.deadletter_max = deadletter_max
        self.batch = batch
        self.block_ms = block_ms
        self.consumer = consumer or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._on_outcome = on_outcome or (lambda _result: None)
        self._on_attempt = on_attempt or (lambda: None)
        self._promote = register(self.redis, "outbox_promote")
        self._settle = register(self.redis, "outbox_settle")
        self._group_ready = False

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless they exist, and forget consumers
        of processes gone for a day that hold nothing (each process start adds one)."""
        try:
            await self.redis.xgroup_create(keys.OUTBOX, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        for info in await self.redis.xinfo_consumers(keys.OUTBOX, GROUP):
            if int(info["pending"]) == 0 and int(info["idle"]) > STALE_CONSUMER_MS:
                await self.redis.xgroup_delconsumer(keys.OUTBOX, GROUP, info["name"])
        self._group_ready = True

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            await self.run_once()

    async def run_once(self) -> int:
        """One round (module docstring); returns how many attempts it made."""
        if not self._group_ready:
            await self.ensure_group()
        try:
            await self._promote(
                keys=[keys.OUTBOX_RETRY, keys.OUTBOX], args=[int(time.time() * 1000), 1000]
            )
            reply = await self.redis.xautoclaim(
                keys.OUTBOX, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
            )
            entries: list[Any] = list(reply[1])
            if not entries:
                block = self.block_ms or None
                read = await self.redis.xreadgroup(
                    GROUP, self.consumer, {keys.OUTBOX: ">"}, count=self.batch, block=block
                )
                streams: list[Any] = list(read or [])
                entries = [e for _stream, items in streams for e in items]
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (e.g. FLUSHDB): start over
                self._group_ready = False
                return 0
            raise
        await self._deliver_all(entries)
        return len(entries)

    async def _deliver_all(self, entries: Sequence[Any]) -> None:
        async with anyio.create_task_group() as tg:
            for entry_id, fields in entries:
                try:
                    delivery = Delivery.from_json(fields[b"d"]) if fields else None
                except (KeyError, TypeError, ValueError):
                    log.error("unreadable outbox entry dropped", extra={"entry": str(entry_id)})
                    delivery = None
                if delivery is None:  # deleted while pending, or unreadable: nothing to send
                    await self.redis.xack(keys.OUTBOX, GROUP, entry_id)
                    await self.redis.xdel(keys.OUTBOX, entry_id)
                    continue
                tg.start_soon(self._deliver_entry, entry_id, delivery)

    async def _deliver_entry(self, entry_id: bytes | str, delivery: Delivery) -> None:
        try:
            await self._deliver_and_settle(entry_id, delivery)
        except (RedisError, OSError):  # left pending: claimed again after claim_idle_s
            log.warning("webhook attempt not settled: redis unavailable", exc_info=True)

    async def _deliver_and_settle(self, entry_id: bytes | str, delivery: Delivery) -> None:
        result = await self.attempt(delivery)
        attempts = delivery.attempts + 1
        if result.ok:
            outcome, due_ms, after = "delivered", 0, delivery
        else:
            after = replace(delivery, attempts=attempts, last_error=result.error[:500])
            if attempts < self.max_attempts and not result.final:
                wait = backoff_s(attempts, self.backoff_base_s, self.backoff_max_s)
                if result.retry_after_s is not None:
                    wait = max(wait, min(result.retry_after_s, self.backoff_max_s))
                outcome, due_ms = "retried", int((time.time() + wait) * 1000)
            else:
                outcome, due_ms = "dead", 0
                log.warning(
                    "webhook dead-lettered",
                    extra={"delivery": delivery.id, "event": delivery.event, "attempts": attempts},
                )
        mode = {"delivered": "done", "retried": "retry", "dead": "dead"}[outcome]
        settled = await self._settle(
            keys=[keys.OUTBOX, keys.OUTBOX_RETRY, keys.DEADLETTER],
            args=[
                GROUP,
                entry_id,
                mode,
                due_ms,
                after.to_json(),
                max(0, int(time.time() * 1000) - self.deadletter_retention_ms),
                self.deadletter_max,
            ],
        )
        if int(settled):
            self._on_outcome(outcome)

    async def attempt(self, delivery: Delivery) -> AttemptResult:
        """POST ``delivery`` once, signed with its client's current secret."""
        self._on_attempt()
        body = delivery.body.encode()
        secret = await self.outbox.webhooks.secret(delivery.client_id)
        headers = {
            "Content-Type": "application/json",
            "Webhook-Id": delivery.id,
            "Webhook-Event": delivery.event,
            "Webhook-Attempt": str(delivery.attempts + 1),
            "Webhook-Signature": sign(secret, body),
        }
        try:
            request = self.http.build_request("POST", delivery.url, content=body, headers=headers)
            response = await self.http.send(request, stream=True)
            try:
                head = b""
                async for chunk in response.aiter_raw():
                    head += chunk
                    if len(head) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
        except AddressRefused as exc:
            return AttemptResult(False, error=f"address refused: {exc}"[:500], final=True)
        except httpx.HTTPError as exc:
            return AttemptResult(False, error=f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return AttemptResult(True, response.status_code)
        snippet = head[:200].decode("utf-8", "replace")
        return AttemptResult(
            False,
            response.status_code,
            f"HTTP {response.status_code}: {snippet}",
            _retry_after(response),
        )
