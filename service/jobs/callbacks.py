"""``callbackUrl``: checked when submitted, delivered through the signed webhook outbox.

A URL must be ``http``/``https`` with a host and at most :data:`MAX_URL_LENGTH` characters.
Where private targets are refused (production, unless ``CODEXEC_CALLBACK_ALLOW_PRIVATE``),
a host that is ``localhost`` or an IP literal in a loopback, private, link-local, reserved
or multicast range is refused too. IPv4 literals are read the way the resolver reads them
(:func:`socket.inet_aton`: ``127.1``, ``2130706433``, ``0x7f000001`` and ``0177.0.0.1`` are
all 127.0.0.1), IPv6 literals with :mod:`ipaddress`, and the ranges are those the delivery
client refuses (:func:`billing.webhook_address.refusal`). Names are not resolved here (a
name may change what it points to): the delivery client resolves the name when it connects
and connects to the address it resolved; built with ``allow_private=False`` it refuses the
same ranges there and dead-letters a delivery whose host has only refused addresses
(:func:`billing.webhook_delivery.http_client`). Deliveries go out through
:class:`billing.webhooks.Outbox`, which signs, retries with backoff and dead-letters them.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from billing.webhook_address import refusal
from service.errors import BadRequest

__all__ = ["BATCH_COMPLETED", "EXECUTION_COMPLETED", "MAX_URL_LENGTH", "check_callback_url"]

MAX_URL_LENGTH = 2048
EXECUTION_COMPLETED = "execution.completed"
BATCH_COMPLETED = "batch.completed"
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def _ip_literal(name: str) -> str | None:
    """The address an IP literal host names (in any form the resolver accepts), or None."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(name))
    except (OSError, UnicodeError, ValueError):
        return None


def _private_host(host: str) -> bool:
    name = host.strip("[]").rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    address = _ip_literal(name)
    return address is not None and refusal(address) is not None


def check_callback_url(url: object, *, allow_private: bool) -> str | None:
    """The callback URL of a request body (None if absent), or 400 naming ``callbackUrl``."""
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        raise BadRequest("callbackUrl must be a non-empty string", field="callbackUrl")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"callbackUrl is over {MAX_URL_LENGTH} characters", field="callbackUrl")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise BadRequest("callbackUrl is not a valid URL", field="callbackUrl") from None
    if parts.scheme not in ("http", "https") or not host:
        raise BadRequest("callbackUrl must be an http or https URL", field="callbackUrl")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("callbackUrl must not hold credentials", field="callbackUrl")
    if not allow_private and _private_host(host):
        raise BadRequest("callbackUrl points to a loopback or private address", field="callbackUrl")
    return url
