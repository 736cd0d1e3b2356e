"""``billing.scripts.within`` and ``until``: the bounds stores put around their own round trips."""

from __future__ import annotations

import asyncio

import pytest

from billing.scripts import until, within


async def test_within_bounds_only_when_asked() -> None:
    """No bound with None, TimeoutError past the bound."""
    assert await within(None, asyncio.sleep(0.01, result="slow")) == "slow"
    assert await within(1.0, asyncio.sleep(0, result="fast")) == "fast"
    with pytest.raises(TimeoutError):
        await within(0.01, asyncio.sleep(1))


async def _ignores_cancellation(late: float) -> str:
    """A call that, like ``asyncio.wait_for`` on Python 3.11 at the wrong moment, drops the
    cancellation it gets and goes on."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(late)
    return "late"


async def test_until_gives_up_at_the_deadline_even_if_the_call_ignores_cancellation() -> None:
    loop = asyncio.get_running_loop()
    # what a plain asyncio.timeout does with such a call: waits for it, returns its answer
    started = loop.time()
    async with asyncio.timeout(0.05):
        assert await _ignores_cancellation(0.3) == "late"
    assert loop.time() - started >= 0.3
    started = loop.time()
    with pytest.raises(TimeoutError):
        await until(loop.time() + 0.05, _ignores_cancellation(0.3))
    assert loop.time() - started < 0.25
    with pytest.raises(TimeoutError):
        await within(0.05, _ignores_cancellation(0.3))
    assert await until(None, asyncio.sleep(0, result="now")) == "now"
    assert await until(loop.time() + 1, asyncio.sleep(0, result="soon")) == "soon"


async def test_until_cancelled_from_outside_cancels_the_call() -> None:
    call_done = asyncio.Event()

    async def call() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            call_done.set()

    waiter = asyncio.ensure_future(until(asyncio.get_running_loop().time() + 5, call()))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(call_done.wait(), 1)
