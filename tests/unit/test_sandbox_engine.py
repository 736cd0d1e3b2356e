"""Threads, the module cache, the fast call path, the stack-guard patch and the lifecycle."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sandbox import EngineInfo, Limits, Sandbox, SandboxClosed, _engine, _stackguard

LIMITS = Limits(timeout_ms=2000, memory_bytes=32 * 1024 * 1024, fuel=5_000_000_000)


def test_module_cache_written_then_loaded(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as first:
        assert not first.compiled.from_cache
        cache_file = first.compiled.cache_file
        assert cache_file.parent == tmp_path
        assert cache_file.is_file()
        assert first.run("return 1", limits=LIMITS).ok
    assert [p.name for p in tmp_path.iterdir()] == [cache_file.name]  # no temp files left
    with Sandbox(tmp_path) as second:
        assert second.compiled.from_cache
        assert second.run("const x = 10; const y = 20; return x + y;", limits=LIMITS).ok


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as sb:
        cache_file = sb.compiled.cache_file
    cache_file.write_bytes(b"garbage")
    with Sandbox(tmp_path) as sb:
        assert not sb.compiled.from_cache
        assert sb.run("return 2", limits=LIMITS).result_json == "2"
    assert cache_file.stat().st_size > 1000


def test_cache_key_depends_on_versions() -> None:
    key = _engine.cache_key("50.0.1", "a" * 64)
    assert key != _engine.cache_key("50.0.2", "a" * 64)
    assert key != _engine.cache_key("50.0.1", "b" * 64)


def test_engine_info_and_fast_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as sb:
        assert isinstance(sb.info, EngineInfo)
        assert sb.info.wasm_sha256.startswith("718f30dac3b2b42f")
        assert sb.info.wasmtime_version == "50.0.1"
        assert sb.info.fast_path


def test_public_api_fallback_gives_same_results(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the private fast path fails its self-test, the public API path is used."""
    from sandbox import _ffi_calls

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated _ffi breakage")

    monkeypatch.setattr(_ffi_calls, "_bind_fast", broken)
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as sb:
        assert not sb.info.fast_path
        res = sb.run("const x = 10; const y = 20; return x + y;", limits=LIMITS)
        assert res.result_json == "30"
        timed = sb.run("while(true){}", limits=Limits(timeout_ms=50, fuel=10**12))
        assert timed.error is not None
        assert timed.error.type == "TimeoutError"
        assert sb.run("return 3", limits=LIMITS).result_json == "3"


def test_threads_get_independent_results(tmp_path_factory: pytest.TempPathFactory) -> None:
    code = """
      globalThis.mine = context.n;
      let s = 0; for (let i = 0; i < 20000; i++) s += i;
      await null;
      console.log('n=' + context.n);
      return {n: globalThis.mine, s};
    """
    errors: list[str] = []
    with Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache") as sb:

        def worker(t: int) -> None:
            for i in range(25):
                n = t * 1000 + i
                res = sb.run(code, json.dumps({"n": n}), LIMITS)
                if not res.ok or json.loads(res.result_json) != {"n": n, "s": 199990000}:
                    errors.append(f"{n}: {res}")
                elif res.output != (f"n={n}",):
                    errors.append(f"{n}: output {res.output}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = sb.stats
    assert errors == []
    assert stats.runs >= 100
    assert stats.in_use == 0
    assert 1 <= stats.instances <= 4 + 1  # + the full snapshot's first one (these run plain)


def test_close_is_idempotent_and_final(tmp_path_factory: pytest.TempPathFactory) -> None:
    sb = Sandbox(tmp_path_factory.getbasetemp() / "sandbox-cache")
    sb.close()
    sb.close()
    with pytest.raises(SandboxClosed):
        sb.run("return 1")
    assert sb.stats.instances == 0


def test_stack_guard_patch_exports_and_keeps_indices() -> None:
    wasm = _engine._read_wasm()[0]
    patched = _stackguard.add_stack_guard(wasm)
    import wasmtime

    module = wasmtime.Module(wasmtime.Engine(), patched)
    names = {e.name for e in module.exports}
    assert {"codexec_sp", "codexec_stack_limit", "codexec_stack_low", "JS_Eval"} <= names
    original = {e.name for e in wasmtime.Module(wasmtime.Engine(), wasm).exports}
    assert original <= names
    with pytest.raises(_stackguard.PatchError):
        _stackguard.add_stack_guard(b"not wasm")
