"""Outbound webhooks: each client's endpoint and secret, and the durable outbox.

A delivery is queued with :meth:`Outbox.enqueue` as one entry of the ``outbox`` Redis Stream
and handed to the ``webhooks`` consumer group, which a :class:`~billing.webhook_delivery.
DeliveryWorker` in every service process reads. An attempt that fails moves the delivery to
``{outbox}:retry`` (a sorted set by due time, exponential backoff with jitter); a delivery
that ran out of attempts moves to ``{outbox}:deadletter``, where admins list and retry it
(``codexec webhooks list --failed`` / ``retry``). Each move is one Lua script on keys of one
hash slot, so a delivery is always in exactly one place, and everything is in Redis: a
delivery survives a restart of every service process. Delivery is at least once (a process
that dies after the receiver answered but before it recorded that leaves the delivery to be
reclaimed and sent again): receivers dedup by the body's ``id`` (also in ``Webhook-Id``).

The body of every delivery is JSON::

    {"id": "<delivery ID>", "type": "<event>", "createdAt": "<ISO-8601 UTC>",
     "clientId": "<client>", "data": {...the payload...}}

signed with the client's secret (:mod:`billing.webhook_signing`). A client's endpoint is a hash
``webhook:{client}`` with ``url``, ``secret``, ``created_ms`` and optional alert
``thresholds``; the secret is kept in clear (it keys the HMAC) and shown once when created.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from billing import keys
from billing.scripts import AnyRedis, register
from billing.totals import iso_utc
from billing.webhook_signing import new_secret

__all__ = [
    "DEDUP_TTL_S",
    "GROUP",
    "MAX_URL_LENGTH",
    "DeadLetter",
    "Delivery",
    "Endpoint",
    "Outbox",
    "Webhooks",
    "validate_url",
]

GROUP = "webhooks"
"""The consumer group of the outbox stream."""

DEDUP_TTL_S = 7 * 86400
"""How long an idempotency key of :meth:`Outbox.enqueue` keeps a delivery from repeating."""

MAX_URL_LENGTH = 2048


def validate_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL of at most 2048 characters."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"a webhook URL is at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url[:100]!r}")
    return url


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A client's webhook configuration (never its secret)."""

    client_id: str
    url: str | None
    created: datetime | None
    thresholds: tuple[int, ...] | None
    has_secret: bool


class Webhooks:
    """Per-client endpoints, secrets and alert threshold overrides."""

    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis

    async def set_endpoint(self, client_id: str, url: str, *, rotate: bool = False) -> str | None:
        """Point the client's webhooks at ``url``; return the secret if one was made now.

        A client that has a secret keeps it (receivers stay configured) unless ``rotate``.
        """
        validate_url(url)
        key = keys.webhook(client_id)
        secret = new_secret()
        pipe = self.redis.pipeline(transaction=False)  # one key; MULTI trips up cluster clients
        pipe.hset(key, "url", url)
        pipe.hsetnx(key, "created_ms", str(int(time.time() * 1000)))
        if rotate:
            pipe.hset(key, "secret", secret)
        else:
            pipe.hsetnx(key, "secret", secret)
        replies = await pipe.execute()
        return secret if rotate or replies[2] else None

    async def secret(self, client_id: str) -> str:
        """The client's secret, made now if it has none (a callback URL without an endpoint)."""
        key = keys.webhook(client_id)
        await self.redis.hsetnx(key, "secret", new_secret())
        value = _text(await self.redis.hget(key, "secret"))
        assert value is not None
        return value

    async def endpoint(self, client_id: str) -> Endpoint | None:
        """The client's configuration, or None if it has none."""
        raw = await self.redis.hgetall(keys.webhook(client_id))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        created = fields.get("created_ms")
        thresholds = fields.get("thresholds")
        return Endpoint(
            client_id=client_id,
            url=fields.get("url"),
            created=datetime.fromtimestamp(int(created) / 1000, UTC) if created else None,
            thresholds=tuple(int(t) for t in thresholds.split(",") if t) if thresholds else None,
            has_secret=bool(fields.get("secret")),
        )

    async def endpoints(self) -> list[Endpoint]:
        """Every client's configuration, sorted by client."""
        found: list[Endpoint] = []
        async for raw in self.redis.scan_iter(match="webhook:{*}", count=1000):
            name = _text(raw) or ""
            client = name[len("webhook:{") : -1]
            try:
                ours = name == keys.webhook(client)
            except ValueError:  # not a key this module wrote
                continue
            if ours and (ep := await self.endpoint(client)) is not None:
                found.append(ep)
        return sorted(found, key=lambda e: e.client_id)

    async def set_thresholds(self, client_id: str, thresholds: Sequence[int] | None) -> None:
        """Override the plan's alert thresholds (percent of the budget); None: the plan's."""
        key = keys.webhook(client_id)
        if thresholds is None:
            await self.redis.hdel(key, "thresholds")
        else:
            await self.redis.hset(key, "thresholds", ",".join(str(t) for t in thresholds))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery: where, what (the exact body bytes to sign) and how it went."""

    id: str
    client_id: str
    url: str
    event: str
    body: str
    created_ms: int
    attempts: int = 0
    last_error: str = ""

    def to_json(self) -> str:
        """The delivery as stored in the outbox, retry set and dead-letter stream."""
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: bytes | str) -> Delivery:
        """Read back :meth:`to_json`."""
        return cls(**orjson.loads(text))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that ran out of attempts, with its dead-letter stream ID."""

    entry_id: str
    delivery: Delivery


