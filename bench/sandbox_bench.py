"""Sandbox per-execution cost against a fresh wasm instance and native QuickJS (issue 2).

``python -m bench sandbox [--quick]``. Three scripts, each measured in the same process:

* ``Sandbox.run``: the full public path (in-place snapshot reset, all limits on);
* a fresh wasm instance per execution with full init (Store, instantiate, ``_initialize``,
  ``JS_NewRuntime``, ``JS_NewContext``, prelude of the plain snapshot, the one these scripts
  run in), then the same run;
* native ``quickjs`` (PyPI binding, no sandbox, no limits) with a new ``Context`` per run,
  the code wrapped in a plain (non-async) function.

The systems are measured in alternating rounds (a block of each per round), so load from
other processes hits all of them alike; p50/p99 are over all samples, and the per-round
sandbox/native ratios are printed as p10/p50/p90. The JSON script builds its ~100 KB string
inside the code (same code for every system), so its time includes building the string.
Also prints fuel per CPU-ms (the calibration the service and billing use), and the modules
figure (``modules_figure``): the contract example with every module allowed against none
(the same snapshot: must be ~1.0), in the full snapshot against the plain one (what the
plain snapshot saves plain code; see ``sandbox.modules``), and one that uses ``path``.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import quickjs

from sandbox import Limits, Sandbox
from sandbox.execution import Instance
from sandbox.snapshot import build

CONTRACT = "const x = 10; const y = 20; return x + y;"
CPU = "let s=0; for(let i=0;i<1e6;i++) s+=i; return s;"
JSON_100K = (
    "const s = '[' + Array.from({length: 1150}, (_, i) => JSON.stringify("
    "{id: i, name: 'item-' + i, tags: ['alpha', 'beta'], value: i * 1.5, ok: i % 2 === 0})"
    ").join(',') + ']';"
    " return [s.length, JSON.parse(s).length];"
)
FIB = "function fib(n){return n<2?n:fib(n-1)+fib(n-2)} return fib(24);"
STRINGS = "let a=[]; for(let i=0;i<20000;i++) a.push('k'+i); return a.join(',').length;"
LIMITS = Limits(timeout_ms=10_000, fuel=10**12)


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    xs = sorted(samples_ns)
    return xs[len(xs) // 2] / 1e6, xs[min(len(xs) - 1, int(len(xs) * 0.99))] / 1e6


def _interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, per_round: dict[str, int]
) -> tuple[dict[str, list[int]], list[float]]:
    """Samples per system, taken in alternating blocks so machine noise hits all of them.

    Each round runs ``per_round[name]`` executions of every system in turn; the second
    value is, per round, the sandbox's median over native's median (the ratio's spread).
    """
    samples: dict[str, list[int]] = {name: [] for name in fns}
    ratios: list[float] = []
    for name, fn in fns.items():  # warm-up
        for _ in range(max(per_round[name] // 4, 1)):
            fn()
    gc.disable()
    try:
        for _ in range(rounds):
            medians = {}
            for name, fn in fns.items():
                block = []
                for _ in range(per_round[name]):
                    t0 = time.perf_counter_ns()
                    fn()
                    block.append(time.perf_counter_ns() - t0)
                samples[name] += block
                medians[name] = statistics.median(block)
            ratios.append(medians["ours"] / medians["native"])
    finally:
        gc.enable()
    return samples, ratios


def _native(code: str) -> Callable[[], object]:
    src = "(function(){" + code + "\n})()"

    def run() -> object:
        return quickjs.Context().eval(src)

    return run


def _fresh(sb: Sandbox, code: str) -> Callable[[], object]:
    data = code.encode()

    def run() -> object:
        template, guest = build(sb.compiled, True, full=False)
        instance = Instance(sb.compiled, template, True, guest)
        try:
            return instance.run(data, "{}", LIMITS, 1, 10)[0]
        finally:
            instance.close()

    return run


def _check(sb: Sandbox) -> None:
    for code in (CONTRACT, CPU):
        res = sb.run(code, limits=LIMITS)
        assert res.ok, res.error
        assert json.loads(res.result_json) == _native(code)()
    size = sb.run(JSON_100K, limits=LIMITS).result_json
    print(f"JSON script: [string length, parsed items] = {size}")


def _calibrate(sb: Sandbox, quick: bool) -> None:
    print("\ncalibration: fuel per CPU-ms (median of runs; CPU = thread CPU time of the run)")
    print(f"{'script':<10} {'fuel':>14} {'cpu ms':>9} {'fuel/cpu-ms':>12}")
    for name, code in (
        ("contract", CONTRACT),
        ("cpu-loop", CPU),
        ("json-100k", JSON_100K),
        ("fib(24)", FIB),
        ("strings", STRINGS),
    ):
        runs = [sb.run(code, limits=LIMITS) for _ in range(5 if quick else 15)]
        fuel = runs[0].fuel
        assert all(r.fuel == fuel for r in runs), "fuel is not deterministic"
        cpu = statistics.median(r.cpu_ms for r in runs)
        print(f"{name:<10} {fuel:>14,} {cpu:>9.3f} {fuel / cpu:>12,.0f}")


def _blocks(fns: dict[str, Callable[[], object]], rounds: int, per_round: int) -> dict[str, float]:
    """Median ms per system over rounds that alternate the systems (as ``_interleaved``)."""
    samples: dict[str, list[int]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(per_round):
            fn()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                for _ in range(per_round):
                    t0 = time.perf_counter_ns()
                    fn()
                    samples[name].append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return {name: statistics.median(xs) / 1e6 for name, xs in samples.items()}


def modules_figure(sb: Sandbox, quick: bool = False) -> dict[str, float]:
    """The contract example: modules allowed vs not, full snapshot vs plain; ms and ratios."""
    all_modules = Limits(timeout_ms=10_000, fuel=10**12, modules=frozenset({"*"}))
    full = CONTRACT + " /* require */"  # the word sends it to the full snapshot
    uses_path = "return require('path').join('a', 'b');"
    for code, lim in ((CONTRACT, all_modules), (full, LIMITS), (uses_path, all_modules)):
        assert sb.run(code, limits=lim).ok
    fns: dict[str, Callable[[], object]] = {
        "no modules": lambda: sb.run(CONTRACT, limits=LIMITS),
        "all modules": lambda: sb.run(CONTRACT, limits=all_modules),
        "full snapshot": lambda: sb.run(full, limits=LIMITS),
        "require('path')": lambda: sb.run(uses_path, limits=all_modules),
    }
    ms = _blocks(fns, 10 if quick else 40, 100 if quick else 250)
    print(f"\nmodules: contract example, p50 ms (rounds alternate; load {os.getloadavg()[0]:.2f})")
    for name, value in ms.items():
        print(f"  {name:<16} {value:.4f}")
    ratios = {
        "all/none": ms["all modules"] / ms["no modules"],
        "full/plain": ms["full snapshot"] / ms["no modules"],
    }
    print(
        f"  modules allowed / none: {ratios['all/none']:.3f}x (preloaded: ~1.0);"
        f" full snapshot / plain: {ratios['full/plain']:.3f}x"
    )
    return ms | ratios


def run(quick: bool = False) -> None:
    """Print p50/p99 per execution and the ratios; see the module docstring."""
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp, Sandbox(Path(tmp)) as sb:
        _check(sb)
        scale = 10 if quick else 1
        # (label, code, rounds, runs per round: ours, fresh, native)
        cases = [
            ("contract example", CONTRACT, 40 // min(scale, 4), (500 // scale, 50 // scale, 10)),
            ("cpu loop 1e6", CPU, 60 // min(scale, 6), (1, 1, 1)),
            ("JSON.parse 100KB", JSON_100K, 30 // min(scale, 3), (10, 3, 10)),
        ]
        print(
            f"\n{'script':<18} {'system':<26} {'p50 ms':>9} {'p99 ms':>9} {'x native':>9}"
            "   (rounds alternate the systems; ratio spread = per-round ratio p10/p50/p90)"
        )
        for label, code, rounds, (n_ours, n_fresh, n_native) in cases:
            fns: dict[str, Callable[[], object]] = {
                "native": _native(code),
                "ours": partial(sb.run, code, limits=LIMITS),
                "fresh": _fresh(sb, code),
            }
            per_round = {"native": n_native, "ours": n_ours, "fresh": n_fresh}
            samples, ratios = _interleaved(fns, rounds, per_round)
            native = _percentiles(samples["native"])
            ours = _percentiles(samples["ours"])
            fresh = _percentiles(samples["fresh"])
            for system, (p50, p99) in (
                ("Sandbox.run (snapshot)", ours),
                ("fresh instance+full init", fresh),
                ("native quickjs, new ctx", native),
            ):
                ratio = p50 / native[0]
                print(f"{label:<18} {system:<26} {p50:>9.4f} {p99:>9.4f} {ratio:>8.2f}x")
            q = statistics.quantiles(ratios, n=10) if len(ratios) > 1 else ratios * 9
            spread = f"{q[0]:.2f}/{statistics.median(ratios):.2f}/{q[-1]:.2f}"
            print(
                f"{'':<18} snapshot vs fresh instance: {fresh[0] / ours[0]:.1f}x faster;"
                f" sandbox/native per round: {spread}"
            )
        _calibrate(sb, quick)
        modules_figure(sb, quick)
        print(f"\nstats: {sb.stats}, fast path: {sb.info.fast_path}")
