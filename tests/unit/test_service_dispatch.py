"""Where runs execute (``service.dispatch``): inline slice, sandbox thread, and code whose slice
ran out before (real sandbox, real threads)."""

from __future__ import annotations

import asyncio

from sandbox import Limits, Result, Sandbox
from service.admission import Admission
from service.config import Settings
from service.dispatch import Dispatcher
from service.metrics import Metrics

SLICE = 2_000_000
# the sum of 0..n-1: a few thousand iterations fit in the slice, 100,000 do not
CODE = "let s = 0; for (let i = 0; i < context.n; i++) s += i; return s;"


def _counts(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["result"]: s.value
        for family in metrics.inline_runs.collect()
        for s in family.samples
        if s.name.endswith("_total") and s.value
    }


def test_code_whose_slice_ran_out_goes_straight_to_a_thread_until_it_is_short_again(
    sb: Sandbox,
) -> None:
    metrics = Metrics()
    admission = Admission(2, 4, metrics)
    dispatcher = Dispatcher(Settings(inline_fuel=SLICE), sb, admission, metrics)
    limits = Limits(timeout_ms=5000, fuel=10**10)

    def run(n: int) -> Result:
        return asyncio.run(dispatcher.run("c", CODE, f'{{"n": {n}}}', limits))

    try:
        steps = []
        for n in (100_000, 100_000, 100, 100):
            result = run(n)
            assert result.ok
            assert result.result_json == str(n * (n - 1) // 2)
            # the same run as in the sandbox directly: a skipped slice changes nothing billed
            assert result.fuel == sb.run(CODE, f'{{"n": {n}}}', limits).fuel
            steps.append(_counts(metrics))
    finally:
        admission.close()
    moved, skipped, short, inline = steps
    assert moved == {"moved": 1}  # the slice ran out: re-run in a thread, and remembered
    assert skipped == {"moved": 1, "skipped": 1}  # straight to a thread, no slice
    assert short == {"moved": 1, "skipped": 2}  # still remembered; it fit the slice: forgotten
    assert inline == {"moved": 1, "skipped": 2, "done": 1}  # inline again
