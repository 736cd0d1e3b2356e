"""TypeScript: types stripped in a wasm sandbox of their own, then run as JavaScript.

The stripper is SWC's TypeScript transform compiled to wasm (``_ts_package``: the pinned
``@swc/wasm-typescript`` npm package, fetched at setup time, never committed), instantiated
fresh for every strip in a store with its own fuel, memory and epoch deadline, on the
``Sandbox``'s engine (so the sandbox's ticker drives the deadline). The code is input only:
the stripper parses and prints it, nothing of it runs there.

The code is the body of an async function, so it is stripped as
``async function __(){<code>\\n}`` and unwrapped after. First in SWC's ``strip-only``
mode, which replaces types by blanks: every character keeps its line and column, so the
lines and columns of runtime errors are those of the TypeScript source. Syntax that needs
code generated (``enum``, ``namespace``, parameter properties, ``<T>x`` assertions) is
stripped again in ``transform`` mode, which reprints the code: it runs the same, and
``Stripped.map_positions`` maps positions in the printed code back to the source (SWC's
source map). Type errors are not checked. A syntax error comes back
as a ``SyntaxError`` with the line and column of the TypeScript source. Limits hit while
stripping (deep nesting, huge input) end as a ``TranspileLimitError``, never a host crash.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import logging
import re
import struct
import sys
import time
from pathlib import Path
from typing import Any

import wasmtime

from sandbox import _engine, _ts_bindgen, _ts_package
from sandbox._ts_loader import TypeScriptLoader
from sandbox._ts_package import StripperUnavailable
from sandbox._ts_result import (
    FAILED,
    HEAD,
    STRIP_ONLY,
    TAIL,
    TRANSFORM,
    StripLimits,
    Stripped,
    _thrown_error,
    _trap_error,
    _unwrap,
)
from sandbox.result import ExecError

__all__ = ["StripLimits", "Stripped", "StripperUnavailable", "TypeScript", "TypeScriptLoader"]

log = logging.getLogger(__name__)

_TRANSFORM_OPTIONS = {"mode": TRANSFORM, "sourceMap": True}
# Declarations strip-only mode always refuses: code with one goes to transform mode at once
# (a false match, e.g. in a string, only costs the source positions, never correctness).
_NEEDS_TRANSFORM = re.compile(r"(?:^|[;{}\s])(?:const\s+)?(?:enum|namespace)\s+[A-Za-z_$]")
_cpu_ns, _perf_ns = time.thread_time_ns, time.perf_counter_ns


def _cache_file(cache_dir: Path) -> Path:
    version = importlib.metadata.version("wasmtime")
    key = f"{version}|{_ts_package.WASM_SHA256}|{_engine.CONFIG!r}"
    return cache_dir / f"swc-{hashlib.sha256(key.encode()).hexdigest()[:24]}.cwasm"


class TypeScript:
    """Strips types from TypeScript function bodies; ``strip_types`` is thread-safe.

    ``package_dirs`` are searched for the pinned tarball after ``cache_dir``; with
    ``fetch`` it is fetched into ``cache_dir`` (within ``fetch_timeout_s``) when none has
    it. Raises ``StripperUnavailable`` when the package cannot be had or does not match its
    pins, or the stripper fails its self-test. Compiling it takes ~3 s once per cache
    directory (``swc-<key>.cwasm``); loading the compiled module ~50 ms.
    """

    def __init__(
        self,
        engine: wasmtime.Engine,
        cache_dir: Path,
        *,
        tick_ms: int = 10,
        package_dirs: tuple[Path, ...] = (),
        fetch: bool = False,
        fetch_timeout_s: float = _ts_package.FETCH_TIMEOUT_S,
    ) -> None:
        self._tick_ms = tick_ms
        dirs = [cache_dir, *package_dirs]
        tarball = _ts_package.find_tarball(dirs)
        if tarball is None:
            if not fetch:
                raise StripperUnavailable(
                    f"{_ts_package.TARBALL} is not in {', '.join(map(str, dirs))}; "
                    "run `python -m sandbox.typescript fetch`"
                )
            tarball = _ts_package.fetch(cache_dir, fetch_timeout_s)
        wasm = _ts_package.read_wasm(tarball)
        cache_file = _cache_file(cache_dir)
        module = _engine._load_cached(engine, cache_file)
        if module is None:
            try:
                module = wasmtime.Module(engine, wasm)
            except wasmtime.WasmtimeError as exc:
                raise StripperUnavailable(f"cannot compile the type stripper: {exc}") from exc
            _engine._store(module, cache_dir, cache_file)
        linker = wasmtime.Linker(engine)
        _ts_bindgen.define_imports(linker, module)
        self._engine = engine
        self._pre = linker.instantiate_pre(module)
        self.tarball = tarball
        probe = self.strip_types("const x: number = 1; return x as number;")
        if probe.error is not None or probe.code != "const x         = 1; return x          ;":
            raise StripperUnavailable(f"type stripper self-test failed: {probe}")

    def _call(
        self, source: str, options: object, lim: StripLimits
    ) -> tuple[Any, bool, ExecError | None, int]:
        """One ``transformSync`` in a fresh instance: (value, whether it was thrown, the
        error if the call itself failed, fuel used)."""
        store = wasmtime.Store(self._engine)
        store.set_fuel(lim.fuel)
        store.set_epoch_deadline(-(-lim.timeout_ms // self._tick_ms) + 1)
        store.set_limits(memory_size=lim.memory_bytes)
        try:
            exports = self._pre.instantiate(store).exports(store)
            memory, malloc = exports["memory"], exports["__wbindgen_export_2"]
            move_sp, transform = (
                exports["__wbindgen_add_to_stack_pointer"],
                exports["transformSync"],
            )
            if not isinstance(memory, wasmtime.Memory):
                raise StripperUnavailable("the type stripper exports no memory")
            if not (isinstance(malloc, wasmtime.Func) and isinstance(move_sp, wasmtime.Func)):
                raise StripperUnavailable("the type stripper lacks its allocator exports")
            if not isinstance(transform, wasmtime.Func):
                raise StripperUnavailable("the type stripper exports no transformSync")
            # the engine's memory never moves (``_engine.CONFIG``): the base stays valid
            base = ctypes.addressof(memory.data_ptr(store).contents)
            heap = _ts_bindgen.Heap(base, lambda: memory.data_len(store), malloc)
            _ts_bindgen.enter(heap)
            try:
                ret = move_sp(store, -16) & 0xFFFFFFFF
                undefined = options is _ts_bindgen.UNDEFINED
                opts = _ts_bindgen.UNDEFINED_INDEX if undefined else heap.add(options)
                transform(store, ret, heap.add(source), opts)
                ok, thrown, failed = struct.unpack("<iii", heap.read(ret, 12))
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                return None, False, _trap_error(exc), lim.fuel - store.get_fuel()
            except (_ts_bindgen.Thrown, _ts_bindgen.Unsupported) as exc:
                error = ExecError(FAILED, f"the type stripper failed: {exc}", "")
                return None, False, error, lim.fuel - store.get_fuel()
            except Exception:  # a fault of the glue: never an HTTP 500 for the code's sake
                log.exception("type stripper glue failed")
                error = ExecError(FAILED, "the type stripper failed", "")
                return None, False, error, lim.fuel - store.get_fuel()
            finally:
                _ts_bindgen.enter(None)
            value = heap.take(thrown if failed else ok)
            return value, bool(failed), None, lim.fuel - store.get_fuel()
        finally:
            store.close()

    def strip_types(self, code: str, limits: StripLimits | None = None) -> Stripped:
        """The JavaScript for ``code`` (a TypeScript async-function body), or its error."""
        lim = limits or StripLimits()
        wall0, cpu0 = _perf_ns(), _cpu_ns()
        fuel, mode = 0, STRIP_ONLY
        source = HEAD + code + TAIL
        error: ExecError | None = None
        body = ""
        source_map: str | None = None
        modes = ((STRIP_ONLY, _ts_bindgen.UNDEFINED), (TRANSFORM, _TRANSFORM_OPTIONS))
        declares = ("enum" in code or "namespace" in code) and _NEEDS_TRANSFORM.search(code)
        for mode, options in modes[1:] if declares else modes:
            value, thrown, error, used = self._call(source, options, lim)
            fuel += used
            if error is not None:
                break
            unsupported = isinstance(value, dict) and value.get("code") == "UnsupportedSyntax"
            if thrown and unsupported and mode == STRIP_ONLY:
                continue
            if thrown:
                error = _thrown_error(value, code)
                break
            text = value.get("code") if isinstance(value, dict) else None
            unwrapped = _unwrap(text, mode) if isinstance(text, str) else None
            if unwrapped is None:
                error = ExecError(FAILED, "the type stripper returned no function body", "")
            else:
                body = unwrapped
                mapped = value.get("map") if mode == TRANSFORM else None
                source_map = mapped if isinstance(mapped, str) else None
            break
        wall, cpu = (_perf_ns() - wall0) / 1e6, (_cpu_ns() - cpu0) / 1e6
        return Stripped(body, error, mode, fuel, wall, cpu, source_map)


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.typescript fetch [DIR]``: fetch the pinned stripper package."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "fetch":
        print("usage: python -m sandbox.typescript fetch [DIR]", file=sys.stderr)
        return 2
    dest = Path(args[1]) if len(args) > 1 else Path("var/cache")
    found = _ts_package.find_tarball([dest])
    try:
        path = found if found is not None else _ts_package.fetch(dest)
        _ts_package.read_wasm(path)
    except StripperUnavailable as exc:
        print(f"TypeScript stripper not available: {exc}", file=sys.stderr)
        return 1
    print(f"{_ts_package.PACKAGE}@{_ts_package.VERSION}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
