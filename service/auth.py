"""Bearer-key authentication: per-client keys, the Worker's single legacy key, the admin key.

Per-client keys are looked up by their SHA-256 in the key store (so the comparison is by
hash, not by timing-sensitive string equality); the legacy and admin keys are compared with
:func:`hmac.compare_digest`. Resolved keys are cached briefly per process, which also keeps
clients working while Redis is briefly unreachable; a revocation takes effect within
``auth_cache_ttl_s``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from pydantic import SecretStr
from redis.exceptions import RedisError

from billing.apikeys import ApiKeys
from service.errors import BadRequest, Forbidden, Unauthorized, Unavailable

__all__ = ["Authenticator", "Caller", "bearer_token"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a client bound to a plan, the legacy key, or the admin."""

    client_id: str | None
    plan: str
    legacy: bool = False
    admin: bool = False

    def billed_client(self, body_client_id: str | None) -> str:
        """The client to bill for a request that names ``body_client_id``."""
        if self.admin:
            raise Forbidden(
                "the admin key cannot run code; use a client key", field="Authorization"
            )
        if self.legacy:
            if not body_client_id:
                raise BadRequest("clientId is required with the shared API key", field="clientId")
            return body_client_id
        assert self.client_id is not None
        if body_client_id is not None and body_client_id != self.client_id:
            raise Forbidden("clientId does not match the API key's client", field="clientId")
        return self.client_id


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or 401."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise Unauthorized()
    return token


def _same(secret: SecretStr | None, token: str) -> bool:
    if secret is None:
        return False
    return hmac.compare_digest(secret.get_secret_value().encode(), token.encode())


class Authenticator:
    """Turns a Bearer token into a :class:`Caller`."""

    def __init__(
        self,
        keys: ApiKeys,
        *,
        legacy_key: SecretStr | None,
        admin_key: SecretStr | None,
        legacy_plan: str,
        cache_ttl_s: float,
    ) -> None:
        self._keys = keys
        self._legacy_key = legacy_key
        self._admin_key = admin_key
        self._legacy_plan = legacy_plan
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, Caller | None]] = {}

    async def caller(self, authorization: str | None) -> Caller:
        """The caller for this header; 401 when unknown or revoked."""
        token = bearer_token(authorization)
        if _same(self._admin_key, token):
            return Caller(client_id=None, plan="admin", admin=True)
        if _same(self._legacy_key, token):
            return Caller(client_id=None, plan=self._legacy_plan, legacy=True)
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            found = hit[1]
        else:
            try:
                key = await self._keys.resolve(token)
            except RedisError:
                if hit is not None:  # stale but known: keep serving through a Redis outage
                    found = hit[1]
                else:
                    raise Unavailable(
                        "key store unavailable", type="StoreUnavailable", retry_after=5
                    ) from None
            else:
                found = (
                    None
                    if key is None or key.revoked
                    else Caller(client_id=key.client_id, plan=key.plan)
                )
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, found)
        if found is None:
            raise Unauthorized()
        return found

    async def admin(self, authorization: str | None) -> Caller:
        """The caller, who must hold the admin key (403 otherwise)."""
        caller = await self.caller(authorization)
        if not caller.admin:
            raise Forbidden("this endpoint needs the admin key", field="Authorization")
        return caller
