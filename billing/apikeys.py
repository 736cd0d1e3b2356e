"""API keys: ``cx_`` + 32 random bytes (urlsafe base64), stored only as their SHA-256.

``key:<sha256 hex>`` is a hash with ``client``, ``plan``, ``created`` (ISO-8601 UTC) and
``revoked`` (ISO-8601 UTC, or empty). The plaintext is returned once, by :meth:`ApiKeys.create`.
Redis errors propagate (the service decides how to degrade).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing import keys
from billing.errors import BillingError
from billing.scripts import AnyRedis

__all__ = ["PREFIX", "ApiKey", "ApiKeys", "hash_key"]

PREFIX = "cx_"
_MIN_PREFIX = 8


def hash_key(plaintext: str) -> str:
    """Lowercase SHA-256 hex of a key's plaintext."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: its client, plan, creation and revocation times and its hash."""

    client_id: str
    plan: str
    created: datetime
    revoked: datetime | None
    key_hash: str

    @property
    def prefix(self) -> str:
        """The first 12 hex digits of the hash: enough to name the key in ``keys revoke``."""
        return self.key_hash[:12]


def _decode(key_hash: str, raw: Mapping[Any, Any]) -> ApiKey:
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }
    revoked = text.get("revoked", "")
    return ApiKey(
        client_id=text["client"],
        plan=text["plan"],
        created=datetime.fromisoformat(text["created"]),
        revoked=datetime.fromisoformat(revoked) if revoked else None,
        key_hash=key_hash,
    )


class ApiKeys:
    """Create, resolve, list and revoke API keys."""

    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis

    async def create(self, client_id: str, plan: str) -> str:
        """Store a new key for ``client_id`` on ``plan``; return its plaintext (shown once)."""
        keys.validate_client_id(client_id)
        plaintext = PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat()
        await self.redis.hset(
            keys.api_key(hash_key(plaintext)),
            mapping={"client": client_id, "plan": plan, "created": created, "revoked": ""},
        )
        return plaintext

    async def resolve(self, plaintext: str) -> ApiKey | None:
        """The key for a presented plaintext (revoked ones included), or None if unknown."""
        digest = hash_key(plaintext)
        raw = await self.redis.hgetall(keys.api_key(digest))
        return _decode(digest, raw) if raw else None

    async def list(self) -> list[ApiKey]:
        """Every stored key (revoked ones too), oldest first."""
        found: list[ApiKey] = []
        async for name in self.redis.scan_iter(match="key:*", count=1000):
            digest = (name.decode() if isinstance(name, bytes) else str(name))[4:]
            raw = await self.redis.hgetall(keys.api_key(digest))
            if raw:
                found.append(_decode(digest, raw))
        return sorted(found, key=lambda k: (k.created, k.key_hash))

    async def revoke(self, prefix_or_hash: str) -> bool:
        """Revoke the key whose hash starts with ``prefix_or_hash`` (>= 8 hex digits).

        Returns False if no key matches; raises :class:`BillingError` if several do.
        """
        prefix = prefix_or_hash.strip().lower()
        if len(prefix) < _MIN_PREFIX:
            raise BillingError(f"give at least {_MIN_PREFIX} hex digits of the key's hash")
        matches = [k for k in await self.list() if k.key_hash.startswith(prefix)]
        if not matches:
            return False
        if len(matches) > 1:
            raise BillingError(f"{len(matches)} keys start with {prefix!r}; give more digits")
        key = matches[0]
        if key.revoked is None:
            await self.redis.hset(
                keys.api_key(key.key_hash), "revoked", datetime.now(UTC).isoformat()
            )
        return True
