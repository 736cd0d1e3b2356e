"""RESP packing of the held-connection path (billing/lanes.py): the bytes redis-py sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from billing.lanes import pack


@pytest.mark.parametrize(
    "args",
    [
        ("PING",),
        ("SET", "k", b"\x00\r\nbinary"),
        ("EVALSHA", "a" * 40, 2, "k1", "k2", -7, 2**63, 1.5, ""),
        ("HSET", "h", "f", "caf\u00e9"),
    ],
)
def test_pack_is_what_redis_py_sends(args: tuple[object, ...]) -> None:
    expected = b"".join(Connection().pack_command(*args))  # type: ignore[arg-type]
    assert pack(args) == expected  # type: ignore[arg-type]


def test_pack_refuses_what_redis_py_would_not_send() -> None:
    with pytest.raises(TypeError):
        pack(("SET", "k", None))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pack(("SET", "k", True))
