"""The instance pool's bookkeeping, and its builder thread that replaces discarded instances.

The pool only calls ``factory()`` and ``close()`` on what it holds, so these tests give it
plain objects; the sandbox tests run real instances through the same pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from sandbox.pool import Pool


class Fake:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _factory(gate: threading.Event | None = None) -> tuple[Callable[[], Any], list[Fake]]:
    built: list[Fake] = []

    def factory() -> Fake:
        if gate is not None:
            assert gate.wait(10), "never released"  # hang guard
        built.append(Fake(len(built)))
        return built[-1]

    return factory, built


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.005)


def test_a_discarded_instance_is_replaced_by_the_builder_not_by_the_caller() -> None:
    gate = threading.Event()
    factory, built = _factory(gate)
    first = Fake(-1)
    pool: Any = Pool(cast(Any, factory), cast(Any, first))
    taken = pool.acquire()
    assert taken is first
    pool.release(taken, discard=True)  # returns although the factory is blocked
    assert first.closed
    assert pool.stats.rebuilds == 1
    assert built == []
    gate.set()
    _until(lambda: len(pool._idle) == 1)
    assert pool.stats.instances == 1
    assert pool.acquire() is built[0]  # the replacement, from the idle stack
    pool.release(built[0], discard=False)
    pool.close()
    assert built[0].closed
    assert pool.stats.instances == 0


def test_acquire_builds_itself_while_the_replacement_is_not_ready() -> None:
    gate = threading.Event()
    slow, _ = _factory(gate)
    calls: list[str] = []

    def factory() -> Any:
        if threading.current_thread().name == "codexec-rebuild":
            calls.append("builder")
            return slow()
        calls.append("caller")
        return Fake(99)

    pool: Any = Pool(factory, cast(Any, Fake(-1)))
    pool.release(pool.acquire(), discard=True)
    _until(lambda: calls == ["builder"])  # the builder is busy with the replacement
    mine = pool.acquire()  # nothing idle yet: built here instead of waiting
    assert cast(Fake, mine).n == 99
    assert calls == ["builder", "caller"]
    gate.set()
    _until(lambda: len(pool._idle) == 1)  # the builder's replacement
    assert pool.stats.instances == 2
    pool.release(mine, discard=False)
    pool.close()
    assert pool.stats.instances == 0


def test_a_failing_rebuild_is_logged_and_counted_out(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise RuntimeError("engine gone")

    pool: Any = Pool(broken, cast(Any, Fake(-1)))
    pool.release(pool.acquire(), discard=True)
    _until(lambda: "cannot rebuild" in caplog.text)
    _until(lambda: pool.stats.instances == 0)
    with pytest.raises(RuntimeError, match="engine gone"):
        pool.acquire()  # nothing idle: the caller's own build raises
    pool.close()


def test_close_stops_the_builder_and_closes_what_it_finishes() -> None:
    gate = threading.Event()
    factory, built = _factory(gate)
    pool: Any = Pool(cast(Any, factory), cast(Any, Fake(-1)))
    pool.release(pool.acquire(), discard=True)
    _until(lambda: pool.stats.instances == 1)  # counted while it is being built
    closer = threading.Thread(target=pool.close)
    closer.start()
    gate.set()
    closer.join(5)
    assert not closer.is_alive()
    assert [f.closed for f in built] == [True]
    assert pool.stats.instances == 0
