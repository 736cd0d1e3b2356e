"""Where a run executes: inline on the event loop with a small fuel slice, or a sandbox thread.

A run first goes inline with the ``inline_fuel`` slice and, if the slice was not enough,
again from scratch in a sandbox thread with the full limits. The event loop is therefore
blocked by wasm for at most ``inline_fuel`` (about 0.4 ms by default); everything longer runs
in the bounded thread pool (:class:`~service.admission.Admission`). The second run gets the
first run's ``Math.random`` seed, and runs are deterministic, so the client sees (and is
billed for) exactly what one run in a thread would have given; the discarded slice is not
billed. ``CODEXEC_INLINE_FUEL=0`` sends every run to a thread. A streamed run always goes to
a thread (its lines must not be sent twice).

Code whose slice ran out goes straight to a thread the next times it comes (clients run the
same code again with another ``context``), until a run of it needs no more than the slice
again; the process remembers up to ``_LONG_KEPT`` such codes by hash (a collision only costs
one run its inline try).
"""

from __future__ import annotations

from dataclasses import replace

from sandbox import Limits, Result, Sandbox
from service.admission import Admission
from service.config import Settings
from service.metrics import Metrics
from service.streaming import OutputStream

__all__ = ["Dispatcher"]

_SLICES_KEPT = 1024
_LONG_KEPT = 4096


class Dispatcher:
    """Runs code in the sandbox, inline when it is short, else in a sandbox thread."""

    def __init__(
        self, settings: Settings, sandbox: Sandbox, admission: Admission, metrics: Metrics
    ) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._admission = admission
        self._metrics = metrics
        self._sliced: dict[Limits, Limits] = {}  # limits -> the same with the inline slice
        self._long: set[int] = set()  # hashes of code whose last slice was not enough
        self._inline_done = metrics.inline_runs.labels("done")
        self._inline_moved = metrics.inline_runs.labels("moved")
        self._inline_skipped = metrics.inline_runs.labels("skipped")

    async def run(
        self,
        client_id: str,
        code: str,
        context_json: str,
        limits: Limits,
        stream: OutputStream | None = None,
        share: int | None = None,
    ) -> Result:
        """Run the code (``stream``: hand its console lines out as they come; ``share``: the
        plan's ``max_concurrency`` for admission to a thread)."""
        sandbox = self._sandbox
        if stream is not None:
            out = stream

            def streamed() -> Result:
                out.started()
                return sandbox.run(code, context_json, limits, on_output=out.line, stop=out.stop)

            return await self._admission.run(client_id, streamed, share=share)

        async def in_thread(seed: int | None = None) -> Result:
            return await self._admission.run(
                client_id,
                lambda: sandbox.run(code, context_json, limits, random_seed=seed),
                share=share,
            )

        slice_fuel = self._settings.inline_fuel
        if slice_fuel <= 0:
            return await in_thread()
        long = self._long
        if long and hash(code) in long:  # (str caches its hash: computed once per request)
            self._inline_skipped.inc()
            result = await in_thread()
            if result.fuel <= slice_fuel:
                long.discard(hash(code))
            return result
        first = sandbox.run(code, context_json, self._inline(limits, slice_fuel))
        error = first.error
        if error is None or error.type != "FuelExhaustedError" or limits.fuel <= slice_fuel:
            self._inline_done.inc()
            return first
        self._inline_moved.inc()
        if len(long) >= _LONG_KEPT:
            long.clear()
        long.add(hash(code))
        return await in_thread(first.random_seed)

    def _inline(self, limits: Limits, slice_fuel: int) -> Limits:
        """``limits`` with the inline fuel slice, one object per ``limits`` (the sandbox
        derives its per-run settings once per Limits object)."""
        sliced = self._sliced.get(limits)
        if sliced is None:
            if len(self._sliced) >= _SLICES_KEPT:
                self._sliced.clear()
            sliced = self._sliced[limits] = replace(limits, fuel=min(limits.fuel, slice_fuel))
        return sliced
