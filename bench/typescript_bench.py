"""TypeScript: what stripping types adds to a run, and the stripper candidates (issue 10).

``python -m bench typescript [--quick]``. In one process, in alternating rounds:

* ``js``: ``Sandbox.run`` of a ~1 KB snippet written as plain JavaScript;
* ``ts``: the same snippet in TypeScript, ``TypeScript.strip_types`` (SWC in wasm, a fresh
  instance per strip, strip-only mode) and then ``Sandbox.run`` of its output: the service's
  path without HTTP;
* ``ts-enum``: the snippet with an ``enum`` (transform mode: SWC reprints the code).

Printed: p50/p99 per execution and the TS - JS difference in ms (target: at most 1 ms for
the 1 KB snippet), plus the stripper alone. When ``npm`` is there, the rejected candidate
sucrase (pinned ``sucrase@3.35.1``) is timed on the same snippet in *native* QuickJS (the
``quickjs`` PyPI binding, no sandbox, no fuel): a lower bound for any stripper written in
JavaScript and run by the sandbox's QuickJS, which is ~2x slower with its limits on.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import quickjs

from sandbox import Limits, Sandbox
from sandbox._ts_result import HEAD, STRIP_ONLY, TAIL, TRANSFORM
from sandbox.runner import DEFAULT_CACHE_DIR
from sandbox.typescript import TypeScript

TS = """interface User { id: number; name: string; email?: string; tags: readonly string[] }
type Result<T, E = Error> = { ok: true; value: T } | { ok: false; error: E };
function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = obj[k];
  return out;
}
const users: User[] = [
  { id: 1, name: "Ada", tags: ["math"] },
  { id: 2, name: "Linus", email: "l@example.com", tags: [] },
];
function parse(input: string): Result<number> {
  const n = Number(input);
  return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, error: new Error("NaN") };
}
class Counter<T> {
  private counts = new Map<T, number>();
  add(item: T): this { this.counts.set(item, (this.counts.get(item) ?? 0) + 1); return this; }
  get size(): number { return this.counts.size; }
}
const c = new Counter<string>();
for (const u of users) c.add(u.name as string);
const cfg = { retries: 3, mode: "fast" } satisfies { retries: number; mode: string };
const r = parse("42");
return { picked: pick(users[1]!, ["id", "name"]), size: c.size, cfg, r: r.ok ? r.value : 0 };
"""
JS = """function pick(obj, keys) {
  const out = {};
  for (const k of keys) out[k] = obj[k];
  return out;
}
const users = [
  { id: 1, name: "Ada", tags: ["math"] },
  { id: 2, name: "Linus", email: "l@example.com", tags: [] },
];
function parse(input) {
  const n = Number(input);
  return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, error: new Error("NaN") };
}
class Counter {
  counts = new Map();
  add(item) { this.counts.set(item, (this.counts.get(item) ?? 0) + 1); return this; }
  get size() { return this.counts.size; }
}
const c = new Counter();
for (const u of users) c.add(u.name);
const cfg = { retries: 3, mode: "fast" };
const r = parse("42");
return { picked: pick(users[1], ["id", "name"]), size: c.size, cfg, r: r.ok ? r.value : 0 };
"""
TS_ENUM = 'enum Mode { Fast = "fast", Slow = "slow" }\n' + TS.replace('"fast" }', "Mode.Fast }")
LIMITS = Limits(timeout_ms=10_000, fuel=10**11)
SUCRASE = ("sucrase", "3.35.1", "sucrase-3.35.1.tgz")
SUCRASE_INTEGRITY = "sha512-" + (
    "DhuTmvZWux4H1UOnWMB3sk0sbaCVOoQZjv8u1rDoTV0HTdGem9hkAZtl4JZy8P2z4Bg0nT+YMeOFyVr4zcG5Tw=="
)


# A minimal CommonJS loader: relative requires only; sucrase's option checker is stubbed.
LOADER = """
var sucrase = (function () {
  const defs = {}, cache = {};
  /*DEFS*/
  const checker = {createCheckers: () => ({Options: {strictCheck() {}}})};
  const resolve = (base, rel) => {
    const parts = base.split("/");
    parts.pop();
    for (const p of rel.split("/")) {
      if (p === "..") parts.pop(); else if (p !== ".") parts.push(p);
    }
    const r = parts.join("/");
    return defs[r + ".js"] ? r + ".js" : r + "/index.js";
  };
  const load = (name) => {
    if (cache[name]) return cache[name].exports;
    const module = {exports: {}};
    cache[name] = module;
    defs[name](module, module.exports, (r) => r === "./Options-gen-types" ? {}
      : r[0] === "." ? load(resolve(name, r))
      : r === "ts-interface-checker" ? checker : {});
    return module.exports;
  };
  return load("index.js");
})();
"""


def _p(samples: list[int]) -> tuple[float, float]:
    xs = sorted(samples)
    return xs[len(xs) // 2] / 1e6, xs[min(len(xs) - 1, int(len(xs) * 0.99))] / 1e6


def _interleaved(fns: dict[str, Callable[[], object]], rounds: int, n: int) -> dict[str, list[int]]:
    samples: dict[str, list[int]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(max(n // 4, 3)):
            fn()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                for _ in range(n):
                    t0 = time.perf_counter_ns()
                    fn()
                    samples[name].append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return samples


def _end_to_end(sb: Sandbox, ts: TypeScript, code: str) -> Callable[[], object]:
    def run() -> object:
        stripped = ts.strip_types(code)
        return sb.run(stripped.code, limits=LIMITS)

    return run


def _sucrase(tmp: Path) -> Callable[[str], str] | None:
    """sucrase's TypeScript transform in native QuickJS (a tiny CommonJS loader), or None."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    name, version, tarball = SUCRASE
    try:
        subprocess.run(
            [npm, "pack", f"{name}@{version}", "--pack-destination", str(tmp), "--silent"],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=tmp,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    data = (tmp / tarball).read_bytes()
    if "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() != SUCRASE_INTEGRITY:
        return None
    modules: dict[str, str] = {}
    with tarfile.open(tmp / tarball) as archive:
        for member in archive.getmembers():
            path = member.name.removeprefix("package/dist/")
            skip = ("esm/", "cli.js", "register.js", "Options-gen-types.js")
            wanted = member.name.startswith("package/dist/") and path.endswith(".js")
            if wanted and not path.startswith(skip):
                file = archive.extractfile(member)
                modules[path] = file.read().decode() if file else ""
    defs = "\n".join(
        f"defs[{json.dumps(k)}] = function (module, exports, require) {{{v}\n}};"
        for k, v in modules.items()
    )
    loader = LOADER.replace("/*DEFS*/", defs)
    ctx = quickjs.Context()
    ctx.eval(loader)
    transform = ctx.eval(
        "(s) => sucrase.transform(s, {transforms: ['typescript'], disableESTransforms: true}).code"
    )

    def strip(code: str) -> str:
        return str(transform(code))

    return strip


def run(quick: bool = False) -> None:
    """Print the TS - JS cost and the candidates; see the module docstring."""
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp, Sandbox(DEFAULT_CACHE_DIR) as sb:
        ts = TypeScript(sb.compiled.engine, DEFAULT_CACHE_DIR, fetch=True)
        expected = json.loads(sb.run(JS, limits=LIMITS).result_json)
        for code, mode in ((TS, STRIP_ONLY), (TS_ENUM, TRANSFORM)):
            stripped = ts.strip_types(code)
            assert stripped.mode == mode, stripped
            assert json.loads(sb.run(stripped.code, limits=LIMITS).result_json) == expected
        print(f"snippet: {len(TS.encode())} B TypeScript, {len(JS.encode())} B JavaScript")
        rounds, n = (5, 40) if quick else (20, 100)
        samples = _interleaved(
            {
                "js": lambda: sb.run(JS, limits=LIMITS),
                "ts": _end_to_end(sb, ts, TS),
                "ts-enum": _end_to_end(sb, ts, TS_ENUM),
                "strip only": lambda: ts.strip_types(TS),
                "strip enum": lambda: ts.strip_types(TS_ENUM),
            },
            rounds,
            n,
        )
        js50, _ = _p(samples["js"])
        print(f"\n{'path':<34} {'p50 ms':>8} {'p99 ms':>8} {'- js p50':>9} {'x js':>6}")
        for name, label in (
            ("js", "Sandbox.run(JavaScript)"),
            ("ts", "strip (strip-only) + run"),
            ("ts-enum", "strip (transform, enum) + run"),
            ("strip only", "strip_types alone, strip-only"),
            ("strip enum", "strip_types alone, transform"),
        ):
            p50, p99 = _p(samples[name])
            print(f"{label:<34} {p50:>8.3f} {p99:>8.3f} {p50 - js50:>+9.3f} {p50 / js50:>6.2f}")
        fuel = ts.strip_types(TS).fuel, ts.strip_types(TS_ENUM).fuel
        print(f"stripper fuel (not billed): strip-only {fuel[0]:,}, transform {fuel[1]:,}")
        strip = _sucrase(Path(tmp))
        if strip is None:
            print("sucrase: npm or the registry is not available, skipped")
            return
        source = HEAD + TS + TAIL
        strip(source)
        times = []
        for _ in range(5 if quick else 20):
            t0 = time.perf_counter_ns()
            strip(source)
            times.append(time.perf_counter_ns() - t0)
        print(
            f"{'sucrase 3.35.1, native QuickJS':<34} {statistics.median(times) / 1e6:>8.3f}"
            "  (transform alone, no sandbox; rejected)"
        )
