"""``callbackUrl`` hosts written as IP literals in the forms the resolver accepts."""

from __future__ import annotations

import socket

import pytest

from service.errors import BadRequest
from service.jobs.callbacks import check_callback_url

# each is a loopback, private, link-local or unspecified address in another spelling
REFUSED = [
    "http://2130706433/x",  # 127.0.0.1 as one 32-bit number
    "http://127.1/x",  # a.b: b fills the last 24 bits
    "http://0x7f000001/x",  # hexadecimal
    "http://0x7f.0.0.1/x",  # hexadecimal part
    "http://0177.0.0.1/x",  # octal part
    "http://10.1/x",  # 10.0.0.1
    "http://192.168.1/x",  # a.b.c: c fills the last 16 bits
    "http://2852039166/x",  # 169.254.169.254 (cloud metadata)
    "http://0/x",  # 0.0.0.0
    "http://127.0.0.1./x",  # trailing dot
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/x",  # the same, hexadecimal
    "http://[0:0:0:0:0:0:0:1]/x",  # ::1 in full
    "http://[fe80::1%25eth0]/x",  # link-local with a zone
]


@pytest.mark.parametrize("url", REFUSED)
def test_other_spellings_of_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_callback_url(url, allow_private=False)
    assert refused.value.field == "callbackUrl"
    assert check_callback_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://134744072/x",  # 8.8.8.8 as one number
        "http://0x08080808/x",
        "http://8.8.2056/x",  # 8.8.8.8 as a.b.c
        "http://10.1.example.com/x",  # a name, resolved (and checked) only at delivery
        "http://[2606:4700::1111]/x",
    ],
)
def test_other_spellings_of_public_addresses_pass(url: str) -> None:
    assert check_callback_url(url, allow_private=False) == url


def test_the_forms_are_the_resolvers() -> None:
    """The spellings above are what the C library makes of them, not this module's guess."""
    assert socket.inet_aton("2130706433") == socket.inet_aton("127.0.0.1")
    assert socket.inet_aton("127.1") == socket.inet_aton("127.0.0.1")
    assert socket.inet_aton("0x7f000001") == socket.inet_aton("127.0.0.1")
    assert socket.inet_aton("2852039166") == socket.inet_aton("169.254.169.254")
    assert socket.inet_aton("8.8.2056") == socket.inet_aton("8.8.8.8")
