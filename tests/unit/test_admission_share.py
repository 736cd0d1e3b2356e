"""The per-client share of a process's execution places and sandbox threads (real threads)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import pytest

from service.admission import Admission
from service.errors import RateLimited, Unavailable
from service.metrics import Metrics


def blocker(started: list[str], name: str, gate: threading.Event) -> Callable[[], str]:
    def fn() -> str:
        started.append(name)
        assert gate.wait(10), "never released"  # hang guard
        return name

    return fn


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):  # hang guard: 5 s
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never met")


def test_default_shares_are_rounded_down_and_at_least_one() -> None:
    metrics = Metrics()
    three = Admission(3, 64, metrics, max_requests=32)
    assert (three.request_share, three.run_share) == (16, 1)
    three.close()
    one = Admission(1, 0, metrics, client_share=0.5, max_requests=1)
    assert (one.request_share, one.run_share) == (1, 1)
    one.close()
    everything = Admission(4, 8, metrics, client_share=1, max_requests=32)
    assert (everything.request_share, everything.run_share) == (32, 4)
    everything.close()


async def test_a_flood_holds_its_share_of_threads_and_others_run_at_once() -> None:
    admission = Admission(3, 64, Metrics(), max_requests=32)
    gate, started = threading.Event(), list[str]()
    try:
        flood = [
            asyncio.create_task(admission.run("flood", blocker(started, f"f{i}", gate)))
            for i in range(5)
        ]
        await until(lambda: len(started) == 1)
        await asyncio.sleep(0.1)
        assert started == ["f0"]  # one thread (3 x 0.5, rounded down); the rest wait
        steady = await asyncio.wait_for(admission.run("steady", lambda: "s"), 5)
        assert steady == "s"  # while the flood still holds its thread and four wait
        gate.set()
        assert sorted(await asyncio.gather(*flood)) == [f"f{i}" for i in range(5)]
        assert started == [f"f{i}" for i in range(5)]  # in order, one at a time
    finally:
        gate.set()
        admission.close()


async def test_a_plans_max_concurrency_replaces_the_share() -> None:
    admission = Admission(3, 64, Metrics(), max_requests=32)
    gate, started = threading.Event(), list[str]()
    try:
        two = [
            asyncio.create_task(admission.run("big", blocker(started, f"b{i}", gate), share=2))
            for i in range(2)
        ]
        await until(lambda: len(started) == 2)  # two threads at once
        with pytest.raises(RateLimited):  # a third in flight is over its bound: 429
            await admission.run("big", lambda: "x", share=2)
        gate.set()
        await asyncio.gather(*two)
    finally:
        gate.set()
        admission.close()


def test_requests_over_the_clients_share_are_refused_at_the_door() -> None:
    admission = Admission(2, 4, Metrics(), max_requests=4)  # request share 2
    try:
        with contextlib.ExitStack() as held:
            for _ in range(2):
                held.enter_context(admission.request("a"))
            with pytest.raises(RateLimited):
                held.enter_context(admission.request("a"))
            for _ in range(2):  # the other half
                held.enter_context(admission.request("b"))
            with pytest.raises(Unavailable):  # the process is full: 503
                held.enter_context(admission.request("c"))
        with contextlib.ExitStack() as held:
            held.enter_context(admission.request("a", share=1))
            with pytest.raises(RateLimited):
                held.enter_context(admission.request("a", share=1))
    finally:
        admission.close()


async def test_a_cancelled_waiting_run_gives_its_place_back() -> None:
    admission = Admission(1, 4, Metrics(), max_requests=8)
    gate, started = threading.Event(), list[str]()
    try:
        first = asyncio.create_task(admission.run("a", blocker(started, "a0", gate)))
        await until(lambda: started == ["a0"])
        waiting = asyncio.create_task(admission.run("b", lambda: "never"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()
        assert await first == "a0"
        assert await asyncio.wait_for(admission.run("b", lambda: "b1"), 5) == "b1"
    finally:
        gate.set()
        admission.close()
