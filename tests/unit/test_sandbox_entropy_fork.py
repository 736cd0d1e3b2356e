"""The run keys of ``sandbox/_entropy.py`` after ``fork``: parent and child never share one."""

from __future__ import annotations

import os
import warnings

import pytest

from sandbox import _entropy
from sandbox._prelude import KEY_BYTES

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _child_keys(n: int) -> list[bytes]:
    """Fork; the child sends its next ``n`` keys through a pipe and exits."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # a multi-threaded parent warns on 3.12+; the child execs
        warnings.simplefilter("ignore", DeprecationWarning)  # nothing but key() and write
        pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, just the keys
        code = 1
        try:
            os.close(read_end)
            data = b"".join(_entropy.key() for _ in range(n))
            os.write(write_end, data)  # n * 32 bytes: fits in a pipe buffer
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(data) == n * KEY_BYTES
    return [data[i : i + KEY_BYTES] for i in range(0, len(data), KEY_BYTES)]


def test_a_forked_child_draws_keys_its_parent_does_not() -> None:
    first = _entropy.key()  # the parent has a batch read, with keys left in it
    child = _child_keys(4)
    parent = [_entropy.key() for _ in range(4)]
    assert len({first, *child, *parent}) == 9, "parent and child handed out the same key"
    assert first not in child


def test_keys_within_one_process_are_distinct() -> None:
    drawn = [_entropy.key() for _ in range(300)]  # more than one batch
    assert all(len(k) == KEY_BYTES for k in drawn)
    assert len(set(drawn)) == len(drawn)
