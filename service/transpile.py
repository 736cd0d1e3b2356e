"""TypeScript in the service: the type strip before a run, and errors mapped back to source.

The stripper (:class:`sandbox.typescript.TypeScript`) is built on the first TypeScript
request, so JavaScript never pays for it. Like a run (:mod:`service.dispatch`), a strip first
runs inline with the ``inline_fuel`` slice and, if that was not enough, again in a sandbox
thread with its full limits (:class:`sandbox.typescript.StripLimits`). Its time is reported
in the response; its cost is not billed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sandbox import Result, Sandbox
from sandbox.runner import DEFAULT_CACHE_DIR
from sandbox.typescript import (
    StripLimits,
    Stripped,
    StripperUnavailable,
    TypeScript,
    TypeScriptLoader,
)
from service.admission import Admission
from service.config import Settings
from service.errors import Unavailable
from service.schemas import TYPESCRIPT_LANGUAGES, ExecuteRequest

__all__ = ["Transpiler", "source_positions"]


def source_positions(result: Result, stripped: Stripped | None) -> Result:
    """TypeScript reprinted in transform mode: the error's stack in source positions."""
    error = result.error
    if stripped is None or error is None or stripped.source_map is None:
        return result
    return replace(result, error=replace(error, stack=stripped.map_positions(error.stack)))


def _not_stripped(stripped: Stripped) -> Result:
    """The result recorded for code that did not strip: nothing ran, fuel 0."""
    return Result(
        ok=False,
        result_json="null",
        output=(),
        error=stripped.error,
        fuel=0,
        cpu_ms=0.0,
        wall_ms=0.0,
        peak_memory=0,
        random_seed=0,
        rebuilt=False,
    )


class Transpiler:
    """Turns a request's code into the JavaScript to run."""

    def __init__(self, settings: Settings, sandbox: Sandbox, admission: Admission) -> None:
        self._settings = settings
        self._admission = admission
        self._typescript = TypeScriptLoader(
            lambda: TypeScript(
                sandbox.compiled.engine,
                settings.cache_dir,
                tick_ms=settings.tick_ms,
                package_dirs=(DEFAULT_CACHE_DIR,),
                fetch=True,
                fetch_timeout_s=20,
            )
        )

    async def transpile(
        self, client_id: str, request: ExecuteRequest
    ) -> tuple[str, Stripped | None, Result | None]:
        """The JavaScript to run, the strip (its time is reported), and the failed result to
        record when the code did not strip (a ``SyntaxError`` or a limit: nothing runs,
        fuel 0). JavaScript passes through."""
        if request.language not in TYPESCRIPT_LANGUAGES:
            return request.code, None, None
        loader = self._typescript
        try:
            stripper = loader.get() if loader.ready else await asyncio.to_thread(loader.get)
        except StripperUnavailable as exc:
            raise Unavailable(str(exc), type="TypeScriptUnavailable", retry_after=30) from None
        full, slice_fuel = StripLimits(), self._settings.inline_fuel
        stripped = None
        if 0 < slice_fuel < full.fuel:
            stripped = stripper.strip_types(request.code, replace(full, fuel=slice_fuel))
        if stripped is None or stripped.out_of_fuel:
            stripped = await self._admission.run(
                client_id, lambda: stripper.strip_types(request.code, full)
            )
        if stripped.error is None:
            return stripped.code, stripped, None
        return "", stripped, _not_stripped(stripped)
