"""Webhook signatures in Stripe's scheme, for codexec (sender) and for receivers.

Every delivery carries a ``Webhook-Signature`` header::

    Webhook-Signature: t=1714564800,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0c...

``t`` is the Unix time the delivery attempt was signed; ``v1`` is the lowercase hex
HMAC-SHA256, keyed with the client's webhook secret (the whole ``whsec_...`` string, as UTF-8),
of the bytes ``f"{t}."`` followed by the raw request body. A receiver checks it with
:func:`verify_signature` (copy this module: it needs only the standard library)::

    from billing.webhook_signing import SignatureError, verify_signature

    try:
        verify_signature(secret, request.headers["Webhook-Signature"], raw_body, tolerance=300)
    except SignatureError:
        return 400  # not from codexec, altered, or replayed later than the tolerance

Verify over the raw bytes received (before any JSON parsing), compare in constant time (done
here), and reject timestamps outside the tolerance so a captured delivery cannot be replayed
later. A header with several ``v1=`` entries is accepted when any one matches. Each attempt
is signed with the client's secret at that moment, so after a rotation a receiver should try
its old and its new secret until it has switched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = ["SECRET_PREFIX", "SignatureError", "new_secret", "sign", "verify_signature"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
"""Every generated secret starts with this, so it is recognisable in a leak scan."""


class SignatureError(ValueError):
    """A webhook signature header is missing, malformed, stale or does not match."""


def new_secret() -> str:
    """A fresh random webhook secret (``whsec_`` + 43 URL-safe characters, 256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Webhook-Signature`` header value for ``body`` signed at ``timestamp`` (now)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> int:
    """Check a ``Webhook-Signature`` header against ``body``; return its timestamp.

    Raises :class:`SignatureError` if the header is missing or malformed, if its timestamp is
    more than ``tolerance`` seconds away from ``now`` (default: the current time), or if no
    ``v1`` signature matches.
    """
    if not header:
        raise SignatureError("no Webhook-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed Webhook-Signature header")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed timestamp in Webhook-Signature") from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("Webhook-Signature needs t= and at least one v1=")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("Webhook-Signature timestamp is outside the tolerance")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("Webhook-Signature does not match the body")
    return timestamp