class Outbox:
    """The durable queue of webhook deliveries (see the module docstring)."""

    def __init__(self, redis: AnyRedis, *, dedup_ttl_s: int = DEDUP_TTL_S) -> None:
        self.redis = redis
        self.webhooks = Webhooks(redis)
        self.dedup_ttl_s = dedup_ttl_s
        self._enqueue = register(redis, "outbox_enqueue")
        self._revive = register(redis, "outbox_revive")

    async def enqueue(
        self,
        client_id: str,
        url: str,
        event: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> str:
        """Queue one delivery of ``event`` with ``payload`` to ``url``; return its ID.

        With ``key`` (e.g. ``f"{execution_id}:completed"``) the same key of the same client
        queues nothing new for :data:`DEDUP_TTL_S` and returns the first delivery's ID.
        """
        validate_url(url)
        await self.webhooks.secret(client_id)  # every delivery is signed
        now_ms = int(time.time() * 1000)
        delivery_id = "whd_" + uuid.uuid4().hex
        envelope = {
            "id": delivery_id,
            "type": event,
            "createdAt": iso_utc(datetime.fromtimestamp(now_ms / 1000, UTC)),
            "clientId": client_id,
            "data": dict(payload),
        }
        body = orjson.dumps(envelope, option=orjson.OPT_NON_STR_KEYS).decode()
        delivery = Delivery(delivery_id, client_id, url, event, body, now_ms)
        if key is None:
            await self.redis.xadd(keys.OUTBOX, {"d": delivery.to_json()})
            return delivery_id
        result = await self._enqueue(
            keys=[keys.OUTBOX, keys.outbox_dedup(client_id, key)],
            args=[self.dedup_ttl_s, delivery_id, delivery.to_json()],
        )
        return _text(result) or delivery_id

    async def depth(self) -> int:
        """Deliveries not yet delivered nor dead: in the stream plus waiting to retry."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(keys.OUTBOX)
        pipe.zcard(keys.OUTBOX_RETRY)
        in_stream, waiting = await pipe.execute()
        return int(in_stream) + int(waiting)

    async def dead_letter_count(self) -> int:
        """How many deliveries are dead-lettered."""
        return int(await self.redis.xlen(keys.DEADLETTER))

    async def dead_letters(self, count: int = 1000, after: str | None = None) -> list[DeadLetter]:
        """The oldest ``count`` dead letters (after the stream ID ``after``, if given)."""
        start = "-" if after is None else f"({after}"
        entries: list[Any] = list(
            await self.redis.xrange(keys.DEADLETTER, min=start, count=count) or []
        )
        return [
            DeadLetter(_text(entry_id) or "", Delivery.from_json(fields[b"d"]))
            for entry_id, fields in entries
        ]

    async def retry_dead(self, delivery_id: str | None = None) -> int:
        """Send one dead letter (by delivery ID) or all (None) back for fresh attempts.

        Returns how many went back. Only letters dead when the call started are considered,
        so a delivery that fails again meanwhile is not retried twice by one call.
        """
        newest = await self.redis.xrevrange(keys.DEADLETTER, count=1)
        if not newest:
            return 0
        last = _text(newest[0][0]) or ""
        revived, after = 0, None
        while page := await self.dead_letters(after=after):
            for letter in page:
                if _stream_id(letter.entry_id) > _stream_id(last):
                    return revived
                if delivery_id is not None and letter.delivery.id != delivery_id:
                    continue
                fresh = replace(letter.delivery, attempts=0)
                revived += int(
                    await self._revive(
                        keys=[keys.DEADLETTER, keys.OUTBOX],
                        args=[letter.entry_id, fresh.to_json()],
                    )
                )
            after = page[-1].entry_id
        return revived


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
