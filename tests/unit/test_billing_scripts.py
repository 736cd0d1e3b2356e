"""``billing.scripts.within``: the bound stores put around their own round trips."""

from __future__ import annotations

import asyncio

import pytest

from billing.scripts import within


async def test_within_bounds_only_when_asked() -> None:
    """No bound with None, TimeoutError past the bound."""
    assert await within(None, asyncio.sleep(0.01, result="slow")) == "slow"
    assert await within(1.0, asyncio.sleep(0, result="fast")) == "fast"
    with pytest.raises(TimeoutError):
        await within(0.01, asyncio.sleep(1))
