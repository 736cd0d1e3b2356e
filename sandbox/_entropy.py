"""Fresh random keys for the crypto of each run, read from ``os.urandom`` in batches.

Every run gets a new 32-byte key in the prelude's ``caps`` buffer (part of the one copy the
host already makes per run, so ~0.1 us). The glue (``sandbox/js/random.js``) expands it with
ChaCha20 (the RFC 8439 block function, nonce 0, 64-bit counter: the construction behind
OpenBSD's ``arc4random`` and Linux's ``getrandom``), only when the code asks for random
bytes. A key from the kernel's CSPRNG makes the stream unpredictable; a new key per run
means no two runs (nor the snapshot, whose key slots are zero: the glue refuses to run on
them) share any output; the run's memory is discarded after it, so no state carries over.

One ``os.urandom(4096)`` call serves 128 runs; a forked child drops what its parent had read
so two processes never hand out the same key. Keys are never derived from a run's
``random_seed`` (which only seeds ``Math.random``, and may be chosen by the caller).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from sandbox._prelude import KEY_BYTES

_BATCH = 4096
_FORMAT = f"{KEY_BYTES}s"
_keys: Iterator[tuple[bytes]] = iter(())


def key() -> bytes:
    """``KEY_BYTES`` random bytes no other call (in any process) returns."""
    global _keys
    try:
        return next(_keys)[0]
    except StopIteration:
        _keys = struct.iter_unpack(_FORMAT, os.urandom(_BATCH))
        return next(_keys)[0]


def _forget() -> None:
    global _keys
    _keys = iter(())


os.register_at_fork(after_in_child=_forget)
