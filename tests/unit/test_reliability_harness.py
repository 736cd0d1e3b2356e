"""The soak harness's own logic: percentiles, and that a wrong answer is flagged."""

from __future__ import annotations

import pytest

from reliability.common import percentile
from reliability.soak import KINDS, check, make_request


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


GOOD = {
    "trivial": lambda want: {"success": True, "result": want},
    "isolation": lambda want: {"result": want[0], "output": want[1]},
    "throw": lambda want: {"error": {"type": want[0], "message": want[1]}},
    "console": lambda tag: {
        "result": 200,
        "output": [f"line {i} {tag}" for i in range(200)],
    },
    "cpu_timeout": lambda _: {"error": {"type": "TimeoutError"}},
    "memory_bomb": lambda _: {"error": {"type": "MemoryLimitError"}},
}


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_check_accepts_the_right_answer_only(kind: str) -> None:
    _, want = make_request(kind, "soak-a", 3)
    assert check(kind, want, GOOD[kind](want)) is None
    assert check(kind, want, {"success": True, "result": None, "output": []}) is not None


def test_isolation_flags_another_clients_global() -> None:
    _, (result, output) = make_request("isolation", "soak-a", 1)
    leaked = {**result, "seen": "soak-b:2:00000000"}
    assert check("isolation", (result, output), {"result": leaked, "output": output})
    other = {**result, "others": ["own_soak-b"]}
    assert check("isolation", (result, output), {"result": other, "output": output})
    assert check("isolation", (result, output), {"result": result, "output": ["tag soak-b:2"]})
