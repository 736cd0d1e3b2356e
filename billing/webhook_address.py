"""Where a webhook delivery may connect: the guard against server-side request forgery.

The transport of :func:`billing.webhook_delivery.http_client` (:class:`GuardedTransport`)
resolves the host itself when it opens a connection and connects to the address it
checked, never resolving the name again (so DNS rebinding cannot swap it; TLS still
verifies the certificate against the name). Unless ``allow_private``, an address that is
loopback, private, link-local, multicast, reserved, unspecified or otherwise not globally
routable (IPv4 or IPv6, IPv4-mapped IPv6 included: :func:`refusal`) is refused; a host with
no other address raises :class:`AddressRefused`, and the delivery is dead-lettered at once
with the reason (it would fail the same way on every retry). Proxies from the environment
are not used (a proxy would resolve the name instead).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import anyio
import httpcore
import httpx

__all__ = ["AddressRefused", "GuardedTransport", "refusal"]

_MAX_ADDRESSES = 4  # tried per connection, each with the connect timeout

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_REFUSED_KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")


class AddressRefused(Exception):
    """A webhook URL's host has no address a delivery may connect to."""


def refusal(address: str) -> str | None:
    """Why a delivery may not connect to the IP ``address`` (e.g. ``"loopback"``), or None."""
    ip: _IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):  # an IPv4 address inside: judge that one
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    for kind in _REFUSED_KINDS:
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "not globally routable"


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once per connection, checks every address, connects to a checked one."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if self.allow_private:
            return found
        allowed = [a for a in found if refusal(a) is None]
        if not allowed:
            why = ", ".join(f"{a} ({refusal(a)})" for a in found)
            raise AddressRefused(f"{host} resolves only to refused addresses: {why}")
        return allowed

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first reachable checked address of ``host``."""
        error: httpcore.ConnectError | None = None
        for address in (await self._addresses(host, port, timeout))[:_MAX_ADDRESSES]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        """Webhooks never go to a local socket."""
        raise AddressRefused("webhooks are not delivered to unix sockets")

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry waits)."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes to a resolved and checked address
    (module docstring); ``allow_private`` skips the check of the address ranges only."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(allow_private),
        )
