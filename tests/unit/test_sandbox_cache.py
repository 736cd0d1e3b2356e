"""The module cache on a read-only image: a cache that cannot be used or written never stops
start-up; only a missing or different QuickJS wasm does."""

from __future__ import annotations

import importlib.metadata
import logging
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox import EngineUnavailable, Limits, Sandbox, _engine, runner

LIMITS = Limits(timeout_ms=2000, memory_bytes=32 * 1024 * 1024, fuel=5_000_000_000)


@contextmanager
def no_file_writes() -> Iterator[None]:
    """Make every write to a file fail with EFBIG, also for root (RLIMIT_FSIZE = 0).

    ``chmod`` does not stop root (the tests run as root in CI), the file-size limit does.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def _cache_file(cache_dir: Path) -> Path:
    _, digest = _engine._read_wasm()
    version = importlib.metadata.version("wasmtime")
    return cache_dir / f"qjs-{_engine.cache_key(version, digest)}.cwasm"


def test_valid_cache_file_on_a_read_only_dir_is_loaded(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as first:
        assert not first.compiled.from_cache
    tmp_path.chmod(0o555)
    try:
        with no_file_writes(), Sandbox(tmp_path) as second:
            assert second.compiled.from_cache
            assert second.run("return 1 + 1", limits=LIMITS).result_json == "2"
    finally:
        tmp_path.chmod(0o755)


def test_unusable_cache_file_on_a_read_only_dir_is_compiled_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another CPU or wasmtime build: the baked-in file does not load and cannot be replaced."""
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache_file = _cache_file(cache_dir)
    cache_file.write_bytes(b"compiled for some other machine")
    cache_dir.chmod(0o555)
    caplog.set_level(logging.WARNING, logger="sandbox._engine")
    try:
        with no_file_writes():  # only around the compile: instantiating needs a memfd write
            compiled = _engine.compile_module(cache_dir)
    finally:
        cache_dir.chmod(0o755)
    assert not compiled.from_cache
    assert cache_file.read_bytes() == b"compiled for some other machine"
    assert [p.name for p in cache_dir.iterdir()] == [cache_file.name]  # no temp file left
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "not usable" in messages
    assert "cannot write module cache" in messages
    monkeypatch.setattr(runner, "compile_module", lambda cache_dir: compiled)
    with Sandbox(cache_dir) as sb:  # the in-memory module runs like a cached one
        assert sb.compiled is compiled
        assert (
            sb.run("const x = 10; const y = 20; return x + y;", limits=LIMITS).result_json == "30"
        )


def test_unwritable_cache_dir_without_a_cache_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file: nothing can be created below it, not even by root")
    caplog.set_level(logging.WARNING, logger="sandbox._engine")
    with Sandbox(blocker / "cache") as sb:
        assert not sb.compiled.from_cache
        assert sb.run("return 'ok'", limits=LIMITS).result_json == '"ok"'
    assert "cannot write module cache" in " ".join(r.getMessage() for r in caplog.records)
    assert blocker.is_file()


def test_mismatched_wasm_is_still_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "WASM_SHA256", "0" * 64)
    with pytest.raises(EngineUnavailable, match="sha256"):
        Sandbox(tmp_path)
    assert list(tmp_path.iterdir()) == []
